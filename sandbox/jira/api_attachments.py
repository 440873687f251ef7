"""Attachment upload and download (multipart, guarded by Jira's XSRF header)."""

from __future__ import annotations

import mimetypes

from sandbox.web import Response

from .model import ApiError
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
    item = sb.store.attachments.get(req.params["id"])
    if item is None:
        raise ApiError(404, f"The attachment with id '{req.params['id']}' does not exist.")
    return Response(200, item.data, content_type=item.mime_type)
