"""Logs never carry phone numbers, e-mail addresses or tokens (seed 002), whatever logger wrote
them and however the message was built; every line carries the correlation id."""

import json
import logging

import pytest

from infra.logs import JsonFormatter, MaskingFilter, TextFormatter, correlated

SECRETS = [
    "+7 999 123-45-67",
    "+79991234567",
    "8 (999) 123-45-67",
    "89991234567",
    "+44 20 7946 0958",
    "ann.smith@example.com",
    "123456789:AAFakeTokenForTests_0123456789abcdefg",
    "whsec_Zx8b1q2w3e4r5t6y7u8i9o0pAsDfGhJk",
    "sb_k2j3h4g5f6d7s8a9qwertyuiop",
    "Bearer sb_k2j3h4g5f6d7s8a9qwertyuiop",
]


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("switchboard.test", logging.INFO, __file__, 1, msg, args, None)


@pytest.mark.parametrize("secret", SECRETS)
def test_secrets_are_masked_in_the_message_and_its_arguments(secret):
    for record in (_record(f"customer wrote {secret} today"), _record("customer wrote %s today", secret)):
        MaskingFilter().filter(record)
        line = TextFormatter().format(record)
        assert secret not in line
        assert "customer wrote" in line and "today" in line


def test_the_bitrix24_webhook_code_is_masked_but_not_the_portal():
    record = _record("POST https://acme.bitrix24.ru/rest/1/k3y0fw3bh00k/tasks.task.add.json failed")
    MaskingFilter().filter(record)
    assert "k3y0fw3bh00k" not in record.getMessage()
    assert "acme.bitrix24.ru/rest/1/" in record.getMessage()


def test_ids_and_times_stay_readable():
    text = "conversation 123456 message 815000123 at 2026-11-27T10:00:00 took 0.25 s, HTTP 503"
    record = _record(text)
    MaskingFilter().filter(record)
    assert record.getMessage() == text


def test_json_lines_carry_the_correlation_id_and_the_masked_exception():
    with correlated("req-42"):
        try:
            raise ValueError("token 123456789:AAFakeTokenForTests_0123456789abcdefg refused")
        except ValueError:
            record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed for %s", ("ann@example.com",), None)
            import sys

            record.exc_info = sys.exc_info()
        MaskingFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["correlation_id"] == "req-42"
    assert "ann@example.com" not in line["message"] and "AAFakeToken" not in line["exception"]
    assert line["level"] == "ERROR" and line["logger"] == "x"
