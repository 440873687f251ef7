"""Check a `POST /{version}/{phone-number-id}/messages` body the way the Cloud API does.

Pure: a dict in, a parsed `Send` or `MarkRead` out, or a `GraphError` raised. The rules are the
spec's `Message` schemas (`TextMessage`, `MediaObject`, `TemplateObject`, …) plus the documented
limits the schemas leave out (4096 for text bodies, 1024 for captions and interactive bodies);
interactive lists are checked in full by `interactive.check_list`.
The spec lists `recipient_type` as required but the live API defaults it to "individual", and
`type` defaults to "text"; both defaults are kept so a minimal client is not punished for it.

Business-scoped user ids (BSUIDs, `US.13491208655302741918`, parent ids `US.ENT.…`) are newer
than the v23 spec: Meta's BSUID guide adds a `recipient` field for them. `to` stays a phone
number (or group id); a body with both is sent to `to`, as Meta documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import invalid_parameter
from .interactive import check_list

TEXT_MAX = 4096
CAPTION_MAX = 1024
MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")
SEND_TYPES = ("text", "template", "interactive", "reaction", "location", "contacts", *MEDIA_TYPES)
INTERACTIVE_TYPES = (
    "button",
    "list",
    "cta_url",
    "flow",
    "product",
    "product_list",
    "catalog_message",
    "location_request_message",
    "address_message",
    "call_permission_request",
)
_CAPTIONED = ("image", "document", "video")
# ISO 3166 alpha-2 country, a dot, optionally `ENT.` (parent BSUID), up to 128 alphanumerics.
_BSUID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")


@dataclass(frozen=True)
class Send:
    to: str  # as the client wrote it (`to`, else `recipient`): echoed back as contacts[].input
    wa_id: str  # what the window and the status webhooks key on: digits, or the `recipient` BSUID
    type: str
    body: str | None  # text body, media caption or interactive body, for assertions
    template: dict[str, Any] | None
    context_id: str | None
    payload: dict[str, Any] = field(repr=False)
    user_id: str | None = None  # the BSUID when the send went by `recipient`

    @property
    def free_form(self) -> bool:
        # Only templates may open a conversation; everything else needs the 24 h window.
        return self.type != "template"


@dataclass(frozen=True)
class MarkRead:
    message_id: str
    typing: bool


def parse(body: dict[str, Any]) -> Send | MarkRead:
    """Validate one /messages body.

    Raises:
        GraphError: code 100 with the reason in `error_data.details`.
    """
    product = body.get("messaging_product")
    if product is None:
        raise invalid_parameter("The parameter messaging_product is required.")
    if product != "whatsapp":
        raise invalid_parameter("Param messaging_product must be 'whatsapp'.")
    if "status" in body:
        return _mark_read(body)
    return _send(body)


def _mark_read(body: dict[str, Any]) -> MarkRead:
    if body.get("status") != "read":
        raise invalid_parameter("Param status must be 'read'.")
    message_id = body.get("message_id")
    if not isinstance(message_id, str) or not message_id:
        raise invalid_parameter("The parameter message_id is required.")
    typing = body.get("typing_indicator")
    if typing is not None and (not isinstance(typing, dict) or typing.get("type") != "text"):
        raise invalid_parameter("Param typing_indicator['type'] must be 'text'.")
    return MarkRead(message_id=message_id, typing=typing is not None)


def _address(body: dict[str, Any]) -> tuple[str, str, str | None]:
    """(input, window/status key, BSUID or None) of the addressee; `to` wins over `recipient`."""
    to = body.get("to")
    if to is None and "recipient" in body:
        recipient = body["recipient"]
        if not isinstance(recipient, str) or not _BSUID.fullmatch(recipient):
            raise invalid_parameter(f"Param recipient must be a business-scoped user id, got '{recipient}'.")
        return recipient, recipient, recipient
    if not isinstance(to, str) or not to.strip():
        raise invalid_parameter("The parameter to is required.")
    wa_id = re.sub(r"\D", "", to)
    if not 5 <= len(wa_id) <= 15:
        raise invalid_parameter(f"Param to must be a valid phone number, got '{to}'.")
    return to, wa_id, None


def _send(body: dict[str, Any]) -> Send:
    to, wa_id, user_id = _address(body)
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type not in ("individual", "group"):
        raise invalid_parameter("Param recipient_type must be one of {individual, group}.")
    kind = body.get("type", "text")
    if kind not in SEND_TYPES:
        raise invalid_parameter(f"Param type must be one of {{{', '.join(SEND_TYPES)}}}, got '{kind}'.")
    content = body.get(kind)
    if not isinstance(content, dict) and not (kind == "contacts" and isinstance(content, list)):
        raise invalid_parameter(f"The parameter {kind} is required.")
    context = body.get("context")
    if context is not None and not (isinstance(context, dict) and isinstance(context.get("message_id"), str)):
        raise invalid_parameter("Param context['message_id'] must be a message id.")
    text, template = _CHECKS[kind](kind, content)
    return Send(
        to=to,
        wa_id=wa_id,
        type=kind,
        body=text,
        template=template,
        context_id=context["message_id"] if context else None,
        payload=body,
        user_id=user_id,
    )


def _string(value: Any, name: str, max_len: int | None = None, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise invalid_parameter(f"The parameter {name} is required.")
    if max_len is not None and len(value) > max_len:
        raise invalid_parameter(f"Param {name} must be at most {max_len} characters long.")
    return value


def _text(kind: str, content: dict[str, Any]) -> tuple[str | None, None]:
    body = _string(content.get("body"), "text['body']", TEXT_MAX)
    if "preview_url" in content and not isinstance(content["preview_url"], bool):
        raise invalid_parameter("Param text['preview_url'] must be a boolean.")
    return body, None


def _media(kind: str, content: dict[str, Any]) -> tuple[str | None, None]:
    has_id, has_link = bool(content.get("id")), bool(content.get("link"))
    if has_id == has_link:
        raise invalid_parameter(f"Param {kind} must contain exactly one of {kind}['id'] or {kind}['link'].")
    caption = content.get("caption")
    if caption is not None and kind not in _CAPTIONED:
        raise invalid_parameter(f"Param {kind}['caption'] is not supported for {kind} messages.")
    return _string(caption, f"{kind}['caption']", CAPTION_MAX, required=False), None


def _template(kind: str, content: dict[str, Any]) -> tuple[None, dict[str, Any]]:
    _string(content.get("name"), "template['name']")
    language = content.get("language")
    if not isinstance(language, dict) or not isinstance(language.get("code"), str):
        raise invalid_parameter("The parameter template['language']['code'] is required.")
    components = content.get("components", [])
    if not isinstance(components, list) or not all(isinstance(c, dict) and "type" in c for c in components):
        raise invalid_parameter("Param template['components'] must be a list of components with a type.")
    return None, content


def _interactive(kind: str, content: dict[str, Any]) -> tuple[str | None, None]:
    if content.get("type") not in INTERACTIVE_TYPES:
        raise invalid_parameter(
            f"Param interactive['type'] must be one of {{{', '.join(INTERACTIVE_TYPES)}}}."
        )
    if content["type"] == "list":
        return check_list(content), None  # lists are checked part by part (interactive.py)
    if not isinstance(content.get("action"), dict):
        raise invalid_parameter("The parameter interactive['action'] is required.")
    body = content.get("body")
    text = None
    if body is not None:
        if not isinstance(body, dict):
            raise invalid_parameter("Param interactive['body'] must be an object.")
        text = _string(body.get("text"), "interactive['body']['text']", CAPTION_MAX)
    return text, None


def _reaction(kind: str, content: dict[str, Any]) -> tuple[str | None, None]:
    _string(content.get("message_id"), "reaction['message_id']")
    emoji = content.get("emoji")
    if not isinstance(emoji, str):  # "" is how a reaction is removed
        raise invalid_parameter("The parameter reaction['emoji'] is required.")
    return emoji, None


def _location(kind: str, content: dict[str, Any]) -> tuple[str | None, None]:
    for key in ("latitude", "longitude"):
        if not isinstance(content.get(key), (int, float, str)) or isinstance(content.get(key), bool):
            raise invalid_parameter(f"The parameter location['{key}'] is required.")
    return content.get("name"), None


def _contacts(kind: str, content: Any) -> tuple[None, None]:
    if not isinstance(content, list) or not 1 <= len(content) <= 5:
        raise invalid_parameter("Param contacts must be a list of 1 to 5 contact objects.")
    for card in content:
        if not isinstance(card, dict) or not isinstance(card.get("name"), dict):
            raise invalid_parameter("The parameter contacts['name'] is required.")
    return None, None


# Each check takes the type's content and returns (text, template) for the sent record.
_CHECKS: dict[str, Callable[[str, Any], tuple[str | None, dict[str, Any] | None]]] = {
    "text": _text,
    "template": _template,
    "interactive": _interactive,
    "reaction": _reaction,
    "location": _location,
    "contacts": _contacts,
    **dict.fromkeys(MEDIA_TYPES, _media),
}
