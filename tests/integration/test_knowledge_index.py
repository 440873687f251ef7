"""The knowledge index on real files in a temporary directory: BM25 ranking through SQLite FTS5,
hot reload, files that go bad at runtime, load errors, hostile search terms and threads."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from sqlite3 import connect as real_connect
from typing import Any

import pytest
import structlog

from bot.ai import knowledge
from bot.ai.knowledge import KnowledgeBase, KnowledgeError, fts5_query, rank

SHOP = """\
# Reembolso
Devolvemos el dinero en 14 días por transferencia, una vez recibida la devolución.

# Envíos
Enviamos a toda la península en 48 horas. Los pedidos a Canarias tardan una semana.

# Horario
Atendemos de lunes a viernes, de 9 a 18.

# Garantía
Todos los aparatos tienen dos años. Cubre defectos de fábrica, no golpes ni agua.

# Accesorios
Los cargadores y fundas se venden aparte; los pedidos de accesorios no llevan garantía garantía.
"""

HOSTILE = [
    '"',
    '""',
    'garantía"',
    '" OR "',
    "NEAR",
    "NEAR(a b)",
    "NEAR/2",
    "*",
    "garan*",
    "OR",
    "AND",
    "NOT",
    "-",
    "-envíos",
    "(",
    ")",
    "((horario",
    "title:horario",
    "^horario",
    "{title body}: x",
    "+",
    "\x00",
    "a\x00b",
    "\ud800",
    "'",
    ";DROP TABLE docs;--",
    "",
    " ",
    "x" * 10_000,
    "é" * 10_000,
]


def write(path: Path, text: str | bytes, *, bump: int = 0) -> None:
    """Write and give the file a distinct mtime: `bump` seconds past a fixed instant, so two
    writes within one clock tick still differ in mtime_ns."""
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    instant = 1_700_000_000_000_000_000 + bump * 1_000_000_000
    os.utime(path, ns=(instant, instant))


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop.md"
    write(path, SHOP)
    return path


def loaded(*files: tuple[str, Path]) -> KnowledgeBase:
    base = KnowledgeBase(files)
    base.load()
    return base


def titles(base: KnowledgeBase, terms: list[str], *, limit: int = 5) -> list[str]:
    return [s.title for s in base.search(terms, limit=limit)]


# --- rank(): BM25 over plain texts ---------------------------------------------------------


def test_rank_puts_the_best_match_first_and_leaves_out_the_rest() -> None:
    documents = [
        "the printer is out of paper",
        "a refund takes fourteen days; the refund goes to the card",
        "opening hours: nine to six",
        "a refund for a printer bought in a shop",
    ]
    assert rank(["refund"], documents, limit=5) == [1, 3]
    assert rank(["printer", "paper"], documents, limit=5) == [0, 3]
    assert rank(["hours"], documents, limit=5) == [2]


def test_rank_keeps_the_documents_order_for_equal_scores() -> None:
    documents = ["other words", "same text here", "same text here", "same text here"]
    assert rank(["same"], documents, limit=10) == [1, 2, 3]


def test_rank_honours_the_limit_and_gives_nothing_for_no_match() -> None:
    documents = [f"item {i} widget" for i in range(10)]
    assert rank(["widget"], documents, limit=3) == [0, 1, 2]
    assert rank(["gadget"], documents, limit=3) == []
    assert rank([], documents, limit=3) == []
    assert rank(["widget"], documents, limit=0) == []
    assert rank(["widget"], [], limit=3) == []


def test_rank_folds_accents_and_case() -> None:
    documents = ["política de envíos", "Política de REEMBOLSO"]
    assert rank(["reembolsó"], documents, limit=5) == [1]
    assert rank(["ENVIOS"], documents, limit=5) == [0]


@pytest.mark.parametrize("term", HOSTILE)
def test_rank_takes_any_term_as_text(term: str) -> None:
    documents = ["garantía de dos años", "horario de nueve a seis", "envíos en 48 horas"]
    assert 1 in rank([term, "horario"], documents, limit=5)  # the honest term still counts


def test_fts5_query_quotes_every_term_and_drops_empty_and_repeated_ones() -> None:
    assert fts5_query(['say "hi"', "or", "", "  ", "or", "x\x00y"]) == ('"say ""hi""" OR "or" OR "x y"')
    assert fts5_query([]) == ""
    many = fts5_query([f"t{i}" for i in range(500)])
    assert many.count(" OR ") == knowledge.MAX_QUERY_TERMS - 1


# --- KnowledgeBase: ranking sections of files ----------------------------------------------


@pytest.mark.parametrize(
    ("terms", "best"),
    [
        (["horario"], "Horario"),  # a title word
        (["devolucion"], "Reembolso"),  # "devolución" in the body, asked without its accent
        (["reembolsó"], "Reembolso"),  # the customer's accent, the file's plain title
        (["canarias", "pedidos"], "Envíos"),
        (["cuando", "abren", "lunes"], "Horario"),
        (["garantia"], "Garantía"),  # title beats a body that says it twice (see below)
    ],
)
def test_search_puts_the_answering_section_first(shop: Path, terms: list[str], best: str) -> None:
    base = loaded(("shop.md", shop))
    assert titles(base, terms)[0] == best


