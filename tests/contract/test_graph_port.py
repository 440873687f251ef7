"""GraphPort: the same cases against `FakeGraph` and against `GraphAdapter` on the Graph sandbox."""

from __future__ import annotations

import hashlib
import time

import pytest

from bot.whatsapp.graph import GraphRejected, Recipient, WindowClosed
from tests.contract.conftest import GraphWorld

CUSTOMER = "16505551234"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8


def test_a_text_inside_the_window_returns_a_wamid(graph_world: GraphWorld) -> None:
    graph_world.customer_wrote(CUSTOMER, time.time() - 60)
    first = graph_world.graph.send_text(graph_world.phone_number_id, Recipient(wa_id=CUSTOMER), "Hola")
    second = graph_world.graph.send_text(graph_world.phone_number_id, Recipient(wa_id=CUSTOMER), "Otra")
    assert first.startswith("wamid.") and second.startswith("wamid.") and first != second


def test_a_text_past_the_window_is_window_closed(graph_world: GraphWorld) -> None:
    graph_world.customer_wrote(CUSTOMER, time.time() - 25 * 3600)
    with pytest.raises(WindowClosed) as closed:
        graph_world.graph.send_text(graph_world.phone_number_id, Recipient(wa_id=CUSTOMER), "Hola")
    assert closed.value.code == 131047


def test_a_text_to_someone_who_never_wrote_is_window_closed(graph_world: GraphWorld) -> None:
    with pytest.raises(WindowClosed):
        graph_world.graph.send_text(graph_world.phone_number_id, Recipient(wa_id=CUSTOMER), "Hola")


def test_a_template_goes_out_past_the_window(graph_world: GraphWorld) -> None:
    graph_world.customer_wrote(CUSTOMER, time.time() - 25 * 3600)
    wamid = graph_world.graph.send_template(
        graph_world.phone_number_id,
        Recipient(wa_id=CUSTOMER),
        name="reengage",
        language="en_US",
        body_parameters=["Ana", "WA-1"],
    )
    assert wamid.startswith("wamid.")


