"""Files agents attach in Jira, read by `JiraAdapter` from the Jira sandbox over loopback HTTP.

Jira Cloud's comments name a file by its Media Services id; `GET /attachment/content/{id}`
answers 303 to `…/file/{media id}/binary?token=…`, which is how the adapter matches a node to an
attachment, and where it downloads the bytes. Server/DC (API v2) serves the bytes itself.
The recorded versions of these calls, checked against Atlassian's spec, are in
test_jira_agent_files_cassettes.py.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bot import logs
from bot.jira_api.adapter import JiraAdapter
from bot.jira_api.attachment_calls import media_id_from_location
from bot.jira_api.errors import IssueNotFound, JiraAuthFailed, JiraRejected, JiraUnavailable, RateLimited
from sandbox.httpserver import LoopbackServer
from sandbox.jira import JiraSandbox

EMAIL, TOKEN, PAT = "agent@example.com", "files-test-token", "files-test-pat"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big") + (480).to_bytes(4, "big") + b"\x08\x06"
)
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


@pytest.fixture
def cloud() -> Iterator[JiraSandbox]:
    with JiraSandbox(email=EMAIL, api_token=TOKEN) as sb:
        sb.add_project("SUP")
        yield sb


@pytest.fixture
def server() -> Iterator[JiraSandbox]:
    with JiraSandbox(email=EMAIL, api_token=TOKEN, pat=PAT, deployment="server") as sb:
        sb.add_project("SUP")
        yield sb


def adapter_for(sb: JiraSandbox) -> JiraAdapter:
    if sb.settings.cloud:
        return JiraAdapter.connect(sb.url, email=EMAIL, api_token=TOKEN, timeout=5)
    return JiraAdapter.connect(sb.url, token=PAT, timeout=5)


def new_issue(sb: JiraSandbox) -> str:
    payload = {
        "fields": {"project": {"key": "SUP"}, "issuetype": {"name": "Task"}, "summary": "WhatsApp: Ana"}
    }
    with sb.store.lock:
        return sb.store.create_issue(payload, 3 if sb.settings.cloud else 2, sb.store.bot).key


def sent_requests(adapter: JiraAdapter) -> list[requests.PreparedRequest]:
    """Every request the adapter's session sends from now on, redirects included."""
    sent: list[requests.PreparedRequest] = []
    adapter._client._session.hooks["response"].append(lambda r, *a, **k: sent.append(r.request))
    return sent


def media_nodes(node: dict) -> list[dict]:
    found = [node] if node.get("type") == "media" else []
    for child in node.get("content") or []:
        found += media_nodes(child)
    return found


# -- Cloud: the redirect names the file, and leads to it ------------------------------------------


def test_a_media_node_resolves_to_its_attachment_through_the_redirect(cloud):
    key = new_issue(cloud)
    made = cloud.add_agent_comment_with_files(
        key,
        "Your invoice and the photo",
        [("photo.png", "image/png", PNG), ("invoice.pdf", "application/pdf", PDF)],
    )
    adapter = adapter_for(cloud)
    [comment] = adapter.list_comments(key)
    node_ids = [n["attrs"]["id"] for n in media_nodes(comment["body"])]
    resolved = {a["id"]: adapter.attachment_media_id(a["id"]) for a in adapter.list_attachments(key)}
    assert node_ids == [a["media_id"] for a in made["attachments"]]
    assert resolved == {a["id"]: a["media_id"] for a in made["attachments"]}
    assert "GET /media/file/{mediaId}/binary" not in cloud.calls  # the id alone: no file was fetched


def test_the_content_follows_the_redirect_to_the_file(cloud):
    key = new_issue(cloud)
    [png, pdf] = cloud.add_agent_comment_with_files(
        key, "", [("photo.png", "image/png", PNG), ("invoice.pdf", "application/pdf", PDF)]
    )["attachments"]
    adapter = adapter_for(cloud)
    sent = sent_requests(adapter)
    assert adapter.attachment_content(pdf["id"], max_bytes=len(PDF)) == PDF
    assert adapter.attachment_content(png["id"], max_bytes=10_000) == PNG
    first, second = (urlsplit(r.url) for r in sent[:2])
    assert first.path == f"/rest/api/3/attachment/content/{pdf['id']}" and not first.query
    assert second.path == f"/media/file/{pdf['media_id']}/binary"
    assert parse_qs(second.query)["name"] == ["invoice.pdf"] and parse_qs(second.query)["token"]


def test_a_file_over_the_cap_is_rejected_without_reading_it(cloud):
    key = new_issue(cloud)
    [pdf] = cloud.add_agent_comment_with_files(key, "big", [("big.pdf", "application/pdf", PDF)])[
        "attachments"
    ]
    with pytest.raises(JiraRejected, match=f"attachment {pdf['id']} is larger than 100 bytes") as err:
        adapter_for(cloud).attachment_content(pdf["id"], max_bytes=100)
    assert not isinstance(err.value, JiraUnavailable)  # retrying will not make it smaller


