"""Customer notices and CSAT: template checks, filling, status matching, the rating protocol.

Message shapes follow specs/whatsapp-business-messaging-v23.openapi.yaml: the webhook's
interactive reply (`InteractiveListReplyContent` / `InteractiveButtonReplyContent`, with `context.id`
naming the message answered) and the list section's `rows` items (`id` ≤ 200, `title` ≤ 24 chars).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import parse_config
from bot.rules.notices import (
    CSAT_ID_PREFIX,
    CSAT_SCALE,
    NOTICE_PLACEHOLDERS,
    STATUS_PLACEHOLDERS,
    auto_comment,
    check_placeholders,
    conversation_tag,
    csat_choice,
    csat_comment,
    csat_context,
    csat_rows,
    fill,
    out_of_hours_ref,
    same_status,
    status_text,
)
from bot.rules.window import LastCustomerMessage
from jobs.notices import CustomerNotices
from storage.inbound import QueuedMessage
from tests.unit.test_config import minimal, with_value

# ---- check_placeholders and fill ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("", NOTICE_PLACEHOLDERS),
        ("Thanks {name}, your ticket is {issue_key}.", NOTICE_PLACEHOLDERS),
        ("{issue_key} is now {status}", STATUS_PLACEHOLDERS),
        ("Literal {{braces}} and }} and {{", NOTICE_PLACEHOLDERS),
        ("no placeholders at all", ()),
        ("{name}{name}{issue_key}", NOTICE_PLACEHOLDERS),
    ],
)
def test_check_placeholders_accepts(text: str, allowed: tuple[str, ...]) -> None:
    check_placeholders(text, allowed)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Hi {foo}", "unknown placeholder {foo} (allowed: {name}, {issue_key})"),
        ("{status}", "unknown placeholder {status} (allowed: {name}, {issue_key})"),  # notices have no status
        ("{ name }", "unknown placeholder { name }"),
        ("{Name}", "unknown placeholder {Name}"),
        ("Hi {}", "positional placeholder {} (use a name: {name}, {issue_key})"),
        ("Hi {0}", "positional placeholder {0}"),
        ("Hi {!r}", "positional placeholder {!r}"),
        ("{name.__class__}", "placeholder {name.__class__} may not use attributes or indexes"),
        ("{name[0]}", "placeholder {name[0]} may not use attributes or indexes"),
        ("{0[x]}", "placeholder {0[x]} may not use attributes or indexes"),
        ("{name!r}", "placeholder {name!r} may not have a conversion (write {name})"),
        ("{name!s}", "placeholder {name!s} may not have a conversion"),
        ("{name:>9}", "placeholder {name:>9} may not have a format spec (write {name})"),
        ("{issue_key:{name}}", "placeholder {issue_key:{name}} may not have a format spec"),
        ("Hi {name", "malformed braces (expected '}' before end of string)"),
        ("Hi name}", "malformed braces (Single '}' encountered in format string)"),
        ("Hi { ", "malformed braces"),
        ("{", "malformed braces"),
        ("{name!}", "malformed braces"),
        ("{{name}", "malformed braces"),
    ],
)
def test_check_placeholders_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_placeholders(text, NOTICE_PLACEHOLDERS)
    assert message in str(caught.value)


def test_malformed_braces_say_how_to_write_a_brace() -> None:
    with pytest.raises(ValueError) as caught:
        check_placeholders("a } b", NOTICE_PLACEHOLDERS)
    assert str(caught.value).endswith('write "{{" or "}}" for a literal brace')


def test_fill_substitutes_and_unescapes() -> None:
    text = "Hi {name}: {issue_key} is {status}. {{literal}}"
    check_placeholders(text, STATUS_PLACEHOLDERS)
    values = {"name": "Ana", "issue_key": "SUP-7", "status": "Done"}
    assert fill(text, values) == "Hi Ana: SUP-7 is Done. {literal}"


def test_fill_does_not_expand_values_again() -> None:
    values = {"name": "{issue_key} {0} {name.__class__} }{", "issue_key": "SUP-1"}
    assert fill("{name} / {issue_key}", values) == "{issue_key} {0} {name.__class__} }{ / SUP-1"


def test_fill_missing_value_is_a_caller_bug() -> None:
    with pytest.raises(KeyError):
        fill("{issue_key}", {"name": "Ana"})


@given(st.text(max_size=80), st.text(max_size=40))
def test_fill_is_verbatim_for_any_value(prefix: str, value: str) -> None:
    template = prefix.replace("{", "{{").replace("}", "}}") + "{name}"
    check_placeholders(template, NOTICE_PLACEHOLDERS)
    assert fill(template, {"name": value}) == prefix + value


# ---- status matching ---------------------------------------------------------------------------


def test_status_text_matches_trimmed_and_case_insensitively() -> None:
    on_status = {" done ": "Resolved: {issue_key}", "In Progress": "Working on it"}
    assert status_text(on_status, "Done") == "Resolved: {issue_key}"
    assert status_text(on_status, "DONE") == "Resolved: {issue_key}"
    assert status_text(on_status, "in progress ") == "Working on it"
    assert status_text(on_status, "Closed") is None
    assert status_text(on_status, "Don") is None
    assert status_text({}, "Done") is None


def test_status_text_first_configured_match_wins() -> None:
    assert status_text({"Done": "first", "done": "second"}, "DONE") == "first"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Done", " done ", True),
        ("Done", "DONE", True),
        ("Erledigt", "ERLEDIGT", True),
        ("Straße", "STRASSE", True),  # casefold, not lower
        ("Done", "Done!", False),
        ("In Progress", "InProgress", False),
        ("", " ", True),
    ],
)
def test_same_status(a: str, b: str, same: bool) -> None:
    assert same_status(a, b) is same
    assert same_status(b, a) is same


# ---- CSAT --------------------------------------------------------------------------------------

LABELS = ["Very bad", "Bad", "OK", "Good", "Excellent"]


def test_csat_rows() -> None:
    assert CSAT_SCALE == 5
    assert csat_rows(LABELS) == [
        {"id": "csat:1", "title": "Very bad"},
        {"id": "csat:2", "title": "Bad"},
        {"id": "csat:3", "title": "OK"},
        {"id": "csat:4", "title": "Good"},
        {"id": "csat:5", "title": "Excellent"},
    ]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (LABELS[:4], "expected 5 labels, got 4"),
        ([*LABELS, "More"], "expected 5 labels, got 6"),
        ([], "expected 5 labels, got 0"),
        (["", *LABELS[1:]], "must be 1 to 24 characters"),
        (["   ", *LABELS[1:]], "must be 1 to 24 characters"),
        (["x" * 25, *LABELS[1:]], "must be 1 to 24 characters"),  # Meta's row title limit
    ],
)
def test_csat_rows_refuses(labels: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        csat_rows(labels)


def test_csat_rows_title_at_the_limit() -> None:
    assert csat_rows(["x" * 24, *LABELS[1:]])[0]["title"] == "x" * 24


def reply(reply_type: str, row_id: object, *, sub: str | None = None) -> dict[str, Any]:
    """A webhook message object as the spec's examples show it."""
    return {
        "from": "16505551234",
        "id": "wamid.test-reply",
        "timestamp": "1750025136",
        "type": "interactive",
        "context": {"from": "15550783881", "id": "wamid.test-csat-list"},
        "interactive": {"type": sub or reply_type, reply_type: {"id": row_id, "title": "Good"}},
    }


