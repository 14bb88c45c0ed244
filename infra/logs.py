"""Logging of the api and the worker: one format, the level from LOG_LEVEL, and no line per
HTTP request unless debugging (httpx writes one at INFO for every call, so a long-polling
worker wrote one per poll and a busy api one per provider call)."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PER_REQUEST_LOGGERS = ("httpx", "httpcore")


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format=FORMAT)
    debugging = logging.getLevelNamesMapping().get(level.upper(), logging.INFO) <= logging.DEBUG
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if debugging else logging.WARNING)