def test_a_missing_attachment_is_rejected_not_a_missing_issue(cloud):
    adapter = adapter_for(cloud)
    for call in (
        lambda: adapter.attachment_media_id("99999"),
        lambda: adapter.attachment_content("99999", max_bytes=1000),
    ):
        with pytest.raises(JiraRejected) as err:
            call()
        assert err.value.status == 404 and not isinstance(err.value, IssueNotFound)
        assert "The attachment with id '99999' does not exist." in str(err.value)


def test_jira_errors_on_the_content_url_map_like_every_call(cloud):
    key = new_issue(cloud)
    made = cloud.add_agent_attachment(key, "a.png", "image/png", PNG)
    attachment = made["id"]
    adapter = adapter_for(cloud)
    content = r"^/rest/api/3/attachment/content/"
    cloud.faults.fail_next(429, retry_after=4, path_regex=content)
    with pytest.raises(RateLimited) as limited:
        adapter.attachment_media_id(attachment)
    assert limited.value.retry_after == 4.0
    adapter = adapter_for(cloud)  # a new client: the 429 holds this one's whole account for 4 s
    cloud.faults.fail_next(503, path_regex=content)
    with pytest.raises(JiraUnavailable) as down:
        adapter.attachment_content(attachment, max_bytes=10_000)
    assert down.value.status == 503
    cloud.faults.fail_next(401, path_regex=r"^/media/")  # the media token expired on the way
    with pytest.raises(JiraAuthFailed):
        adapter.attachment_content(attachment, max_bytes=10_000)
    assert adapter.attachment_media_id(attachment) == made["media_id"]  # the faults are used up


def test_an_unreachable_jira_is_unavailable():
    with LoopbackServer(lambda environ, start: []) as gone:
        url = gone.url
    adapter = JiraAdapter.connect(url, email=EMAIL, api_token=TOKEN, timeout=2)
    with pytest.raises(JiraUnavailable, match="cannot reach Jira"):
        adapter.attachment_media_id("10000")


def test_jiras_credentials_never_reach_the_media_host(cloud):
    """A Jira on another origin redirects to the sandbox's media API, as Cloud does to
    api.media.atlassian.com: requests drops the Authorization header on the way."""
    key = new_issue(cloud)
    attachment = cloud.add_agent_attachment(key, "invoice.pdf", "application/pdf", PDF)
    with requests.Session() as jira_ui:  # the location Jira would answer with
        jira_ui.auth = (EMAIL, TOKEN)
        location = jira_ui.get(
            f"{cloud.url}/rest/api/3/attachment/content/{attachment['id']}", allow_redirects=False
        ).headers["Location"]

    def other_jira(environ, start_response):
        start_response("303 See Other", [("Location", location), ("Content-Length", "0")])
        return [b""]

    with LoopbackServer(other_jira) as front:
        adapter = JiraAdapter.connect(front.url, email=EMAIL, api_token=TOKEN, timeout=5)
        sent = sent_requests(adapter)
        assert adapter.attachment_content(attachment["id"], max_bytes=len(PDF)) == PDF
        assert adapter.attachment_media_id(attachment["id"]) == attachment["media_id"]
    to_jira, to_media = sent[0], sent[1]
    assert "Authorization" in to_jira.headers and "Authorization" not in to_media.headers


