import pytest

from bot.rules.outgoing_files import MB, UPLOAD_TYPES, FileRefused, FileSend, describe_size, plan_file

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_upload_types_are_metas_list():
    assert {
        "audio/aac",
        "audio/amr",
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
        "text/plain",
        "application/pdf",
        "application/msword",
        DOCX,
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "image/jpeg",
        "image/png",
        "image/webp",
        "video/mp4",
        "video/3gpp",
    } == UPLOAD_TYPES


@pytest.mark.parametrize(
    ("filename", "mime", "size", "expected"),
    [
        ("photo.jpg", "image/jpeg", 200_000, FileSend("image", "image/jpeg")),
        ("shot.png", "image/png", 5 * MB, FileSend("image", "image/png")),
        ("clip.mp4", "video/mp4", 16 * MB, FileSend("video", "video/mp4")),
        ("clip.3gp", "video/3gpp", 1000, FileSend("video", "video/3gpp")),
        ("voice.ogg", "audio/ogg", 1000, FileSend("audio", "audio/ogg")),
        ("song.mp3", "audio/mpeg", 16 * MB, FileSend("audio", "audio/mpeg")),
        ("a.aac", "audio/aac", 10, FileSend("audio", "audio/aac")),
        ("a.amr", "audio/amr", 10, FileSend("audio", "audio/amr")),
        ("a.m4a", "audio/mp4", 10, FileSend("audio", "audio/mp4")),
        ("invoice.pdf", "application/pdf", 12 * MB, FileSend("document", "application/pdf")),
        ("notes.txt", "text/plain", 10, FileSend("document", "text/plain")),
        ("letter.docx", DOCX, 100 * MB, FileSend("document", DOCX)),
        ("old.doc", "application/msword", 10, FileSend("document", "application/msword")),
        ("sheet.xls", "application/vnd.ms-excel", 10, FileSend("document", "application/vnd.ms-excel")),
        # Too big for its own kind, small enough for a document: still sent, as a document.
        ("big.png", "image/png", 8 * MB, FileSend("document", "image/png")),
        ("big.jpg", "image/jpeg", 5 * MB + 1, FileSend("document", "image/jpeg")),
        ("long.mp4", "video/mp4", 16 * MB + 1, FileSend("document", "video/mp4")),
        ("long.mp3", "audio/mpeg", 40 * MB, FileSend("document", "audio/mpeg")),
        # A webp would be a sticker, which has rules of its own: a document.
        ("pic.webp", "image/webp", 50_000, FileSend("document", "image/webp")),
        # Unknown size: assumed to fit.
        ("photo.jpg", "image/jpeg", None, FileSend("image", "image/jpeg")),
        ("a.pdf", "application/pdf", None, FileSend("document", "application/pdf")),
        ("photo.jpg", "image/jpeg", -5, FileSend("image", "image/jpeg")),
    ],
)
def test_files_go_as_the_media_type_their_type_and_size_allow(filename, mime, size, expected):
    assert plan_file(filename=filename, mime_type=mime, size=size) == expected


@pytest.mark.parametrize(
    ("mime", "normalised"),
    [
        ("IMAGE/PNG", "image/png"),
        (" image/png ", "image/png"),
        ("text/plain; charset=UTF-8", "text/plain"),
        ("image/jpg", "image/jpeg"),
        ("audio/mp3", "audio/mpeg"),
        ("audio/x-m4a", "audio/mp4"),
    ],
)
def test_mime_types_are_normalised(mime, normalised):
    plan = plan_file(filename="whatever", mime_type=mime, size=10)
    assert isinstance(plan, FileSend) and plan.mime_type == normalised


@pytest.mark.parametrize(
    ("filename", "mime", "expected"),
    [
        ("photo.JPG", "application/octet-stream", FileSend("image", "image/jpeg")),
        ("photo.jpeg", None, FileSend("image", "image/jpeg")),
        ("invoice.pdf", "", FileSend("document", "application/pdf")),
        ("voice.opus", "application/octet-stream", FileSend("audio", "audio/ogg")),
        ("clip.3gp", None, FileSend("video", "video/3gpp")),
        (
            "deck.pptx",
            "binary/octet-stream",
            FileSend("document", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
        ),
        ("sticker.webp", None, FileSend("document", "image/webp")),
    ],
)
def test_an_unknown_type_is_guessed_from_the_filename(filename, mime, expected):
    assert plan_file(filename=filename, mime_type=mime, size=1000) == expected


def test_a_known_type_is_not_second_guessed_by_the_filename():
    assert plan_file(filename="photo.pdf", mime_type="image/png", size=10) == FileSend("image", "image/png")


@pytest.mark.parametrize(
    ("filename", "mime", "shown"),
    [
        ("archive.zip", "application/zip", "application/zip"),
        ("archive.zip", "application/octet-stream", "application/zip"),
        ("movie.mov", "video/quicktime", "video/quicktime"),
        ("anim.gif", "image/gif", "image/gif"),
        ("no_extension", None, "application/octet-stream"),
        (".png", None, "application/octet-stream"),
        ("x.unknownext", "application/octet-stream", "application/octet-stream"),
        ("page.html", "text/html", "text/html"),
    ],
)
def test_types_whatsapp_refuses_are_refused_by_name(filename, mime, shown):
    plan = plan_file(filename=filename, mime_type=mime, size=10)
    assert isinstance(plan, FileRefused)
    assert plan.reason.startswith(f"WhatsApp does not accept files of type {shown} (")


@pytest.mark.parametrize(
    ("mime", "size", "reason"),
    [
        ("application/pdf", 100 * MB + 1, "100.1 MB is over WhatsApp's 100 MB limit for documents"),
        ("image/png", 150 * MB, "150.0 MB is over WhatsApp's 100 MB limit for documents"),
        ("video/mp4", 3 * 1024 * MB, "3.0 GB is over WhatsApp's 100 MB limit for documents"),
    ],
)
def test_files_over_100_mb_are_refused(mime, size, reason):
    assert plan_file(filename="f", mime_type=mime, size=size) == FileRefused(reason)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (512, "512 bytes"),
        (1024, "1 KB"),
        (1025, "2 KB"),
        (800 * 1024, "800 KB"),
        (1024 * 1024 - 1, "1.0 MB"),
        (MB, "1.0 MB"),
        (int(12.3 * MB), "12.3 MB"),
        (12 * MB, "12.0 MB"),
        (100 * MB, "100.0 MB"),
        (100 * MB + 1, "100.1 MB"),
        (1024 * MB, "1.0 GB"),
        (-3, "0 bytes"),
    ],
)
def test_sizes_are_described_rounded_up(size, text):
    assert describe_size(size) == text


def test_sizes_beyond_floats_are_described_exactly():
    assert describe_size(10**400).endswith(" GB")