@pytest.mark.parametrize("n", range(1, 6))
@pytest.mark.parametrize("reply_type", ["list_reply", "button_reply"])
def test_csat_choice_reads_each_rating(reply_type: str, n: int) -> None:
    assert csat_choice("interactive", reply(reply_type, f"{CSAT_ID_PREFIX}{n}")) == n


@pytest.mark.parametrize(
    "row_id",
    [
        "csat:0",
        "csat:6",
        "csat:05",
        "csat:-1",
        "csat:1.0",
        " csat:4",
        "csat:4 ",
        "csat: 4",
        "CSAT:4",
        "csat4",
        "rating:4",
        "csat:",
        "csat:٤",  # an Arabic-Indic four
        "",
        4,
        4.0,
        True,
        None,
        ["csat:4"],
        {"id": "csat:4"},
    ],
)
def test_csat_choice_refuses_other_ids(row_id: object) -> None:
    assert csat_choice("interactive", reply("list_reply", row_id)) is None


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("text", reply("list_reply", "csat:4")),  # the stored kind decides
        ("button", reply("button_reply", "csat:4")),
        ("interactive", reply("list_reply", "csat:4", sub="button_reply")),  # type names another key
        ("interactive", reply("list_reply", "csat:4", sub="nfm_reply")),
        ("interactive", {"interactive": {"type": "list_reply"}}),
        ("interactive", {"interactive": {"type": "list_reply", "list_reply": "csat:4"}}),
        ("interactive", {"interactive": {"type": "list_reply", "list_reply": None}}),
        ("interactive", {"interactive": {"type": ["list_reply"], "list_reply": {"id": "csat:4"}}}),
        ("interactive", {"interactive": {"list_reply": {"id": "csat:4"}}}),
        ("interactive", {"interactive": "csat:4"}),
        ("interactive", {"interactive": None}),
        ("interactive", {"list_reply": {"id": "csat:4"}}),
        ("interactive", {}),
        ("interactive", None),
        ("interactive", []),
        ("interactive", "csat:4"),
        (None, reply("list_reply", "csat:4")),
    ],
)
def test_csat_choice_survives_garbage(kind: Any, message: Any) -> None:
    assert csat_choice(kind, message) is None


