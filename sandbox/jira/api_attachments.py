"""Attachment upload and download (multipart, guarded by Jira's XSRF header), and the file
download Jira Cloud redirects to (Atlassian's Media Services API, with a token in the URL)."""

from __future__ import annotations

import mimetypes
import secrets
from typing import Any
from urllib.parse import quote, urlencode

from sandbox.web import Response

from . import adf
from .model import ApiError, Attachment
from .web import Request, parse_multipart


def add_attachments(sb, req: Request) -> Response:
    # Jira blocks multipart POSTs without this header as a cross-site request.
    if req.headers.get("x-atlassian-token", "").lower() != "no-check":
        raise ApiError(403, "XSRF check failed")
    issue = sb.store.find_issue(req.params["key"])
    files = [p for p in parse_multipart(req.headers.get("content-type", ""), req.body) if p.name == "file"]
    if not files:
        raise ApiError(400, "No attachments were found in the request: use the multipart field name 'file'.")
    if len(files) > 60:
        raise ApiError(413, "More than 60 files were requested to be uploaded.")
    view = sb.view(req)
    out = []
    for _name, filename, mime, data in files:
        filename = filename or "attachment"
        mime = mime or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        item = sb.store.add_attachment(issue, filename, data, mime, sb.store.bot)
        out.append(view.attachment(item))
    return Response(200, out)


def attachment_content(sb, req: Request) -> Response:
    """Cloud's v3 answers 303 to the file in Media Services unless ``redirect=false``; v2 (and
    Server/Data Center, which has only v2) sends the bytes itself."""
    item = sb.store.attachments.get(req.params["id"])
    if item is None:
        raise ApiError(404, f"The attachment with id '{req.params['id']}' does not exist.")
    if req.version >= 3 and (req.arg("redirect") or "true").lower() != "false":
        return Response(303, None, {"Location": media_url(sb, req.base, item)})
    return _file(item)


def media_url(sb, base: str, item: Attachment) -> str:
    """Where Jira Cloud sends a download: the file by media id, with a token good for it."""
    query = urlencode(
        {
            "token": sb.store.media_token(item),
            "client": secrets.token_hex(16),  # Atlassian's id of the calling app; random here
            "collection": "",
            "dl": "true",
            "name": item.filename,
        },
        quote_via=quote,
    )
    return f"{base}/media/file/{item.media_id}/binary?{query}"


def media_binary(sb, req: Request) -> Response:
    """``GET /media/file/{mediaId}/binary?token=…``: no Jira login, the token is the credential."""
    token = req.arg("token") or ""
    if not token:
        raise ApiError(401, "Missing media token.")
    item = sb.store.media_file(req.params["mediaId"], token)
    if item is None:
        raise ApiError(403, "The token does not grant access to this file.")
    return _file(item)


def _file(item: Attachment) -> Response:
    return Response(200, item.data, content_type=item.mime_type)


# -- an agent in Jira's UI (the sandbox's helpers and control routes) -----------------------------


def agent_files_comment(
    sb, key: str, text: str, files: list[tuple[str, str, bytes]], *, internal: bool, author: str
) -> dict[str, Any]:
    """Attach ``files`` (filename, mime type, bytes) as ``author`` and post one comment showing them,
    as Jira's editor does: Cloud writes ADF ``media`` nodes naming each file's media id, Server/DC
    wiki references (``!image.png!``, ``[^file.pdf]``). Internal: JSM's ``sd.public.comment``."""
    if not files:
        raise ValueError("files: at least one file is needed")
    cloud = sb.settings.cloud
    with sb.store.lock:
        issue = sb.store.find_issue(key)
        user = sb.store.agent(author)
        items = [sb.store.add_attachment(issue, name, data, mime, user) for name, mime, data in files]
        body: Any
        if cloud:
            shown = [adf.MediaFile(i.media_id, i.filename, *image_size(i.data)) for i in items]
            body = adf.media_comment(text, shown, collection=f"jira-{issue.id}-comment")
        else:
            refs = [
                adf.to_text(adf.media_comment("", [adf.MediaFile(i.media_id, i.filename)], "")) for i in items
            ]
            body = "\n\n".join([text, *refs] if text else refs)
        payload: dict[str, Any] = {"body": body}
        if internal:
            payload["properties"] = [{"key": "sd.public.comment", "value": {"internal": True}}]
        comment = sb.store.add_comment(issue, payload, 3 if cloud else 2, user)
        return {
            "comment_id": comment.id,
            "attachments": [{"id": i.id, "media_id": i.media_id} for i in items],
        }


def agent_attachment(sb, key: str, filename: str, mime: str, data: bytes, *, author: str) -> dict[str, str]:
    """Attach a file as ``author`` without any comment (Jira's attach button does that)."""
    with sb.store.lock:
        item = sb.store.add_attachment(sb.store.find_issue(key), filename, data, mime, sb.store.agent(author))
        return {"id": item.id, "media_id": item.media_id}


def image_size(data: bytes) -> tuple[int | None, int | None]:
    """Width and height of a PNG or GIF (what Jira's editor records on an image's node), else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    return None, None