def test_a_title_word_outweighs_the_same_word_in_a_body(shop: Path) -> None:
    base = loaded(("shop.md", shop))
    assert titles(base, ["garantia"]) == ["Garantía", "Accesorios"]
    # Unweighted BM25 over title + body ranks the other way round: the weight is what decides.
    sections = base.search(["garantia", "golpes", "cargadores"], limit=10)
    by_title = {s.title: f"{s.title}\n{s.text}" for s in sections}
    order = rank(["garantia"], [by_title["Garantía"], by_title["Accesorios"]], limit=2)
    assert order == [1, 0]


def test_search_returns_sections_with_their_source(shop: Path) -> None:
    base = loaded(("docs/shop.md", shop))
    (section,) = base.search(["canarias"], limit=1)
    assert section.source == "docs/shop.md"
    assert "Canarias" in section.text


def test_search_gives_nothing_without_a_match_or_terms_and_honours_the_limit(shop: Path) -> None:
    base = loaded(("shop.md", shop))
    assert base.search(["impresora"]) == []
    assert base.search([]) == []
    assert len(base.search(["de", "los", "a"], limit=2)) == 2
    assert base.search(["horario"], limit=0) == []


def test_sections_counts_what_is_indexed(shop: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.md"
    write(other, "# Uno\nprimero\n\n# Dos\nsegundo\n")
    base = KnowledgeBase([("shop.md", shop), ("other.md", other)])
    assert base.sections == 0  # nothing read before load
    base.load()
    assert base.sections == 7


def test_equal_sections_rank_in_configured_file_order_even_after_a_reload(tmp_path: Path) -> None:
    first, second = tmp_path / "first.md", tmp_path / "second.md"
    write(first, "# Precios\nlista de precios\n")
    write(second, "# Precios\nlista de precios\n")
    base = loaded(("first.md", first), ("second.md", second))
    assert [s.source for s in base.search(["precios"])] == ["first.md", "second.md"]
    write(first, "# Precios\nlista de precios\n", bump=1)  # re-indexed after the second one
    assert [s.source for s in base.search(["precios"])] == ["first.md", "second.md"]


def test_a_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "bom.md"
    write(path, "\ufeff# Horario\nde 9 a 18\n".encode())
    base = loaded(("bom.md", path))
    assert titles(base, ["horario"]) == ["Horario"]


@pytest.mark.parametrize("term", HOSTILE)
def test_search_takes_any_term_as_text(shop: Path, term: str) -> None:
    base = loaded(("shop.md", shop))
    assert "Horario" in titles(base, [term, "horario"])  # the honest term still counts


def test_a_hostile_term_holding_a_real_word_still_finds_it(shop: Path) -> None:
    base = loaded(("shop.md", shop))
    assert titles(base, ['garantía"'])[0] == "Garantía"
    assert titles(base, ["(horario)"]) == ["Horario"]


# --- files changing under the daemon --------------------------------------------------------


def test_a_changed_file_is_read_again_on_the_next_search(shop: Path) -> None:
    base = loaded(("shop.md", shop))
    assert base.search(["impresoras"]) == []
    write(shop, SHOP + "\n# Impresoras\nNo vendemos impresoras.\n", bump=1)
    with structlog.testing.capture_logs() as logs:
        assert titles(base, ["impresoras"]) == ["Impresoras"]
        assert titles(base, ["impresoras"]) == ["Impresoras"]  # read once, not per search
    assert [e["event"] for e in logs] == ["knowledge_file_reloaded"]
    assert logs[0]["file"] == "shop.md"
    assert base.sections == 6


def test_a_rewrite_of_the_same_size_is_seen_by_its_mtime(shop: Path) -> None:
    base = loaded(("shop.md", shop))
    write(shop, SHOP.replace("Canarias", "Baleares"), bump=1)  # same length, new mtime
    assert titles(base, ["baleares"]) == ["Envíos"]
    assert base.search(["canarias"]) == []


def test_search_reads_the_files_itself_when_load_was_not_called(shop: Path) -> None:
    base = KnowledgeBase([("shop.md", shop)])
    assert titles(base, ["horario"]) == ["Horario"]


def test_a_vanished_file_keeps_its_sections_and_is_reported_once(shop: Path) -> None:
    base = loaded(("shop.md", shop))
    shop.unlink()
    with structlog.testing.capture_logs() as logs:
        assert titles(base, ["horario"]) == ["Horario"]
        assert titles(base, ["canarias"]) == ["Envíos"]
    assert [(e["event"], e["log_level"], e["file"]) for e in logs] == [
        ("knowledge_file_unusable", "warning", "shop.md")
    ]
    assert base.sections == 5


def test_a_file_gone_bad_keeps_its_sections_until_it_is_mended(shop: Path) -> None:
    base = loaded(("shop.md", shop))
    write(shop, b"# Horario\n\xff\xfe broken", bump=1)
    with structlog.testing.capture_logs() as logs:
        assert titles(base, ["canarias"]) == ["Envíos"]
        assert titles(base, ["canarias"]) == ["Envíos"]
    assert [e["event"] for e in logs] == ["knowledge_file_unusable"]
    assert "not UTF-8" in logs[0]["error"]

    write(shop, "# Horario\nsolo por la tarde\n", bump=2)
    assert titles(base, ["tarde"]) == ["Horario"]
    assert base.search(["canarias"]) == []

    shop.unlink()  # trouble again after a good read: reported again
    with structlog.testing.capture_logs() as logs:
        base.search(["tarde"])
    assert [e["event"] for e in logs] == ["knowledge_file_unusable"]


def test_a_file_grown_too_big_at_runtime_keeps_its_sections(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = loaded(("shop.md", shop))
    monkeypatch.setattr(knowledge, "MAX_FILE_BYTES", len(SHOP.encode()))
    write(shop, SHOP + "# Más\nmás texto\n", bump=1)
    with structlog.testing.capture_logs() as logs:
        assert titles(base, ["horario"]) == ["Horario"]
    assert "over" in logs[0]["error"]


# --- load errors name the file ---------------------------------------------------------------


def test_load_names_a_missing_file(tmp_path: Path) -> None:
    base = KnowledgeBase([("kb/missing.md", tmp_path / "missing.md")])
    with pytest.raises(KnowledgeError, match=r"kb/missing\.md .*No such file"):
        base.load()


def test_load_names_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.md"
    write(path, "# Devolución\n".encode("latin-1"))
    with pytest.raises(KnowledgeError, match=r"latin1\.md .*not UTF-8"):
        KnowledgeBase([("latin1.md", path)]).load()


def test_load_names_a_file_over_five_megabytes(tmp_path: Path) -> None:
    path = tmp_path / "huge.md"
    write(path, b"# Big\n" + b"a" * knowledge.MAX_FILE_BYTES)
    with pytest.raises(KnowledgeError, match=r"huge\.md .*over 5 MB"):
        KnowledgeBase([("huge.md", path)]).load()


def test_a_file_of_exactly_five_megabytes_loads(tmp_path: Path) -> None:
    path = tmp_path / "big.md"
    body = b"# Big\n" + b"word " * ((knowledge.MAX_FILE_BYTES - 6) // 5)
    write(path, body.ljust(knowledge.MAX_FILE_BYTES, b" "))
    base = loaded(("big.md", path))
    assert base.sections >= 1


def test_load_names_a_directory(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match=r"kb .*not a regular file"):
        KnowledgeBase([("kb", tmp_path)]).load()


def test_load_names_the_bad_file_among_good_ones(shop: Path, tmp_path: Path) -> None:
    base = KnowledgeBase([("shop.md", shop), ("faq.md", tmp_path / "faq.md")])
    with pytest.raises(KnowledgeError) as caught:
        base.load()
    assert "faq.md" in str(caught.value)
    assert "shop.md" not in str(caught.value)


class _NoFts5:
    """A connection as a build of SQLite without FTS5 answers it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._real = real_connect(":memory:")

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("CREATE VIRTUAL TABLE"):
            raise sqlite3.OperationalError("no such module: fts5")
        return self._real.execute(sql, *args)

    def close(self) -> None:
        self._real.close()


def test_without_fts5_load_says_so_and_search_gives_nothing(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(knowledge.sqlite3, "connect", _NoFts5)
    with pytest.raises(KnowledgeError, match="no FTS5"):
        KnowledgeBase([("shop.md", shop)]).load()
    with pytest.raises(KnowledgeError, match="no FTS5"):
        rank(["horario"], ["horario"], limit=1)
    with structlog.testing.capture_logs() as logs:
        assert KnowledgeBase([("shop.md", shop)]).search(["horario"]) == []
    assert [e["event"] for e in logs] == ["knowledge_search_failed"]


# --- threads ---------------------------------------------------------------------------------


def test_threads_search_while_the_file_is_rewritten(shop: Path) -> None:
    base = loaded(("shop.md", shop))
    versions = [SHOP.replace("Horario", f"Horario {n}") for n in range(40)]
    expected_titles = {"Horario"} | {f"Horario {n}" for n in range(40)}
    errors: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()

    def searcher() -> None:
        try:
            while not stop.is_set():
                for section in base.search(["horario", "lunes"], limit=1):
                    seen.add(section.title)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        for n, text in enumerate(versions):
            write(shop, text, bump=n + 1)
            stop.wait(0.005)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert not errors
    assert seen and seen <= expected_titles
    assert titles(base, ["horario"], limit=1) == ["Horario 39"]
    assert base.sections == 5