def test_csat_choice_on_a_megabyte_id_is_fast() -> None:
    huge = reply("list_reply", "csat:4" + "4" * 1_000_000)
    prefixed = reply("button_reply", "csat:" * 200_000)
    started = time.perf_counter()
    assert csat_choice("interactive", huge) is None
    assert csat_choice("interactive", prefixed) is None
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize(
    ("message", "wamid"),
    [
        (reply("list_reply", "csat:4"), "wamid.test-csat-list"),
        ({"context": {"id": ""}}, None),
        ({"context": {"id": 7}}, None),
        ({"context": {"from": "15550783881"}}, None),
        ({"context": "wamid.x"}, None),
        ({"context": None}, None),
        ({}, None),
        (None, None),
        ("context", None),
    ],
)
def test_csat_context(message: Any, wamid: str | None) -> None:
    assert csat_context(message) == wamid


@pytest.mark.parametrize(
    ("name", "rating", "comment"),
    [
        ("Ana", 4, "[CSAT] Ana rated 4/5"),
        ("  Ana \n  María\t", 1, "[CSAT] Ana María rated 1/5"),
        ("Ana\u2028Line", 5, "[CSAT] Ana Line rated 5/5"),
        ("x" * 150, 3, f"[CSAT] {'x' * 100} rated 3/5"),
        ("x" * 99 + " y", 2, f"[CSAT] {'x' * 99} rated 2/5"),  # cut, then no trailing space
        ("", 5, "[CSAT] WhatsApp user rated 5/5"),  # the same fallback as `[WhatsApp] …` comments
        ("\n\t ", 5, "[CSAT] WhatsApp user rated 5/5"),
    ],
)
def test_csat_comment(name: str, rating: int, comment: str) -> None:
    assert csat_comment(name, rating) == comment


def test_auto_comment() -> None:
    assert auto_comment("Ticket SUP-1 is resolved.") == "[Auto] Ticket SUP-1 is resolved."


# ---- refs --------------------------------------------------------------------------------------


def test_conversation_tag_hides_the_phone() -> None:
    key = "whatsapp:15550783881:16505551234"
    tag = conversation_tag(key)
    assert tag == hashlib.sha256(key.encode()).hexdigest()[:12]
    assert len(tag) == 12
    assert set(tag) <= set("0123456789abcdef")
    assert "16505551234" not in tag
    assert conversation_tag(key) == tag  # stable across calls and restarts
    assert conversation_tag(key + "5") != tag


def test_conversation_tag_never_raises_on_odd_keys() -> None:
    assert len(conversation_tag("\ud800")) == 12  # a lone surrogate
    assert len(conversation_tag("")) == 12


def test_out_of_hours_ref() -> None:
    key = "whatsapp:15550783881:16505551234"
    ref = out_of_hours_ref(key, "2026-01-05")
    assert ref == f"ooh:{conversation_tag(key)}:2026-01-05"
    assert "16505551234" not in ref
    assert out_of_hours_ref(key, "2026-01-06") != ref


# ---- length cuts: a filled notice or survey within WhatsApp's limits (jobs.notices) ------------
# The templates are checked against the limits when the config loads; what is filled in later
# (the customer's name, a status name) can still push the result over, so CustomerNotices cuts
# the filled text where it builds the outbound row.

TEXT_LIMIT = 4096  # Cloud API text body
LIST_BODY_LIMIT = 1024  # interactive list body
CONVERSATION = "whatsapp:15550783881:16505551234"


