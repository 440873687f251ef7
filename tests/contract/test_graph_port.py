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
