"""The real `wajira run` process logs a Jira outage with Jira's status, code and message only:
the cookies, headers and body of the error response (and our own request's Authorization
header, which the jira library's exception text also holds) stay out of its output."""

from __future__ import annotations

import pytest

from sandbox import whatsapp_payloads as wa
from tests.e2e.conftest import JIRA_TOKEN
from tests.e2e.harness import wait_until

pytestmark = pytest.mark.e2e

BODY_SECRET = "upstream-echoed-value-5f2b9c0d41e8a7b3"
COOKIE = "atlassian.xsrf.token=B7TQ-Z2K9-XXXX-YYYY|d1e5f0a9c3b2|lin; JSESSIONID=8C1D2E3F4A5B6C7D8E9F"


LEAKS = (
    BODY_SECRET,
    "atlassian.xsrf",
    "JSESSIONID",
    "Set-Cookie",
    "X-Internal-Route",
    "jira-node-7",
    "stackTrace",
    "response headers",
    "request headers",
    JIRA_TOKEN,
    "Authorization",
    "Basic ",
    "5512345678",
)
HEADERS = {"Set-Cookie": COOKIE, "X-Internal-Route": "jira-node-7.prod.internal"}


def assert_clean(text: str) -> None:
    leaked = [leak for leak in LEAKS if leak in text]
    assert not leaked, leaked


def test_a_jira_error_response_reaches_the_log_as_status_code_and_message(jira, daemon, meta):
    body = {
        "errorMessages": ["Jira is down for maintenance"],
        "errorCode": "SERVICE_UNAVAILABLE",
        "errors": {},
        "stackTrace": f"at com.atlassian.jira... token={BODY_SECRET}",
    }
    jira.faults.fail_next(503, count=3, body=body, headers=HEADERS, path_regex="/issue")
    phone = "5215512345678"
    payload = wa.message_payload(
        [wa.text(phone, "hola", timestamp=1_700_000_000)], contacts=[wa.contact("Ana", phone)]
    )
    assert meta.deliver(payload) == 200

    def outage_logged():
        return [e for e in daemon.log_events() if e.get("event") == "jira_unavailable"]

    (event, *_) = wait_until(outage_logged, timeout=20, what="jira_unavailable logged")
    assert event["error"].endswith("Jira 503: Jira is down for maintenance")
    wait_until(
        lambda: any(jira.comments(i["key"]) for i in jira.issues()), timeout=30, what="comment after outage"
    )

    assert_clean(daemon.logs_text())


def test_a_poll_pass_failed_by_a_jira_outage_logs_a_warning_without_the_response(jira, daemon):
    # The poll job lets the error escape: the scheduler logs `job_failed`, for Jira being down a
    # warning with Jira's status and message and no traceback (whose chained jira.JIRAError once
    # printed the request's and the response's headers).
    body = {"errorMessages": ["Search is temporarily unavailable"], "stackTrace": f"token={BODY_SECRET}"}
    jira.faults.fail_for(6.0, 503, body=body, headers=HEADERS, path_regex="/search")

    def poll_failed():
        return [e for e in daemon.log_events() if e.get("event") == "job_failed" and e.get("job") == "poll"]

    (event, *_) = wait_until(poll_failed, timeout=20, what="a failed poll pass logged")
    assert event["level"] == "warning"
    assert event["error"] == "Jira 503: Search is temporarily unavailable"
    assert "exception" not in event
    assert_clean(daemon.logs_text())