def test_a_stream_without_a_length_is_cut_at_the_cap():
    served: list[int] = []

    def endless(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        for _ in range(2000):  # 128 MiB if the client read it all
            served.append(1)
            yield b"\0" * 65536

    with LoopbackServer(endless) as jira:
        adapter = JiraAdapter.connect(jira.url, token=PAT, timeout=5)
        with pytest.raises(JiraRejected, match="larger than 100000 bytes"):
            adapter.attachment_content("10000", max_bytes=100_000)
    assert len(served) < 2000


def test_an_html_error_page_is_described_not_quoted():
    page = b"<html><body>502 Bad Gateway <!-- upstream secret-7f3a --></body></html>"

    def proxy(environ, start_response):
        start_response("502 Bad Gateway", [("Content-Type", "text/html"), ("Content-Length", str(len(page)))])
        return [page]

    with LoopbackServer(proxy) as jira:
        adapter = JiraAdapter.connect(jira.url, email=EMAIL, api_token=TOKEN, timeout=5)
        with pytest.raises(JiraUnavailable) as err:
            adapter.attachment_content("10000", max_bytes=1000)
    assert err.value.status == 502 and "secret-7f3a" not in str(err.value)
    assert f"no Jira error message (text/html, {len(page)} bytes)" in str(err.value)


def test_a_huge_error_body_is_read_only_so_far():
    def broken(environ, start_response):
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return (b"x" * 65536 for _ in range(64))  # 4 MiB, no length

    with LoopbackServer(broken) as jira:
        adapter = JiraAdapter.connect(jira.url, token=PAT, timeout=5)
        with pytest.raises(JiraUnavailable, match=r"text/plain, 65536 bytes"):
            adapter.attachment_media_id("10000")


def test_no_log_line_holds_the_media_token(cloud):
    key = new_issue(cloud)
    [pdf] = cloud.add_agent_comment_with_files(key, "x", [("a.pdf", "application/pdf", PDF)])["attachments"]
    adapter = adapter_for(cloud)
    sent = sent_requests(adapter)
    stream = io.StringIO()
    logs.configure("debug", "json", stream=stream)
    try:
        adapter.attachment_media_id(pdf["id"])
        adapter.attachment_content(pdf["id"], max_bytes=len(PDF))
        with pytest.raises(JiraRejected):
            adapter.attachment_content(pdf["id"], max_bytes=10)
    finally:
        logs.configure("warning", "json")
    tokens = [parse_qs(urlsplit(r.url).query)["token"][0] for r in sent if "/media/" in r.url]
    assert len(tokens) == 2  # a fresh token on each redirect
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["operation"] for e in events if e["event"] == "jira_call"] == [
        "attachment_media_id",
        "attachment_content",
        "attachment_content",
    ]
    assert not [t for t in tokens if t in stream.getvalue()] and "token=" not in stream.getvalue()


# -- Server / Data Center: the bytes come straight from Jira ---------------------------------------


def test_server_dc_has_no_media_id_and_serves_the_bytes_itself(server):
    key = new_issue(server)
    made = server.add_agent_comment_with_files(
        key, "Here", [("photo.png", "image/png", PNG), ("invoice.pdf", "application/pdf", PDF)]
    )
    adapter = adapter_for(server)
    sent = sent_requests(adapter)
    pdf = made["attachments"][1]
    assert adapter.attachment_media_id(pdf["id"]) is None
    assert adapter.attachment_content(pdf["id"], max_bytes=len(PDF)) == PDF
    assert [urlsplit(r.url).path for r in sent] == [f"/rest/api/2/attachment/content/{pdf['id']}"] * 2
    [comment] = adapter.list_comments(key)
    assert comment["body"] == "Here\n\n!photo.png!\n\n[^invoice.pdf]"  # wiki markup names the files


def test_media_id_from_location_reads_only_the_media_path():
    uuid = "5f0c7a3e-2b1d-4c8e-9a6f-0d1e2f3a4b5c"
    assert (
        media_id_from_location(f"https://api.media.atlassian.com/file/{uuid}/binary?token=t&dl=true") == uuid
    )
    assert media_id_from_location(f"/file/{uuid}/binary") == uuid
    assert media_id_from_location("https://jira.example.com/secure/attachment/10000/a.pdf") is None
    assert media_id_from_location("https://x.example/file/not-a-uuid!/binary") is None
    assert media_id_from_location(f"https://x.example/download?next=/file/{uuid}/binary") is None


# -- the sandbox, as Jira Cloud behaves -------------------------------------------------------------


def test_the_sandbox_redirects_with_a_token_and_serves_v2_and_redirect_false_directly(cloud):
    key = new_issue(cloud)
    attachment = cloud.add_agent_attachment(key, "Factura año.pdf", "application/pdf", PDF)
    with requests.Session() as s:
        s.auth = (EMAIL, TOKEN)
        base = f"{cloud.url}/rest/api"
        moved = s.get(f"{base}/3/attachment/content/{attachment['id']}", allow_redirects=False)
        assert moved.status_code == 303
        location = urlsplit(moved.headers["Location"])
        query = parse_qs(location.query, keep_blank_values=True)
        assert location.path == f"/media/file/{attachment['media_id']}/binary"
        assert query["name"] == ["Factura año.pdf"] and query["dl"] == ["true"] and query["token"][0]
        direct = s.get(
            f"{base}/3/attachment/content/{attachment['id']}?redirect=false", allow_redirects=False
        )
        v2 = s.get(f"{base}/2/attachment/content/{attachment['id']}", allow_redirects=False)
        for answer in (direct, v2):
            assert answer.status_code == 200 and answer.content == PDF
            assert answer.headers["Content-Type"].startswith("application/pdf")
    media = moved.headers["Location"]
    assert requests.get(media).content == PDF  # no Jira login: the token is the credential
    assert requests.get(media.replace(query["token"][0], "forged")).status_code == 403
    assert requests.get(media.split("?")[0]).status_code == 401
    other = cloud.add_agent_attachment(key, "other.pdf", "application/pdf", b"%PDF other")
    assert requests.get(media.replace(attachment["media_id"], other["media_id"])).status_code == 403


