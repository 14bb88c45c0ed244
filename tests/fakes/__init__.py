"""Fake provider servers for tests, chaos runs and benchmarks (see each module's docstring)."""

from tests.fakes.faults import RETRYABLE_FAULTS, Fault
from tests.fakes.max import FakeMax
from tests.fakes.server import Recorded, SentMessage, UploadedFile
from tests.fakes.telegram import FakeTelegram

__all__ = ["RETRYABLE_FAULTS", "FakeMax", "FakeTelegram", "Fault", "Recorded", "SentMessage", "UploadedFile"]
