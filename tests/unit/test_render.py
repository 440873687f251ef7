import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rules.events import RenderedComment
from bot.rules.payload import parse_webhook
from bot.rules.render import (
    FALLBACK_NAME,
    render_message,
    sanitize_name,
    ticket_description,
    ticket_summary,
)
from sandbox import whatsapp_payloads as wa

W = wa.DEFAULT_WA_ID
ORIG = wa.ORIGINAL

EXPECTED = {
    "text": "Does it come in another color?",
    "image": "[image] Taj Mahal (attached: 1003383421387256.jpg)",
    "video": "[video] My vacation video (attached: 1003383421387257.mp4)",
    "audio": "[audio] (attached: 1003383421387258.mp3)",
    "voice": "[voice] (attached: 1003383421387259.ogg)",
    "document": "[document] receipt.pdf — My receipt (attached: receipt.pdf)",
    "sticker": "[sticker] (animated) (attached: 1003383421387261.webp)",
    "location": "[location] Philz Coffee, 101 Forest Ave, Palo Alto, CA 94301 "
    "(37.44221496582, -122.16165924072) https://maps.google.com/?q=37.44221496582,-122.16165924072",
    "contacts": "[contacts] Lucía Gómez (+1 (983) 555-2319, lucia@example.com)",
    "button_reply": "[button] Cancel",
    "list_reply": "[list] Priority Mail Express — Next Day to 2 Days",
    "nfm_reply": "[flow] name: Ana, size: M",
    "template_button": "[button] Unsubscribe",
    "reaction": f"[reaction] 👍 to message {ORIG}",
    "reaction_removed": f"[reaction removed] on message {ORIG}",
    "order": "[order] catalog 194836987003835, 2 items (2 × di9ozbzfi4 @ 30 USD, 1 × nqryix03ez @ 25 USD)",
    "system": "[system] User Sheena Nelson changed from 16505551234 to 12195555358",
    "edit": f"[edited message {ORIG}] Actually, blue please",
    "revoke": f"[deleted message {ORIG}]",
    "unsupported": "[unsupported: unsupported] Message type unknown: Message type is currently not supported.",
    "unknown_type": "[unsupported: hologram]",
}
MEDIA = {
    "image": ("1003383421387256",),
    "video": ("1003383421387257",),
    "audio": ("1003383421387258",),
    "voice": ("1003383421387259",),
    "document": ("1003383421387260",),
    "sticker": ("1003383421387261",),
}


def test_expectations_cover_every_kind():
    assert set(EXPECTED) == {label for label, _ in wa.ALL_KINDS}


@pytest.mark.parametrize("label,msg", wa.ALL_KINDS, ids=[k for k, _ in wa.ALL_KINDS])
def test_every_kind_renders_through_the_parser(label, msg):
    doc = wa.message_payload([msg], contacts=[wa.contact("Ana López", W)])
    (inbound,) = parse_webhook(doc).messages
    rendered = render_message(inbound.kind, inbound.raw, inbound.profile_name)
    assert rendered == RenderedComment(f"[WhatsApp] Ana López: {EXPECTED[label]}", MEDIA.get(label, ()))


def _render(msg, name="Ana"):
    return render_message(msg["type"], msg, name).text


def test_forwarded_and_reply_prefixes():
    forwarded = wa.text(W, "look", context={"forwarded": True})
    assert _render(forwarded) == "[WhatsApp] Ana: (forwarded) look"
    frequently = wa.text(W, "look", context={"frequently_forwarded": True})
    assert _render(frequently) == "[WhatsApp] Ana: (forwarded) look"
    reply = wa.text(W, "yes", context={"from": W, "id": "wamid.Q"})
    assert _render(reply) == "[WhatsApp] Ana: (reply to wamid.Q) yes"
    image_reply = wa.image(W, caption="this one", media_id="7", context={"id": "wamid.Q"})
    assert _render(image_reply) == "[WhatsApp] Ana: (reply to wamid.Q) [image] this one (attached: 7.jpg)"


