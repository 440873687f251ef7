import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rules.media import (
    MAX_FILENAME_CHARS,
    MediaRef,
    attachment_name,
    extension_for,
    media_ref,
    parse_sha256,
    sanitize_filename,
    sha256_matches,
)
from sandbox import whatsapp_payloads as wa

W = wa.DEFAULT_WA_ID
DATA = b"\x89PNG\r\n\x1a\n not really a png"
HEX = hashlib.sha256(DATA).hexdigest()
B64 = base64.b64encode(hashlib.sha256(DATA).digest()).decode()


@pytest.mark.parametrize(
    ("msg", "name"),
    [
        (wa.image(W, media_id="1003383421387256"), "1003383421387256.jpg"),
        (wa.image(W, media_id="7", mime_type="image/png"), "7.png"),
        (wa.video(W, media_id="7"), "7.mp4"),
        (wa.video(W, media_id="7", mime_type="video/3gpp"), "7.3gp"),
        (wa.audio(W, media_id="7"), "7.mp3"),
        (wa.audio(W, media_id="7", voice=True), "7.ogg"),  # audio/ogg; codecs=opus
        (wa.audio(W, media_id="7", mime_type="audio/mp4"), "7.m4a"),
        (wa.audio(W, media_id="7", mime_type="AUDIO/AMR"), "7.amr"),
        (wa.sticker(W, media_id="7"), "7.webp"),
        (wa.document(W, media_id="7"), "receipt.pdf"),
        (wa.document(W, media_id="7", filename=None), "7.pdf"),
        (wa.document(W, media_id="7", filename=None, mime_type="application/zip"), "7.zip"),
        (wa.document(W, media_id="7", filename="", mime_type="text/csv"), "7.csv"),
        (wa.document(W, media_id="7", filename=None, mime_type="application/x-nonsense"), "7.bin"),
        (wa.document(W, media_id="7", filename="  Invoice\n2024.pdf "), "Invoice 2024.pdf"),
        (wa.document(W, media_id="7", filename="a/b\\c.txt"), "a_b_c.txt"),
        (wa.document(W, media_id="7", filename="x\x00\x1b.pdf"), "x.pdf"),
        (wa.document(W, media_id="7", filename="evil\u202efdp.exe"), "evilfdp.exe"),
        (wa.document(W, media_id="7", filename="..", mime_type="text/plain"), "7.txt"),
        (wa.document(W, media_id="7", filename=5, mime_type="text/plain"), "7.txt"),
        (wa.document(W, media_id="7", filename="Résumé — 😀.docx"), "Résumé — 😀.docx"),
        (wa.image(W, media_id="../7"), ".._7.jpg"),
    ],
)
def test_attachment_name(msg, name):
    assert attachment_name(msg["type"], msg) == name


def test_long_filenames_keep_their_extension():
    msg = wa.document(W, media_id="7", filename="x" * 500 + ".pdf")
    name = attachment_name("document", msg)
    assert len(name) == MAX_FILENAME_CHARS and name.endswith("x.pdf")
    no_ext = attachment_name("document", wa.document(W, media_id="7", filename="y" * 500))
    assert no_ext == "y" * MAX_FILENAME_CHARS


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("text", wa.text(W, "hi")),
        ("location", wa.location(W)),
        ("image", {"type": "image"}),
        ("image", {"type": "image", "image": {"caption": "no id"}}),
        ("image", {"type": "image", "image": {"id": "  "}}),
        ("image", {"type": "image", "image": "not an object"}),
        ("image", None),
        ("edit", wa.edit(W, "wamid.O", "x")),
    ],
)
def test_nothing_to_name(kind, raw):
    assert attachment_name(kind, raw) is None
    assert media_ref(kind, raw) is None


def test_media_ref_carries_what_the_task_needs():
    msg = wa.document(W, media_id="42", filename="a.pdf")
    assert media_ref("document", msg) == MediaRef(
        kind="document",
        media_id="42",
        mime_type="application/pdf",
        sha256=msg["document"]["sha256"],
        attachment_name="a.pdf",
    )


@pytest.mark.parametrize(
    ("mime", "ext"),
    [
        ("image/jpeg", ".jpg"),
        ("image/webp", ".webp"),
        ("audio/ogg; codecs=opus", ".ogg"),
        ("audio/mpeg", ".mp3"),
        ("application/pdf", ".pdf"),
        ("", ".bin"),
        (None, ".bin"),
        ("nonsense", ".bin"),
        ("application/json", ".json"),
    ],
)
def test_extension_for(mime, ext):
    assert extension_for(mime) == ext


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (HEX, True),
        (HEX.upper(), True),
        (B64, True),
        (B64.rstrip("="), True),
        (B64.replace("+", "-").replace("/", "_"), True),
        (f"  {HEX} ", True),
        (hashlib.sha256(b"other").hexdigest(), False),
        (base64.b64encode(hashlib.sha256(b"other").digest()).decode(), False),
        ("", False),
        ("not a hash", False),
        (HEX[:-2], False),
        (base64.b64encode(b"short").decode(), False),
        ("é" * 44, False),
        (None, False),
    ],
)
def test_sha256_matches_either_encoding(value, ok):
    assert sha256_matches(value, DATA) is ok


def test_the_specs_example_hash_is_read_as_base64():
    # whatsapp-business-messaging-v23.openapi.yaml, ImageMessage example
    assert len(parse_sha256("SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=")) == 32


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_sanitized_names_are_safe(name):
    clean = sanitize_filename(name)
    assert len(clean) <= MAX_FILENAME_CHARS
    assert not any(ch in clean for ch in "/\\\n\r\t\x00")
    assert clean == clean.strip()
    assert clean.strip(".") or clean == ""