def test_a_read_mark_is_accepted(graph_world: GraphWorld) -> None:
    graph_world.graph.mark_read(graph_world.phone_number_id, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQ", typing=True)


def test_a_medium_is_described_then_downloaded(graph_world: GraphWorld) -> None:
    graph_world.add_media("1003383421387256", JPEG, "image/jpeg")
    info = graph_world.graph.media_info("1003383421387256")
    assert info.mime_type == "image/jpeg"
    assert info.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert info.file_size == len(JPEG)
    assert graph_world.graph.download(info.url, max_bytes=1 << 20) == JPEG


def test_a_medium_over_the_limit_is_refused_as_too_large(graph_world: GraphWorld) -> None:
    graph_world.add_media("big", JPEG, "image/jpeg")
    info = graph_world.graph.media_info("big")
    with pytest.raises(GraphRejected) as refused:
        graph_world.graph.download(info.url, max_bytes=len(JPEG) - 1)
    assert refused.value.title == "too large"


def test_an_unknown_medium_is_rejected(graph_world: GraphWorld) -> None:
    with pytest.raises(GraphRejected) as rejected:
        graph_world.graph.media_info("424242")
    assert rejected.value.code == 100


# -- files to the customer: upload, then send by id --------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PDF = b"%PDF-1.7\n% contract test\n%%EOF\n"


def test_an_upload_is_described_like_any_medium(graph_world: GraphWorld) -> None:
    media_id = graph_world.graph.upload_media(
        graph_world.phone_number_id, PDF, mime_type="application/pdf", filename="receipt.pdf"
    )
    info = graph_world.graph.media_info(media_id)
    assert (info.mime_type, info.sha256, info.file_size) == (
        "application/pdf",
        hashlib.sha256(PDF).hexdigest(),
        len(PDF),
    )
    assert graph_world.graph.download(info.url, max_bytes=1 << 20) == PDF


def test_an_image_and_a_document_go_out_inside_the_window(graph_world: GraphWorld) -> None:
    graph_world.customer_wrote(CUSTOMER, time.time() - 60)
    pnid, to = graph_world.phone_number_id, Recipient(wa_id=CUSTOMER)
    image = graph_world.graph.upload_media(pnid, PNG, mime_type="image/png", filename="a.png")
    document = graph_world.graph.upload_media(pnid, PDF, mime_type="application/pdf", filename="b.pdf")
    assert image != document
    first = graph_world.graph.send_media(pnid, to, media_type="image", media_id=image, caption="Look")
    second = graph_world.graph.send_media(
        pnid, to, media_type="document", media_id=document, filename="b.pdf", caption="Read"
    )
    assert first.startswith("wamid.") and second.startswith("wamid.") and first != second


def test_media_past_the_window_are_window_closed(graph_world: GraphWorld) -> None:
    graph_world.customer_wrote(CUSTOMER, time.time() - 25 * 3600)
    pnid = graph_world.phone_number_id
    image = graph_world.graph.upload_media(pnid, PNG, mime_type="image/png", filename="a.png")
    with pytest.raises(WindowClosed) as closed:
        graph_world.graph.send_media(pnid, Recipient(wa_id=CUSTOMER), media_type="image", media_id=image)
    assert closed.value.code == 131047


def test_an_unsupported_upload_type_is_rejected_with_code_100(graph_world: GraphWorld) -> None:
    with pytest.raises(GraphRejected) as rejected:
        graph_world.graph.upload_media(
            graph_world.phone_number_id, b"PK\x03\x04", mime_type="application/zip", filename="x.zip"
        )
    assert rejected.value.code == 100
    assert "Param file must be a file with one of the following types" in rejected.value.title


def test_an_unknown_media_id_is_rejected_with_code_100(graph_world: GraphWorld) -> None:
    graph_world.customer_wrote(CUSTOMER, time.time() - 60)
    with pytest.raises(GraphRejected) as rejected:
        graph_world.graph.send_media(
            graph_world.phone_number_id, Recipient(wa_id=CUSTOMER), media_type="document", media_id="424242"
        )
    assert rejected.value.code == 100


def test_a_medium_too_large_or_of_the_wrong_kind_is_131053(graph_world: GraphWorld) -> None:
    graph_world.customer_wrote(CUSTOMER, time.time() - 60)
    pnid, to = graph_world.phone_number_id, Recipient(wa_id=CUSTOMER)
    big = graph_world.graph.upload_media(
        pnid, PNG + bytes(5 * 1024 * 1024), mime_type="image/png", filename="big.png"
    )
    pdf = graph_world.graph.upload_media(pnid, PDF, mime_type="application/pdf", filename="a.pdf")
    for media_id in (big, pdf):
        with pytest.raises(GraphRejected) as rejected:
            graph_world.graph.send_media(pnid, to, media_type="image", media_id=media_id)
        assert (rejected.value.code, rejected.value.title) == (131053, "Media upload error")
    # Too big for an image is fine for a document.
    assert graph_world.graph.send_media(pnid, to, media_type="document", media_id=big).startswith("wamid.")


# -- interactive lists (the CSAT question) ----------------------------------------------------

RATINGS = [{"id": f"csat:{n}", "title": title} for n, title in enumerate(["Poor", "Fair", "Good"], 1)]


def test_a_list_inside_the_window_returns_a_wamid(graph_world: GraphWorld) -> None:
    graph_world.customer_wrote(CUSTOMER, time.time() - 60)
    wamid = graph_world.graph.send_list(
        graph_world.phone_number_id,
        Recipient(wa_id=CUSTOMER),
        body="How did we do?",
        button="Rate us",
        rows=[*RATINGS, {"id": "csat:4", "title": "Great", "description": "Solved at once"}],
        section_title="Your rating",
    )
    assert wamid.startswith("wamid.")


def test_a_list_past_the_window_is_window_closed(graph_world: GraphWorld) -> None:
    graph_world.customer_wrote(CUSTOMER, time.time() - 25 * 3600)
    with pytest.raises(WindowClosed) as closed:
        graph_world.graph.send_list(
            graph_world.phone_number_id, Recipient(wa_id=CUSTOMER), body="How?", button="Rate", rows=RATINGS
        )
    assert closed.value.code == 131047


def test_a_list_with_an_oversize_row_title_is_rejected_with_131009(graph_world: GraphWorld) -> None:
    graph_world.customer_wrote(CUSTOMER, time.time() - 60)
    with pytest.raises(GraphRejected) as rejected:
        graph_world.graph.send_list(
            graph_world.phone_number_id,
            Recipient(wa_id=CUSTOMER),
            body="How did we do?",
            button="Rate us",
            rows=[{"id": "csat:1", "title": "x" * 25}],
        )
    assert (rejected.value.code, rejected.value.title) == (131009, "Parameter value is not valid")
    assert "24" in rejected.value.details