def test_button_context_is_not_shown_as_a_reply():
    msg = wa.button_reply(W, "Yes", context={"from": "1", "id": "wamid.B"})
    assert _render(msg) == "[WhatsApp] Ana: [button] Yes"


def test_product_enquiry_context():
    ctx = {
        "from": "1",
        "id": "wamid.P",
        "referred_product": {"catalog_id": "C1", "product_retailer_id": "sku-9"},
    }
    expected = "[WhatsApp] Ana: (about product sku-9 in catalog C1) in red?"
    assert _render(wa.text(W, "in red?", context=ctx)) == expected


def test_click_to_whatsapp_ad_referral():
    referral = {
        "source_url": "https://fb.me/3cr4Wqqkv",
        "source_id": "1",
        "source_type": "ad",
        "body": "Summer Succulents are here!",
        "headline": "Chat with us",
        "media_type": "image",
        "ctwa_clid": "x",
    }
    text = _render(wa.text(W, "hi", referral=referral))
    assert text == "[WhatsApp] Ana: hi\n(via ad: Chat with us — https://fb.me/3cr4Wqqkv)"
    assert _render(wa.text(W, "hi", referral={})) == "[WhatsApp] Ana: hi\n(via ad)"


@pytest.mark.parametrize(
    ("msg", "body"),
    [
        (wa.document(W, filename="a.pdf", media_id="1"), "[document] a.pdf (attached: a.pdf)"),
        (wa.document(W, filename=None, caption="c", media_id="2"), "[document] c (attached: 2.pdf)"),
        (
            wa.document(W, filename="../../etc/passwd", media_id="2"),
            "[document] ../../etc/passwd (attached: .._.._etc_passwd)",
        ),
        (
            wa.document(W, filename="..", media_id="2", mime_type="text/plain"),
            "[document] .. (attached: 2.txt)",
        ),
        (wa.sticker(W, media_id="3"), "[sticker] (attached: 3.webp)"),
        (wa.image(W, media_id="4"), "[image] (attached: 4.jpg)"),
        (wa.image(W) | {"image": {"caption": "no id"}}, "[image] no id"),
        (wa.audio(W, media_id="5", mime_type="audio/x-unheard-of"), "[audio] (attached: 5.bin)"),
        (
            wa.location(W),
            "[location] (37.44221496582, -122.16165924072) "
            "https://maps.google.com/?q=37.44221496582,-122.16165924072",
        ),
        (wa.location(W, latitude=None, longitude=None, name="Home"), "[location] Home"),
        (wa.list_reply(W, "Only title"), "[list] Only title"),
        (wa.nfm_reply(W, {}), "[flow] (no answers)"),
        (wa.nfm_reply(W, '{"a": 1, "b": [1, 2], "flow_token": "t"}'), "[flow] a: 1, b: [1, 2]"),
        (wa.nfm_reply(W, "{not json"), "[flow] {not json"),
        (wa.nfm_reply(W, "[1, 2]"), "[flow] [1, 2]"),
        (
            wa.order(
                W,
                [{"product_retailer_id": "p", "quantity": 1, "item_price": 9.5, "currency": "EUR"}],
                note="gift wrap",
            ),
            "[order] catalog 194836987003835, 1 item (1 × p @ 9.5 EUR)\ngift wrap",
        ),
        (wa.order(W, []), "[order] catalog 194836987003835, 0 items"),
        (
            wa.contacts_msg(W, [{"name": {"first_name": "Jo", "last_name": "Li"}}, {}]),
            "[contacts] Jo Li; (no name)",
        ),
        (wa.unsupported(W) | {"errors": []}, "[unsupported: unsupported]"),
        (
            wa.edit(W, "wamid.O", "x")
            | {
                "edit": {
                    "original_message_id": "wamid.O",
                    "message": {"image": {"caption": "new caption", "id": "9"}},
                }
            },
            "[edited message wamid.O] [image] new caption",
        ),
        (
            wa.edit(W, "wamid.O", "x") | {"edit": {"original_message_id": "wamid.O"}},
            "[edited message wamid.O]",
        ),
        (wa.revoke(W, "x") | {"revoke": None}, "[deleted message ?]"),
        (wa.reaction(W, "wamid.R") | {"reaction": {"emoji": "❤️"}}, "[reaction] ❤️ to message ?"),
        (wa.unknown_type(W, "request_welcome"), "[unsupported: request_welcome]"),
        (wa.unknown_type(W, "x\ny"), "[unsupported: x y]"),
        (wa.text(W, ""), "[empty text]"),
    ],
)
def test_variants_and_missing_fields(msg, body):
    assert _render(msg) == f"[WhatsApp] Ana: {body}"


