"""The processor chain's last line of defence: rendered tracebacks go through the same scrubber
as every other value, vendors' response-carrying exceptions show their status only, and adapter
errors never chain to the library exception behind them."""

from __future__ import annotations

import io
import json
import logging

import jira
import requests

from bot import logs
from bot.jira_api.errors import JiraUnavailable

SECRET = "s3cr3t-app-value-123"
COOKIE = "atlassian.xsrf.token=AAAA-BBBB; JSESSIONID=0123456789ABCDEF"


def _lines(emit) -> list[dict]:
    stream = io.StringIO()
    logs.configure("info", "json", secrets=[SECRET], stream=stream)
    try:
        emit()
    finally:
        logs.configure("warning", "json")
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _jira_error(status: int = 503) -> jira.JIRAError:
    response = requests.Response()
    response.status_code = status
    response.headers.update({"Set-Cookie": COOKIE, "Content-Type": "text/html"})
    response._content = f"<html>down; key={SECRET}</html>".encode()
    request = requests.Request(
        "GET",
        "https://example.atlassian.net/rest/api/3/myself",
        headers={"Authorization": "Basic Ym90OnRva2VuLXZhbHVl"},
    ).prepare()
    return jira.JIRAError(
        response.text, status_code=status, url=request.url, request=request, response=response
    )


def test_the_rendered_exception_is_scrubbed_like_any_value():
    def emit():
        try:
            raise ValueError(
                f"call +447700900123 with Authorization: Bearer abcdef123456 and {SECRET}; "
                f"Set-Cookie: {COOKIE}"
            )
        except ValueError:
            logs.get_logger("t").exception("failed")

    (event,) = _lines(emit)
    rendered = event["exception"]
    assert rendered.startswith("Traceback (most recent call last):") and "ValueError: call +44" in rendered
    for leak in ("7700900123", "abcdef123456", SECRET, "AAAA-BBBB", "0123456789ABCDEF"):
        assert leak not in rendered


def test_a_library_exception_holding_a_response_shows_its_status_only():
    def emit():
        try:
            raise _jira_error(503)
        except jira.JIRAError:
            logs.get_logger("t").exception("failed")

    (event,) = _lines(emit)
    assert event["exception"].endswith("jira.exceptions.JIRAError: HTTP 503 (response withheld from the log)")
    assert "Set-Cookie" not in event["exception"] and "html" not in event["exception"]


def test_an_adapter_error_is_rendered_without_the_library_exception_behind_it():
    # bot/jira_api/adapter.py raises its JiraError `from` the JIRAError; a bug while handling
    # it chains both as context of the new exception.
    def emit():
        try:
            try:
                try:
                    raise _jira_error(502)
                except jira.JIRAError as exc:
                    raise JiraUnavailable(
                        "Jira 502: no Jira error message (text/html, 40 bytes)", status=502
                    ) from exc
            except JiraUnavailable:
                raise KeyError("turn")  # noqa: B904 - the implicit context is what this test renders
        except KeyError:
            logs.get_logger("t").exception("failed")

    (event,) = _lines(emit)
    rendered = event["exception"]
    assert "JiraUnavailable: Jira 502: no Jira error message" in rendered and "KeyError: 'turn'" in rendered
    assert "During handling of the above exception" in rendered
    assert "JIRAError" not in rendered and "JSESSIONID" not in rendered and "Basic" not in rendered


def test_an_exception_passed_as_a_value_is_summarised_and_scrubbed():
    (event,) = _lines(
        lambda: logs.get_logger("t").warning(
            "failed", error=_jira_error(500), other=RuntimeError(f"token {SECRET}")
        )
    )
    assert event["error"] == "jira.exceptions.JIRAError: HTTP 500 (response withheld from the log)"
    assert event["other"] == "RuntimeError: token ***"


def test_dependencies_logging_through_the_stdlib_are_scrubbed_the_same_way():
    def emit():
        try:
            raise _jira_error(401)
        except jira.JIRAError:
            logging.getLogger("apscheduler.executors.default").error(
                "Job raised for +447700900123", exc_info=True
            )

    (event,) = _lines(emit)
    assert "7700900123" not in event["event"] and event["logger"] == "apscheduler.executors.default"
    assert event["exception"].endswith("HTTP 401 (response withheld from the log)")


def test_header_credentials_are_masked_in_strings_dicts_and_pairs():
    scrub = logs._Scrubber([SECRET])
    event = scrub(
        None,
        "info",
        {
            "event": "x",
            "headers": {
                "Set-Cookie": COOKIE,
                "Authorization": "Basic Ym90OnRva2Vu",
                "Accept": "application/json",
            },
            "pairs": [(b"Set-Cookie", COOKIE.encode())],
            "raw": f"{{'Set-Cookie': '{COOKIE}', 'Server': 'nginx'}}",
            "dump": f"(b'Set-Cookie', b'{COOKIE}'), (b'Server', b'nginx')",
            "line": "Cookie: JSESSIONID=0123456789ABCDEF\nNext: kept",
        },
    )
    text = json.dumps(event)
    assert "AAAA-BBBB" not in text and "0123456789ABCDEF" not in text and "Ym90OnRva2Vu" not in text
    assert event["headers"]["Accept"] == "application/json" and "'Server': 'nginx'" in event["raw"]
    assert event["line"].endswith("Next: kept")


def test_meta_error_codes_are_not_mistaken_for_phone_numbers():
    assert logs.mask_digits("Graph 400 (#131047) Re-engagement message, (#130429)") == (
        "Graph 400 (#131047) Re-engagement message, (#130429)"
    )
    assert logs.mask_digits("to 4915112345678") == "to 491********78"
