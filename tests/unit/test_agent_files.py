import pytest

from bot.rules.agent_files import (
    FileRef,
    MatchedFiles,
    file_refs,
    match_files,
    needs_media_ids,
    strip_wiki_files,
)

PNG_ID = "6e7c5b8a-1f2d-4c3b-9a8e-0d1c2b3a4f5e"
PDF_ID = "0a1b2c3d-4e5f-4061-8727-38495a6b7c8d"


def media(media_id, alt=None, kind="file", node="media"):
    attrs = {"id": media_id, "type": kind, "collection": "jira-10001-uploads"}
    if alt is not None:
        attrs["alt"] = alt
    return {"type": node, "attrs": attrs}


def doc(*content):
    return {"type": "doc", "version": 1, "content": list(content)}


def para(*content):
    return {"type": "paragraph", "content": list(content)}


def text(value):
    return {"type": "text", "text": value}


def attachment(attachment_id, filename, created="2026-12-05T10:00:00.000+0000", **extra):
    return {
        "id": attachment_id,
        "filename": filename,
        "created": created,
        "mimeType": "image/png",
        "size": 10,
        **extra,
    }


# --- file_refs: ADF -----------------------------------------------------------------------------


def test_media_nodes_are_read_in_document_order():
    body = doc(
        para(text("Here you go")),
        {"type": "mediaSingle", "attrs": {"layout": "center"}, "content": [media(PNG_ID, "photo.png")]},
        {"type": "mediaGroup", "content": [media(PDF_ID, "invoice.pdf"), media("c-3")]},
        para(text("and inline "), media("d-4", "inline.txt", node="mediaInline")),
    )
    assert file_refs(body) == [
        FileRef(PNG_ID, "photo.png"),
        FileRef(PDF_ID, "invoice.pdf"),
        FileRef("c-3", None),
        FileRef("d-4", "inline.txt"),
    ]


def test_links_and_external_images_are_not_attachments():
    external = {"type": "media", "attrs": {"type": "external", "url": "https://example.com/cat.png"}}
    body = doc(
        {"type": "mediaSingle", "content": [external]},
        {
            "type": "mediaGroup",
            "content": [media("l-1", "linked.png", kind="link"), media(PNG_ID, "photo.png")],
        },
    )
    assert file_refs(body) == [FileRef(PNG_ID, "photo.png")]


def test_a_media_node_without_a_type_counts_as_a_file():
    node = {"type": "media", "attrs": {"id": PNG_ID, "alt": "photo.png"}}
    assert file_refs(doc({"type": "mediaSingle", "content": [node]})) == [FileRef(PNG_ID, "photo.png")]


def test_the_same_file_twice_is_one_ref():
    body = doc(
        {"type": "mediaSingle", "content": [media(PNG_ID, "photo.png")]},
        {"type": "mediaSingle", "content": [media(PNG_ID, "photo.png")]},
    )
    assert file_refs(body) == [FileRef(PNG_ID, "photo.png")]


def test_media_nested_in_panels_tables_and_lists_is_found():
    cell = {"type": "tableCell", "content": [{"type": "mediaSingle", "content": [media(PNG_ID, "a.png")]}]}
    body = doc(
        {
            "type": "panel",
            "content": [{"type": "table", "content": [{"type": "tableRow", "content": [cell]}]}],
        },
        {
            "type": "bulletList",
            "content": [{"type": "listItem", "content": [para(media("x", node="mediaInline"))]}],
        },
    )
    assert file_refs(body) == [FileRef(PNG_ID, "a.png"), FileRef("x", None)]


@pytest.mark.parametrize(
    "body",
    [
        None,
        5,
        [],
        {},
        {"type": "doc", "content": "x"},
        {"type": "media"},
        {"type": "media", "attrs": "x"},
        {"type": "media", "attrs": {"id": 5, "alt": ["x"]}},
        {"type": "media", "attrs": {"id": "", "alt": "   "}},
        {"content": [None, 1, "s", [], {"type": "media", "attrs": None}]},
        b"bytes",
    ],
)
def test_any_shape_is_tolerated(body):
    assert file_refs(body) == []