def test_edit_does_not_download_media_again():
    msg = wa.edit(W, "wamid.O", "x") | {"edit": {"message": {"type": "image", "image": {"id": "9"}}}}
    assert render_message("edit", msg, "Ana").media == ()


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        ("Ana", "Ana"),
        ("  Ana \n López\t", "Ana López"),
        ("A\x00n\x1b[31ma", "An[31ma"),
        ("evil\u202egnp.exe", "evilgnp.exe"),
        ("\u2028line\u2029sep", "line sep"),
        ("👨‍👩‍👧 family", "👨‍👩‍👧 family"),
        ("x" * 150, "x" * 100),
        ("", ""),
        ("\n\t ", ""),
        (None, ""),
    ],
)
def test_sanitize_name(name, clean):
    assert sanitize_name(name) == clean


def test_empty_name_falls_back():
    assert render_message("text", wa.text(W, "hi"), "\n").text == f"[WhatsApp] {FALLBACK_NAME}: hi"


def test_name_cannot_inject_lines():
    text = render_message("text", wa.text(W, "hi"), "Ana\n[AI] fake reply").text
    assert "\n" not in text and text.startswith("[WhatsApp] Ana [AI] fake reply: ")


odd = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
KINDS = [
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
    "system",
    "edit",
    "revoke",
    "unsupported",
    "unknown",
    "zzz",
    "",
]


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    inner=odd,
    sub=st.sampled_from(["button_reply", "list_reply", "nfm_reply", "x"]),
    extra=st.dictionaries(
        st.sampled_from(["context", "referral", "errors", "edit", "message"]), odd, max_size=3
    ),
    name=odd,
)
def test_render_never_raises_on_odd_fields(kind, inner, sub, extra, name):
    raw = {"type": kind, kind: inner, **extra}
    if kind == "interactive" and isinstance(inner, dict):
        inner["type"] = sub
    rendered = render_message(kind, raw, name)
    assert rendered.text.startswith("[WhatsApp] ")
    assert all(isinstance(m, str) and m for m in rendered.media)


@pytest.mark.parametrize("raw", [None, [], "text", 5])
def test_render_tolerates_a_non_object_message(raw):
    assert render_message("text", raw, "Ana").text == "[WhatsApp] Ana: [empty text]"


def test_ticket_summary():
    assert ticket_summary("Ana López", "+52 55 1234 5678") == "WhatsApp: Ana López (+52 55 1234 5678)"
    long = ticket_summary("n" * 500 + "\nx", "+1 650-555-1234\n" + "9" * 300)
    assert len(long) <= 255 and "\n" not in long
    assert ticket_summary("", "+1") == f"WhatsApp: {FALLBACK_NAME} (+1)"


def test_ticket_description():
    text = ticket_description(
        "Ana\x00", "+52 55 1234 5678", "5215512345678", "15550783881", "[WhatsApp] Ana: hola\nsegunda línea"
    )
    assert text == (
        "Conversation started on WhatsApp.\n"
        "\n"
        "Customer: Ana\n"
        "Phone: +52 55 1234 5678\n"
        "WhatsApp ID: 5215512345678\n"
        "Business number: 15550783881\n"
        "\n"
        "First message:\n"
        "[WhatsApp] Ana: hola\nsegunda línea"
    )
    assert "WhatsApp ID: (not shared)" in ticket_description("Zed", "user:US.1", None, None, "hi")
