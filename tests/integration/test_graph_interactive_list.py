"""Interactive lists (the CSAT question): `GraphAdapter.send_list`, the Graph sandbox's checks of
a list (Meta's limits, the 24-hour window, statuses, inspection) and `FakeGraph.send_list`.

The limits come from the v23 spec (`BodyObject` 1024, `ActionObject.button` 20, `SectionObject`:
title 24 and required with several sections, row id 200, title 24, description 72) and from
Meta's interactive-list guide ("up to 10 rows for all sections combined"). The cassettes
(tests/cassettes/graph_adapter/, recorded from the sandbox with `WAJIRA_RECORD_CASSETTES=1`)
have every body checked against the spec's `InteractiveMessage`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bot.config.services import LIST_BODY_MAX_CHARS, LIST_BUTTON_MAX_CHARS, LIST_ROW_TITLE_MAX_CHARS
from bot.whatsapp.graph import GraphAdapter, Recipient
from bot.whatsapp.graph_errors import GraphRejected, GraphUnavailable, WindowClosed
from bot.whatsapp.interactive_out import list_message
from sandbox.graph import GraphSandbox
from sandbox.graph import interactive as list_rules
from tests.fakes import FakeGraph
from tests.integration.test_graph_adapter import send_schema, spec_problems
from tests.integration.test_sandbox_graph import SECRET, Receiver, statuses_of
from tests.support.spec import whatsapp_spec
from tests.support.vcr import (
    CASSETTES,
    FAKE_BEARER,
    RECORD,
    REPLAY_URL,
    cassette_name,
    cassette_recorder,
    json_of,
    open_cassette,
    recorded,
)

CUSTOMER = "16505551234"
PNID = "106540352242922"  # sandbox.whatsapp_payloads.PHONE_NUMBER_ID
API = "v23.0"
TOKEN = "interactive-list-token"  # made up, and shaped like no real token
QUESTION = "How did we do on SUP-12?"
RATINGS = [
    {"id": "csat:1", "title": "Poor"},
    {"id": "csat:2", "title": "Fair"},
    {"id": "csat:3", "title": "Good"},
    {"id": "csat:4", "title": "Very good"},
    {"id": "csat:5", "title": "Excellent", "description": "Everything was sorted out quickly"},
]


def to() -> Recipient:
    return Recipient(wa_id=CUSTOMER)


# == the adapter against a running sandbox ========================================================


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.server.start()
    yield r
    r.server.stop()


@pytest.fixture
def sandbox(receiver: Receiver) -> Iterator[GraphSandbox]:
    webhook = receiver.server.url + "/api/whatsapp/webhook"
    with GraphSandbox(access_token=TOKEN, webhook_url=webhook, app_secret=SECRET, status_delay=0.02) as sb:
        yield sb


@pytest.fixture
def graph(sandbox: GraphSandbox) -> GraphAdapter:
    return GraphAdapter.connect(base_url=sandbox.url, api_version=API, access_token=TOKEN, timeout=10)


def test_the_list_arrives_with_the_exact_rows_then_its_statuses(sandbox, graph, receiver):
    sandbox.customer_wrote(CUSTOMER)
    wamid = graph.send_list(
        PNID, to(), body=QUESTION, button="Rate us", rows=RATINGS, section_title="Your rating"
    )
    assert wamid.startswith("wamid.")
    expected_rows = [dict(row) for row in RATINGS]
    assert sandbox.lists() == [
        {
            "body": QUESTION,
            "button": "Rate us",
            "section_titles": ["Your rating"],
            "rows": expected_rows,
            "wamid": wamid,
            "to": CUSTOMER,
        }
    ]
    sent = sandbox.sent()[-1]
    assert (sent["type"], sent["body"], sent["wamid"]) == ("interactive", QUESTION, wamid)
    assert sent["payload"]["interactive"] == {
        "type": "list",
        "body": {"text": QUESTION},
        "action": {"button": "Rate us", "sections": [{"title": "Your rating", "rows": expected_rows}]},
    }
    # The e2e harness's way, over the control routes.
    ctl = f"{sandbox.url}/_sandbox"
    assert requests.get(f"{ctl}/lists", timeout=5).json()["lists"] == sandbox.lists()
    assert requests.get(f"{ctl}/sent", timeout=5).json()["sent"][-1]["list"]["rows"] == expected_rows
    # Meta plays sent → delivered → read for a list as for a text.
    statuses = statuses_of(receiver.wait_for(3))
    assert [(s["id"], s["status"]) for s in statuses] == [
        (wamid, "sent"),
        (wamid, "delivered"),
        (wamid, "read"),
    ]


def test_without_a_section_title_none_is_sent(sandbox, graph):
    sandbox.customer_wrote(CUSTOMER)
    graph.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=RATINGS[:2])
    section = sandbox.sent()[-1]["payload"]["interactive"]["action"]["sections"][0]
    assert section == {"rows": RATINGS[:2]}
    assert sandbox.lists()[-1]["section_titles"] == [None]


def test_outside_the_window_a_list_is_window_closed(sandbox, graph):
    with pytest.raises(WindowClosed) as closed:  # never wrote
        graph.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=RATINGS)
    assert closed.value.code == 131047
    sandbox.customer_wrote(CUSTOMER, at=time.time() - 25 * 3600)
    with pytest.raises(WindowClosed):
        graph.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=RATINGS)
    assert sandbox.sent() == []


def test_an_oversize_row_title_is_rejected_with_131009(sandbox, graph):
    sandbox.customer_wrote(CUSTOMER)
    rows = [*RATINGS[:4], {"id": "csat:5", "title": "E" * 25}]
    with pytest.raises(GraphRejected) as refused:
        graph.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=rows)
    err = refused.value
    assert (err.status, err.code, err.title) == (400, 131009, "Parameter value is not valid")
    assert "['rows'][4]['title']" in err.details and "24" in err.details
    assert sandbox.sent() == [] and sandbox.lists() == []
    # The adapter clips nothing: a title of exactly 24 goes through unchanged.
    rows[4] = {"id": "csat:5", "title": "E" * 24}
    graph.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=rows)
    assert sandbox.lists()[-1]["rows"][4]["title"] == "E" * 24


def test_rows_are_checked_before_anything_is_sent():
    bad_rows: list[list[dict[str, str]]] = [
        [{"id": "csat:1"}],
        [{"title": "Poor"}],
        [{"id": "csat:1", "title": "Poor", "emoji": "x"}],
    ]
    for rows in bad_rows:
        with pytest.raises(ValueError):
            list_message(to(), body=QUESTION, button="Rate us", rows=rows)
    # An empty description is left out rather than sent empty (Meta refuses empty parts).
    message = list_message(to(), body="Q", button="B", rows=[{"id": "a", "title": "A", "description": ""}])
    assert message["interactive"]["action"]["sections"] == [{"rows": [{"id": "a", "title": "A"}]}]


def test_refusals_and_outages_reach_the_caller_as_for_text(sandbox, graph):
    sandbox.customer_wrote(CUSTOMER)
    sandbox.fail_next_send(131026)
    with pytest.raises(GraphRejected) as undeliverable:
        graph.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=RATINGS)
    assert undeliverable.value.code == 131026
    sandbox.faults.fail_next(503, path_regex="/messages$")
    with pytest.raises(GraphUnavailable):
        graph.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=RATINGS)
    assert sandbox.lists() == []


# == the sandbox's checks, with raw requests ======================================================


def list_body(**changes: Any) -> dict[str, Any]:
    body = list_message(to(), body=QUESTION, button="Rate us", rows=RATINGS, section_title="Your rating")
    body["interactive"].update(changes)
    return body


def post(sb: GraphSandbox, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        sb.messages_url(), json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )


def refusal(r: requests.Response, code: int) -> dict[str, Any]:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert whatsapp_spec().errors(r.json(), whatsapp_spec().component("GraphAPIError")) == []
    assert error["code"] == code
    return error


def _rows(n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"id": f"row:{i}", "title": f"Row {i}"} for i in range(start, start + n)]


def _sections(*sizes: int, titled: bool = True) -> list[dict[str, Any]]:
    out, start = [], 0
    for s, size in enumerate(sizes):
        section: dict[str, Any] = {"rows": _rows(size, start)}
        if titled:
            section["title"] = f"Section {s}"
        out.append(section)
        start += size
    return out


def _action(**changes: Any) -> dict[str, Any]:
    return {"button": "Rate us", "sections": _sections(5), **changes}


@pytest.mark.parametrize(
    "interactive, fragment",
    [
        ({"body": {"text": "b" * 1025}}, "interactive['body']['text'] must be at most 1024"),
        ({"body": {"text": "  "}}, "cannot be empty"),
        ({"action": _action(button="B" * 21)}, "['button'] must be at most 20"),
        ({"action": _action(button="")}, "['button'] cannot be empty"),
        ({"action": _action(sections=_sections(6, 5))}, "at most 10 rows across all sections"),
        ({"action": _action(sections=_sections(*[1] * 11))}, "at most 10 sections"),
        (
            {"action": _action(sections=[{"title": "T" * 25, "rows": _rows(1)}])},
            "['title'] must be at most 24",
        ),
        (
            {"action": _action(sections=[{"rows": [{"id": "i" * 201, "title": "A"}]}])},
            "['id'] must be at most 200",
        ),
        (
            {"action": _action(sections=[{"rows": [{"id": "a", "title": "t" * 25}]}])},
            "['title'] must be at most 24",
        ),
        (
            {"action": _action(sections=[{"rows": [{"id": "a", "title": "A", "description": "d" * 73}]}])},
            "['description'] must be at most 72",
        ),
        ({"action": _action(sections=[{"rows": _rows(1) * 2}])}, "repeats the row id 'row:0'"),
        ({"footer": {"text": "f" * 61}}, "interactive['footer']['text'] must be at most 60"),
        ({"header": {"type": "image", "image": {"id": "1"}}}, "Header type must be text"),
    ],
)
def test_a_part_out_of_bounds_is_131009(sandbox, interactive, fragment):
    sandbox.customer_wrote(CUSTOMER)
    error = refusal(post(sandbox, list_body(**interactive)), 131009)
    assert error["message"] == "(#131009) Parameter value is not valid"
    assert fragment in error["error_data"]["details"]
    assert sandbox.sent() == []


@pytest.mark.parametrize(
    "interactive, fragment",
    [
        ({"body": None}, "interactive['body'] is required"),
        ({"action": {"sections": _sections(2)}}, "['button'] is required"),
        ({"action": {"button": "Rate us"}}, "['sections'] is required"),
        ({"action": _action(sections=[])}, "['sections'] is required"),
        ({"action": _action(sections=[{"title": "T", "rows": []}])}, "['rows'] is required"),
        ({"action": _action(sections=[{"rows": [{"id": "a"}]}])}, "['title'] is required"),
        # Several sections: each needs its title.
        ({"action": _action(sections=_sections(2, 2, titled=False))}, "[0]['title'] is required"),
    ],
)
def test_a_missing_part_is_100(sandbox, interactive, fragment):
    sandbox.customer_wrote(CUSTOMER)
    error = refusal(post(sandbox, list_body(**interactive)), 100)
    assert fragment in error["message"]
    assert sandbox.sent() == []


def test_a_list_at_every_limit_is_accepted(sandbox):
    sandbox.customer_wrote(CUSTOMER)
    sections = [
        {"title": "S" * 24, "rows": [{"id": "i" * 200, "title": "t" * 24, "description": "d" * 72}]},
        {"title": "Second", "rows": _rows(9, 1)},  # 10 rows in all
    ]
    body = list_body(
        body={"text": "b" * 1024},
        header={"type": "text", "text": "h" * 60},
        footer={"text": "f" * 60},
        action={"button": "B" * 20, "sections": sections},
    )
    spec = whatsapp_spec()
    assert spec.errors(body, send_schema(spec, body), direction="request") == []
    r = post(sandbox, body)
    assert r.status_code == 200, r.text
    listed = sandbox.lists()[-1]
    assert (listed["section_titles"], len(listed["rows"])) == (["S" * 24, "Second"], 10)


def test_other_interactive_types_keep_the_general_check(sandbox):
    # Only lists are checked part by part; a reply-button body over 1024 stays Meta's 100.
    sandbox.customer_wrote(CUSTOMER)
    body = list_body(type="button", body={"text": "b" * 1025}, action={"buttons": []})
    refusal(post(sandbox, body), 100)


def test_reset_forgets_lists(sandbox, graph):
    sandbox.customer_wrote(CUSTOMER)
    graph.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=RATINGS)
    assert requests.post(f"{sandbox.url}/_sandbox/reset", json={}, timeout=5).json() == {"ok": True}
    assert requests.get(f"{sandbox.url}/_sandbox/lists", timeout=5).json() == {"lists": []}


# == the fake ======================================================================================


def test_the_fake_records_lists_and_refuses_what_the_sandbox_refuses():
    fake = FakeGraph(enforce_window=True)
    with pytest.raises(WindowClosed):
        fake.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=RATINGS)
    fake.customer_wrote(CUSTOMER, PNID)
    wamid = fake.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=RATINGS, section_title="Rating")
    assert fake.lists == [
        {
            "wamid": wamid,
            "phone_number_id": PNID,
            "to": to(),
            "body": QUESTION,
            "button": "Rate us",
            "rows": RATINGS,
            "section_title": "Rating",
        }
    ]
    with pytest.raises(GraphRejected) as refused:
        fake.send_list(PNID, to(), body=QUESTION, button="B" * 21, rows=RATINGS)
    assert (refused.value.code, refused.value.title) == (131009, "Parameter value is not valid")
    assert "at most 20" in refused.value.details
    # Scripted failures come first and send nothing, as for every operation.
    fake.fail("send_list", GraphUnavailable("down"), None)
    with pytest.raises(GraphUnavailable):
        fake.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=RATINGS)
    fake.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=RATINGS)
    assert len(fake.lists) == 2 and fake.calls.count("send_list") == 5
    assert fake.sent == []  # a list is not a text


def test_the_fake_does_not_keep_the_callers_rows():
    fake = FakeGraph()
    rows = copy.deepcopy(RATINGS)
    fake.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=rows)
    rows[0]["title"] = "changed"
    assert fake.lists[0]["rows"][0]["title"] == "Poor"


# == cassettes, checked against the spec ==========================================================

VCR = cassette_recorder("graph_adapter", authorization=FAKE_BEARER)
CASSETTE_TOKEN = "fake-graph-token"


@pytest.fixture
def recording_sandbox() -> Iterator[GraphSandbox]:
    # In replay the sandbox is never started: its steering only changes memory no request reads.
    sb = GraphSandbox(access_token=CASSETTE_TOKEN)
    if RECORD:
        sb.start()
    yield sb
    if RECORD:
        sb.stop()


@pytest.fixture
def taped(recording_sandbox: GraphSandbox) -> GraphAdapter:
    base_url = recording_sandbox.url if RECORD else REPLAY_URL
    return GraphAdapter.connect(base_url=base_url, api_version=API, access_token=CASSETTE_TOKEN, timeout=5)


@pytest.fixture
def cassette(request: pytest.FixtureRequest) -> Iterator[Any]:
    with open_cassette(VCR, cassette_name(request.node)) as recorded_cassette:
        yield recorded_cassette


def test_send_list_goes_out_as_an_interactive_list(recording_sandbox, taped, cassette):
    recording_sandbox.customer_wrote(CUSTOMER)
    wamid = taped.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=RATINGS, section_title="Rating")
    assert wamid.startswith("wamid.")
    ((request, response),) = recorded(cassette)
    assert request.uri.endswith(f"/{API}/{PNID}/messages")
    assert request.headers["Authorization"] == FAKE_BEARER  # the filter ran; replay needs no token
    assert json_of(request.body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER,
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": QUESTION},
            "action": {"button": "Rate us", "sections": [{"title": "Rating", "rows": RATINGS}]},
        },
    }
    assert json_of(response["body"]["string"])["messages"][0]["id"] == wamid
    # The body against the spec's `InteractiveMessage` (its `ActionObject` list branch).
    spec = whatsapp_spec()
    schema = send_schema(spec, json_of(request.body))
    assert schema["properties"]["interactive"] == {"$ref": "#/components/schemas/InteractiveObject"}
    assert spec_problems(cassette) == []


def test_send_list_refuses_an_oversize_row_title(recording_sandbox, taped, cassette):
    recording_sandbox.customer_wrote(CUSTOMER)
    rows = [{"id": "csat:1", "title": "Not what I hoped for at all"}]  # 27 characters
    with pytest.raises(GraphRejected) as refused:
        taped.send_list(PNID, to(), body=QUESTION, button="Rate us", rows=rows)
    assert (refused.value.status, refused.value.code) == (400, 131009)
    assert refused.value.details and refused.value.fbtrace_id
    assert spec_problems(cassette) == []


def test_the_spec_check_sees_a_bad_list():
    # Without this, a checker that accepted every list would make the cassette tests pass. The
    # checker reads shapes, not lengths (tests/support/schema.py): a row without its title.
    spec = whatsapp_spec()
    good = list_message(to(), body=QUESTION, button="Rate us", rows=RATINGS)
    assert spec.errors(good, send_schema(spec, good), direction="request") == []
    bad = copy.deepcopy(good)
    del bad["interactive"]["action"]["sections"][0]["rows"][0]["title"]
    assert spec.errors(bad, send_schema(spec, bad), direction="request") != []


def test_the_sandbox_limits_are_the_specs():
    # The lengths the spec's schema checker skips, read from the spec itself, so the sandbox (and
    # the config validation of the CSAT texts) cannot drift from Meta's description.
    spec = whatsapp_spec()
    action = next(
        alt
        for alt in spec.component("ActionObject")["oneOf"]
        if alt.get("required") == ["button", "sections"]
    )
    section = spec.component("SectionObject")["properties"]
    row = section["rows"]["items"]["properties"]
    assert spec.component("BodyObject")["properties"]["text"]["maxLength"] == list_rules.BODY_MAX
    assert action["properties"]["button"]["maxLength"] == list_rules.BUTTON_MAX
    assert action["properties"]["sections"]["maxItems"] == list_rules.SECTIONS_MAX
    assert section["title"]["maxLength"] == list_rules.SECTION_TITLE_MAX
    assert "more than one section" in section["title"]["description"]
    assert (
        section["rows"]["maxItems"] == list_rules.ROWS_MAX
    )  # per section in the spec; in all per Meta's guide
    assert row["id"]["maxLength"] == list_rules.ROW_ID_MAX
    assert row["title"]["maxLength"] == list_rules.ROW_TITLE_MAX
    assert row["description"]["maxLength"] == list_rules.ROW_DESCRIPTION_MAX
    assert spec.component("FooterObject")["properties"]["text"]["maxLength"] == list_rules.FOOTER_MAX
    assert spec.component("HeaderObject")["properties"]["text"]["maxLength"] == list_rules.HEADER_TEXT_MAX
    assert (LIST_BODY_MAX_CHARS, LIST_BUTTON_MAX_CHARS, LIST_ROW_TITLE_MAX_CHARS) == (
        list_rules.BODY_MAX,
        list_rules.BUTTON_MAX,
        list_rules.ROW_TITLE_MAX,
    )


def test_no_cassette_holds_the_token():
    for name in ("send_list_goes_out_as_an_interactive_list", "send_list_refuses_an_oversize_row_title"):
        text = (CASSETTES / "graph_adapter" / f"{name}.yaml").read_text(encoding="utf-8")
        assert CASSETTE_TOKEN not in text and FAKE_BEARER in text