def test_nesting_is_read_64_levels_deep_and_no_further():
    def nested(levels):
        node = media(PNG_ID, "deep.png")
        for _ in range(levels):
            node = {"type": "panel", "content": [node]}
        return node

    assert file_refs(nested(60)) == [FileRef(PNG_ID, "deep.png")]
    assert file_refs(nested(5000)) == []


# --- file_refs and strip_wiki_files: wiki markup --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("!photo.png!", ["photo.png"]),
        ("see !photo.png|thumbnail! and [^invoice.pdf]", ["photo.png", "invoice.pdf"]),
        ("!my photo (1).png|width=300,height=200!", ["my photo (1).png"]),
        ("[^ report 2026.pdf ]", ["report 2026.pdf"]),
        ("!a.png! !a.png! [^a.png]", ["a.png"]),
        ("!https://example.com/pixel.gif!", []),
        ("!http://evil.example/x.png|width=1!", []),
        ("Great! Thanks!", []),
        ("Great !news !", []),
        ("wow!!", []),
        ("an escaped \\!name.png\\! stays text", []),
        ("![^x]", ["x"]),
        ("!x.png|[^y.pdf]!", ["x.png"]),
        ("!a.png\n! and [^b\n.pdf]", []),
        ("[^]", []),
        ("[link|^file.pdf]", []),
    ],
)
def test_wiki_file_references(body, names):
    assert file_refs(body) == [FileRef(None, name) for name in names]


@pytest.mark.parametrize(
    ("body", "stripped"),
    [
        ("Here it is: !photo.png|thumbnail!", "Here it is: "),
        ("[^invoice.pdf] attached.\nBest, Ana", " attached.\nBest, Ana"),
        ("Great! Thanks!", "Great! Thanks!"),
        ("!https://example.com/pixel.gif!", "!https://example.com/pixel.gif!"),
        ("a !x.png! b [^y.pdf] c", "a  b  c"),
        ("", ""),
    ],
)
def test_strip_wiki_files_removes_exactly_the_file_references(body, stripped):
    assert strip_wiki_files(body) == stripped


def test_strip_wiki_files_tolerates_non_strings():
    assert strip_wiki_files(None) == ""


@pytest.mark.parametrize(
    "body",
    [
        "!!!![^" * 17_000,
        "[^" * 50_000,
        "[^a|" * 25_000,
        "!a|" * 33_000,
        "!" + "a" * 100_000,
        "\\!" * 50_000,
        "!a" + " " * 100_000 + "!",
    ],
)
def test_hostile_wiki_is_read_in_one_pass(body):
    # Bounded, possessive patterns: this only has to finish (test_text_linear_time times such shapes).
    assert isinstance(file_refs(body), list)
    assert isinstance(strip_wiki_files(body), str)


# --- match_files ------------------------------------------------------------------------------------


def test_media_ids_name_the_attachment():
    png, pdf = attachment("10001", "photo.png"), attachment("10002", "invoice.pdf")
    refs = [FileRef(PDF_ID, "renamed in the editor.pdf"), FileRef(PNG_ID, "photo.png")]
    result = match_files(refs, [png, pdf], {"10001": PNG_ID, "10002": PDF_ID})
    assert result == MatchedFiles(attachments=[pdf, png], unmatched=[])


def test_without_redirect_info_the_filename_decides():
    png = attachment("10001", "photo.png")
    result = match_files([FileRef(PNG_ID, "photo.png")], [png, attachment("10002", "other.png")], {})
    assert result.attachments == [png] and result.unmatched == []


def test_an_attachment_whose_media_id_is_known_and_different_is_another_file():
    # Same name, but the redirect says it is a different file: not a match by name.
    png = attachment("10001", "photo.png")
    result = match_files([FileRef(PNG_ID, "photo.png")], [png], {"10001": "some-other-media-id"})
    assert result == MatchedFiles(attachments=[], unmatched=[FileRef(PNG_ID, "photo.png")])


