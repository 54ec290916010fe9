"""Secrets never leave in text or log records; guest details are masked for display."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from loopsync.redact import MASK, SecretFilter, mask, scrub

# Not the suite's TEST_TOKEN: these tests log raw secrets on purpose, to an isolated logger.
SECRET = "s3cr3t+token/with=odd&chars"


def test_scrub_replaces_every_occurrence_of_every_secret() -> None:
    text = f"a {SECRET} b {SECRET} c other-secret"
    assert scrub(text, [SECRET, "other-secret"]) == f"a {MASK} b {MASK} c {MASK}"


def test_scrub_ignores_empty_secrets() -> None:
    assert scrub("nothing to hide", ["", ""]) == "nothing to hide"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "POST /api/v1/Contact?authToken=abc123 HTTP/1.1",
            "POST /api/v1/Contact?authToken=*** HTTP/1.1",
        ),
        (
            "https://x.blazeloop.net/api?a=1&AUTHTOKEN=zz&b=2",
            "https://x.blazeloop.net/api?a=1&AUTHTOKEN=***&b=2",
        ),
        ("url='/api/v1/Contact?authtoken=q%2Bw'", "url='/api/v1/Contact?authtoken=***'"),
        ("authToken=", "authToken=***"),
    ],
)
def test_scrub_masks_the_auth_token_query_parameter_whatever_its_value(
    text: str, expected: str
) -> None:
    assert scrub(text, []) == expected


def test_scrub_catches_the_url_encoded_form_of_a_secret() -> None:
    # requests percent-encodes the token in the query string; a URL in an error shows that.
    encoded = "s3cr3t%2Btoken%2Fwith%3Dodd%26chars"
    assert scrub(f"token was {encoded} here", [SECRET]) == f"token was {MASK} here"


@pytest.fixture
def isolated_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(SecretFilter([SECRET]))
    log = logging.getLogger("tests.redact.isolated")
    log.propagate = False  # the raw secret must not reach the suite's root handlers
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    yield log, stream
    log.removeHandler(handler)


def test_secret_filter_scrubs_message_and_args(
    isolated_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = isolated_logger
    log.info("calling %s with %r", f"https://h/api?authToken={SECRET}", {"token": SECRET})
    output = stream.getvalue()
    assert SECRET not in output
    assert "authToken=***" in output
    assert "{'token': '***'}" in output


def test_secret_filter_scrubs_tracebacks_and_keeps_them(
    isolated_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = isolated_logger
    try:
        raise ConnectionError(f"Max retries exceeded with url: /api?authToken={SECRET}")
    except ConnectionError:
        log.exception("delivery failed")
    output = stream.getvalue()
    assert SECRET not in output
    assert "Traceback (most recent call last)" in output
    assert "ConnectionError: Max retries exceeded with url: /api?authToken=***" in output


def test_secret_filter_renders_the_record_once_and_clears_args() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s b", (SECRET,), None)
    assert SecretFilter([SECRET]).filter(record) is True
    assert record.msg == f"a {MASK} b"
    assert not record.args
    assert record.getMessage() == f"a {MASK} b"


def test_secret_filter_survives_a_bad_format_string_without_leaking() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %d", (SECRET,), None)
    SecretFilter([SECRET]).filter(record)
    assert SECRET not in record.getMessage()


def test_secret_filter_scrubs_stack_info() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None, sinfo=SECRET)
    SecretFilter([SECRET]).filter(record)
    assert record.stack_info == MASK


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("", ""),
        ("John Smith", "J••• S••••"),
        ("Zoë Ñúñez-Øberg", "Z•• Ñ••••-Ø••••"),
        ("李小龙", "李••"),
        ("john.smith@example.com", "j•••@e•••.com"),
        ("zoë@bücher.de", "z•••@b•••.de"),
        ("16135551234", "•••••••••34"),
        ("+1 613-555-1234", "+• •••-•••-••34"),
        ("4101", "4•••"),
    ],
)
def test_mask(value: str | None, expected: str) -> None:
    assert mask(value) == expected


def test_mask_is_deterministic_and_hides_the_rest() -> None:
    assert mask("Rick Sanchez") == mask("Rick Sanchez")
    assert "ick" not in mask("Rick Sanchez")
