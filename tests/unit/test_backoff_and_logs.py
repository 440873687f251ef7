import random

import pytest

from bot import logs
from bot.rules.backoff import honour_retry_after, retry_delay


@pytest.mark.parametrize("failures, expected", [(1, 2.0), (2, 4.0), (3, 8.0), (6, 60.0), (50, 60.0)])
def test_retry_delay_doubles_up_to_the_cap(failures, expected):
    assert retry_delay(failures, base=2.0, cap=60.0, jitter=0.0) == expected


def test_retry_delay_jitter_stays_within_bounds():
    rng = random.Random(7)
    delays = [retry_delay(3, base=2.0, cap=60.0, jitter=0.2, rng=rng) for _ in range(200)]
    assert min(delays) >= 6.4 and max(delays) <= 9.6 and len(set(delays)) > 100


def test_retry_after_from_jira_wins_over_our_backoff():
    assert honour_retry_after(30.0, 2.0, cap=10.0) == 30.0
    assert honour_retry_after(None, 20.0, cap=10.0) == 10.0


def test_phone_numbers_and_secrets_are_scrubbed_from_log_events():
    scrubber = logs._Scrubber(["super-secret-token"])
    event = scrubber(
        None,
        "info",
        {
            "event": "x",
            "error": "POST failed for +5215512345678 with super-secret-token",
            "wa_id": "447700900123",
            "phone_number_id": "106540352242922",
            "issue_key": "WA-12",
        },
    )
    assert "5512345678" not in event["error"] and "super-secret-token" not in event["error"]
    assert event["wa_id"].endswith("23") and "7700900" not in event["wa_id"]
    assert event["phone_number_id"] == "106540352242922" and event["issue_key"] == "WA-12"


def test_masking_leaves_short_numbers_and_words_alone():
    assert (
        logs.mask_digits("retry in 30s, issue WA-1234, 2026-11-21T12:00")
        == "retry in 30s, issue WA-1234, 2026-11-21T12:00"
    )


def test_request_and_job_ids_are_bound_to_every_line(capsys):
    import io
    import json as jsonlib

    from bot.http.app import WsgiApp
    from jobs.scheduler import NudgeableJob

    stream = io.StringIO()
    logs.configure("info", "json", stream=stream)
    try:
        job = NudgeableJob("poll", lambda: logs.get_logger("t").info("inside_job"))
        job()

        class Handler:
            def verify(self, query):
                logs.get_logger("t").info("inside_request")
                from bot.whatsapp.webhook import Reply

                return Reply(200, b"ok", "text/plain")

        app = WsgiApp(webhook_path="/w", webhook=Handler(), health=lambda: (True, {}))
        app({"REQUEST_METHOD": "GET", "PATH_INFO": "/w", "QUERY_STRING": ""}, lambda status, headers: None)
    finally:
        logs.configure("warning", "json")
    events = {e["event"]: e for e in map(jsonlib.loads, stream.getvalue().splitlines())}
    assert events["inside_job"]["job"] == "poll" and len(events["inside_job"]["run_id"]) == 12
    assert len(events["inside_request"]["request_id"]) == 12 and "job" not in events["inside_request"]