def test_the_name_fallback_only_considers_attachments_without_redirect_info():
    resolved = attachment("10005", "photo.png", created="2026-12-05T12:00:00.000+0000")
    unresolved = attachment("10001", "photo.png", created="2026-12-05T09:00:00.000+0000")
    result = match_files([FileRef(PNG_ID, "photo.png")], [resolved, unresolved], {"10005": "other"})
    assert result.attachments == [unresolved]


@pytest.mark.parametrize(
    ("attachments", "chosen"),
    [
        (
            [
                attachment("10001", "a.png", created="2026-12-05T10:00:00.000+0000"),
                attachment("10002", "a.png", created="2026-12-05T11:00:00.000+0000"),
                attachment("10003", "a.png", created="2026-12-05T09:00:00.000+0000"),
            ],
            "10002",
        ),
        (
            [
                attachment("10009", "a.png", created="2026-12-05T10:00:00.000+0000"),
                attachment("10010", "a.png", created="2026-12-05T10:00:00.000+0000"),
                attachment("9999", "a.png", created="2026-12-05T10:00:00.000+0000"),
            ],
            "10010",
        ),
        (
            [
                attachment("10002", "a.png", created="2026-12-05T10:00:00.000+0000"),
                attachment("10001", "a.png", created="2026-12-05T12:00:00.000+0200"),
            ],
            "10002",
        ),
        ([attachment("10001", "a.png", created="junk"), attachment("10002", "a.png", created=None)], "10002"),
    ],
)
def test_several_attachments_with_one_name_give_the_newest(attachments, chosen):
    for refs in ([FileRef(None, "a.png")], [FileRef("unknown-media-id", "a.png")]):
        result = match_files(refs, attachments, {})
        assert [a["id"] for a in result.attachments] == [chosen]


def test_names_match_exactly():
    result = match_files(
        [FileRef(None, "Photo.png"), FileRef(None, "photo.png ")], [attachment("1", "photo.png")], {}
    )
    assert result.attachments == []
    assert result.unmatched == [FileRef(None, "Photo.png"), FileRef(None, "photo.png ")]


def test_an_attachment_shown_twice_is_sent_once():
    png = attachment("10001", "photo.png")
    refs = [FileRef(PNG_ID, "photo.png"), FileRef(None, "photo.png"), FileRef("other-id", "photo.png")]
    result = match_files(refs, [png], {})
    assert result == MatchedFiles(attachments=[png], unmatched=[])


def test_refs_no_attachment_answers_are_unmatched_in_order():
    refs = [FileRef("gone", "deleted.png"), FileRef(None, "never.pdf"), FileRef("x", None)]
    result = match_files(refs, [attachment("10001", "photo.png")], {"10001": PNG_ID})
    assert result == MatchedFiles(attachments=[], unmatched=refs)


def test_odd_attachment_json_is_skipped():
    good = attachment(10001, "photo.png")  # an int id works too
    odd = [
        None,
        "x",
        {"filename": "photo.png"},
        {"id": True, "filename": "photo.png"},
        {"id": "", "filename": "photo.png"},
    ]
    result = match_files([FileRef(PNG_ID, "photo.png")], [*odd, good], {"10001": PNG_ID})
    assert result.attachments == [good]


def test_needs_media_ids_only_when_a_ref_has_one():
    assert needs_media_ids([FileRef(None, "a.png"), FileRef(PNG_ID, None)])
    assert not needs_media_ids([FileRef(None, "a.png")])
    assert not needs_media_ids([])


def test_adf_and_wiki_refs_flow_into_matching():
    attachments = [attachment("10001", "photo.png"), attachment("10002", "invoice.pdf")]
    wiki = match_files(file_refs("!photo.png|thumbnail! [^invoice.pdf]"), attachments, {})
    assert [a["id"] for a in wiki.attachments] == ["10001", "10002"]
    adf = doc({"type": "mediaGroup", "content": [media(PDF_ID, "invoice.pdf"), media(PNG_ID, "photo.png")]})
    refs = file_refs(adf)
    assert needs_media_ids(refs)
    resolved = match_files(refs, attachments, {"10001": PNG_ID, "10002": PDF_ID})
    assert [a["id"] for a in resolved.attachments] == ["10002", "10001"]