class QueuedRows:
    """Remembers the rows CustomerNotices queues (the one outbound method it calls)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def enqueue_many(self, rows: list[dict[str, Any]], *, txn_ok: bool = False) -> int:
        self.rows.extend(rows)
        return len(rows)


class FirstMessage:
    """No other customer message is on the ticket: the one delivered opened it."""

    def customer_delivered_on(self, issue_key: str, *, excluding: int) -> bool:
        return False


class EveryStatusEntered:
    """Each status the poll reports is a fresh entry (the first one)."""

    def baseline(self, issue_key: str) -> None:
        pass

    def observe(self, issue_key: str, status_name: str, *, on_entry: Any = None) -> int | None:
        if on_entry is not None:
            on_entry(1)
        return 1


class LastMessageBy:
    def __init__(self, profile_name: str) -> None:
        self.profile_name = profile_name

    def last_customer_message(self, conversation_key: str) -> LastCustomerMessage | None:
        return LastCustomerMessage(timestamp=1_800_000_000, profile_name=self.profile_name)


def notices_for(notify: dict[str, Any], *, name: str, csat: dict[str, Any] | None = None) -> Any:
    """CustomerNotices over remembering fakes; `.outbound.rows` holds what it queued.

    Returned as Any: the fakes implement only the port methods CustomerNotices calls."""
    service: dict[str, Any] = {"id": "support", "project_key": "SUP", "notify": notify}
    if csat is not None:
        service["csat"] = csat
    data = with_value(minimal(), "services[0]", service)
    fakes: Any = {
        "outbound": QueuedRows(),
        "inbound": FirstMessage(),
        "watch": EveryStatusEntered(),
        "window": LastMessageBy(name),
    }
    return CustomerNotices(settings=parse_config(data, {}), clock=lambda: 1_800_000_000.0, **fakes)


def seen(notices: Any, status: str) -> list[dict[str, Any]]:
    """The rows queued when the poll sees SUP-1 in `status`."""
    fields = {"status": {"name": status, "statusCategory": {"key": "done"}}}
    ours = {"conversation": CONVERSATION, "wa_id": "16505551234", "service": "support"}
    notices.status_seen("SUP-1", fields, ours)
    rows: list[dict[str, Any]] = notices.outbound.rows
    return rows


@pytest.mark.parametrize(
    ("extra", "length"),
    [(TEXT_LIMIT - len("Hi , SUP-1 is Done."), TEXT_LIMIT), (TEXT_LIMIT, TEXT_LIMIT), (10, 29)],
    ids=["exactly-at-the-limit", "over", "short"],
)
def test_status_notice_with_a_long_name_is_cut_to_4096(extra: int, length: int) -> None:
    name = "N" * extra
    notices = notices_for({"on_status": {"Done": "Hi {name}, {issue_key} is {status}."}}, name=name)
    [row] = seen(notices, "Done")
    assert row["kind"] == "auto" and row["dedupe_key"] == "status:SUP-1:1"
    assert len(row["body"]) == length
    assert row["body"] == f"Hi {name}, SUP-1 is Done."[:TEXT_LIMIT]  # the head is kept, not the tail


def test_status_notice_with_a_long_status_name_is_cut_to_4096() -> None:
    status = "Resolved " + "and closed " * 500  # 5,509 characters of status name
    notices = notices_for({"on_status": {status: "{issue_key} is now {status}"}}, name="Ana")
    [row] = seen(notices, status)
    assert len(row["body"]) == TEXT_LIMIT
    assert row["body"].startswith("SUP-1 is now Resolved and closed")


def test_survey_question_filled_over_1024_is_cut_to_1024() -> None:
    name = "Ana " * 400  # 1,600 characters
    notices = notices_for(
        {}, name=name, csat={"enabled": True, "question": "How did we do on {issue_key}, {name}?"}
    )
    [row] = seen(notices, "Done")
    assert row["kind"] == "csat" and row["dedupe_key"] == "csat:SUP-1:1"
    assert len(row["body"]) == LIST_BODY_LIMIT
    assert row["body"].startswith("How did we do on SUP-1, Ana Ana")
    assert len(row["payload"]["rows"]) == CSAT_SCALE  # only the body is cut


def test_survey_question_at_1024_is_not_cut() -> None:
    question = "How did we do on {issue_key}, {name}?"
    name = "n" * (LIST_BODY_LIMIT - len("How did we do on SUP-1, ?"))
    notices = notices_for({}, name=name, csat={"enabled": True, "question": question})
    [row] = seen(notices, "Done")
    assert row["body"] == f"How did we do on SUP-1, {name}?"
    assert len(row["body"]) == LIST_BODY_LIMIT


def test_acknowledgement_with_a_long_profile_name_is_cut_to_4096() -> None:
    notices = notices_for({"on_create": "Hi {name}, we have it: {issue_key}."}, name="unused")
    name = "Ana María " * 500  # 5,000 characters, as a hostile webhook could claim
    message = QueuedMessage(
        id=1,
        wamid="wamid.test-1",
        conversation_key=CONVERSATION,
        wa_id="16505551234",
        user_id=None,
        phone_number_id="111",
        display_phone_number=None,
        profile_name=name,
        timestamp=1_800_000_000,
        kind="text",
        raw={},
        attempts=0,
        started=0,
        next_attempt_at=0.0,
        last_error=None,
    )
    notices.after_delivery(message, "SUP-1", "10001")
    [row] = notices.outbound.rows
    assert row["dedupe_key"] == "ack:SUP-1"
    assert len(row["body"]) == TEXT_LIMIT
    assert row["body"] == f"Hi {name}, we have it: SUP-1."[:TEXT_LIMIT]