def test_the_control_route_posts_an_agents_comment_with_files(cloud):
    key = new_issue(cloud)
    files = [("photo.png", "image/png", PNG), ("invoice.pdf", "application/pdf", PDF)]
    answer = requests.post(
        f"{cloud.url}/_sandbox/agent-comment-with-files",
        json={
            "issue_key": key,
            "author": "Bruno Díaz",
            "text": "Both files",
            "internal": False,
            "files": [
                {"filename": n, "mime_type": m, "data_b64": base64.b64encode(d).decode()} for n, m, d in files
            ],
        },
    )
    assert answer.status_code == 201
    made = answer.json()
    [comment] = cloud.comments(key)
    issue_id = cloud.issue(key)["id"]
    assert comment["author"]["displayName"] == "Bruno Díaz" and comment["jsdPublic"] is True
    assert comment["body"]["content"][0] == {
        "type": "paragraph",
        "content": [{"type": "text", "text": "Both files"}],
    }
    group = comment["body"]["content"][1]
    assert group["type"] == "mediaGroup"
    assert [n["attrs"] for n in group["content"]] == [
        {"type": "file", "id": made["attachments"][0]["media_id"], "collection": f"jira-{issue_id}-comment",
         "alt": "photo.png", "width": 640, "height": 480},
        {"type": "file", "id": made["attachments"][1]["media_id"], "collection": f"jira-{issue_id}-comment",
         "alt": "invoice.pdf"},
    ]  # fmt: skip
    stored = {a["id"]: a["bytes"] for a in cloud.attachments(key)}
    assert [stored[a["id"]] for a in made["attachments"]] == [PNG, PDF]
    attached = requests.post(
        f"{cloud.url}/_sandbox/agent-attachment",
        json={"issue_key": key, "filename": "a.txt", "mime_type": "text/plain", "data_b64": "aGk="},
    )
    assert attached.status_code == 201 and set(attached.json()) == {"id", "media_id"}
    assert len(cloud.comments(key)) == 1  # an attachment alone makes no comment
    bad = requests.post(
        f"{cloud.url}/_sandbox/agent-comment-with-files", json={"issue_key": key, "text": "x", "files": []}
    )
    assert bad.status_code == 400


def test_one_file_is_a_media_single_and_v2_shows_wiki_references(cloud):
    key = new_issue(cloud)
    cloud.add_agent_comment_with_files(key, "One", [("photo.png", "image/png", PNG)], internal=True)
    with requests.Session() as s:
        s.auth = (EMAIL, TOKEN)
        v3 = s.get(f"{cloud.url}/rest/api/3/issue/{key}/comment").json()["comments"][0]
        v2 = s.get(f"{cloud.url}/rest/api/2/issue/{key}/comment").json()["comments"][0]
    single = v3["body"]["content"][1]
    assert single["type"] == "mediaSingle" and [n["type"] for n in single["content"]] == ["media"]
    assert v2["body"] == "One\n\n!photo.png!"
    assert v3["jsdPublic"] is False  # internal: JSM's sd.public.comment


def test_comment_authors_carry_their_time_zone(cloud):
    key = new_issue(cloud)
    cloud.add_agent_comment_with_files(key, "seeded agent", [("a.pdf", "application/pdf", PDF)])
    cloud.add_agent_comment(key, "another agent", author="Bruno Díaz")
    comments = adapter_for(cloud).list_comments(key)
    assert [c["author"]["timeZone"] for c in comments] == ["Europe/Berlin", "UTC"]
    assert adapter_for(cloud).myself()["timeZone"] == "UTC"  # the bot's: the sandbox's zone


@pytest.mark.parametrize(
    "node",
    [
        {"type": "mediaSingle", "content": []},
        {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"type": "file", "id": "a", "collection": ""}}] * 2},
        {"type": "mediaGroup", "content": [{"type": "paragraph", "content": []}]},
        {"type": "mediaGroup", "content": [{"type": "media", "attrs": {"type": "file", "collection": ""}}]},
        {"type": "mediaGroup", "content": [{"type": "media", "attrs": {"type": "picture", "id": "a", "collection": ""}}]},
        {"type": "mediaGroup", "content": [{"type": "media", "attrs": {"type": "file", "id": "a", "collection": "", "width": "9"}}]},
    ],
)  # fmt: skip
def test_the_sandbox_refuses_malformed_media_nodes(cloud, node):
    key = new_issue(cloud)
    body = {"body": {"type": "doc", "version": 1, "content": [node]}}
    answer = requests.post(f"{cloud.url}/rest/api/3/issue/{key}/comment", json=body, auth=(EMAIL, TOKEN))
    assert answer.status_code == 400 and "INVALID_INPUT" in answer.json()["errors"]["comment"]
