"""The operator's knowledge files, split into sections and ranked against the customer's words.

Ranking is SQLite FTS5's `bm25()` from the standard library's sqlite3, chosen by measuring
(`python -m tests.benchmarks.bm25_choice`: 2,000 synthetic sections, 2.3 M chars, 300 queries of
2–6 terms, the same BM25 formula on both sides, k1 1.2, b 0.75; one machine, 2 vCPU):

                  index    mean query, any words   mean query, stop words dropped
    FTS5 bm25()   38 ms    1.8 ms                  0.29 ms
    Python BM25   350 ms   1.5 ms                  0.21 ms
    top-3 agreement: 100 % (same sections, same order), both query sets
    (times vary by about 20 % from run to run; the plain-Python query stays a little faster)

The rankings are identical and the query times equal for our purpose (tenths of a millisecond
beside an AI call of seconds; at 10,000 sections still 1.3 ms against 1.0 ms). FTS5 indexes 9x
faster (a file re-read costs less under the lock), and gives for free what hand-written BM25 would
have to grow: a tokenizer that folds case and accents (`remove_diacritics 2`: "reembolsó" finds
"reembolso"), column weights (a title hit counts more than a body hit) and no new dependency. Of
the packages, rank-bm25 is unmaintained (last release 2022) and bm25s brings numpy and scipy.

Files are indexed at start (`load`, which raises so a bad file stops the daemon with its name) and
re-read when their (mtime_ns, size) changes; at runtime a file that vanished or went bad keeps its
last good sections and is reported once in the log: a search never raises.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.logs import get_logger
from bot.rules.knowledge import Section, split_sections

log = get_logger(__name__)

MAX_FILE_BYTES = 5 * 1024 * 1024
TITLE_WEIGHT = 4.0  # a word of the heading says more about a section than the same word in its body
MAX_QUERY_TERMS = 64  # a customer's recent turns give a dozen; the cap bounds a hostile burst
_TOKENIZER = "unicode61 remove_diacritics 2"
# A section's rowid is (file's position << 32) + section's position: ties rank in configured file
# order, then document order, however often a file was re-read, and a file's rows are one range.
_FILE_SHIFT = 32


class KnowledgeError(Exception):
    """A knowledge file cannot be used (the message names it), or SQLite lacks FTS5."""


def fts5_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression true for a row holding any of `terms`; empty when none is left.

    Each term becomes an FTS5 string (`"` doubled inside), so `NEAR`, `OR`, `*`, `-`, `:` or
    parentheses in a term are text, never syntax. A NUL would end the query early in SQLite's C
    code and a lone surrogate cannot be encoded: both are replaced.
    """
    cleaned = (_clean(term).strip() for term in terms)
    unique = list(dict.fromkeys(term for term in cleaned if term))[:MAX_QUERY_TERMS]
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in unique)


def _clean(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", " ")


def _create_table(db: sqlite3.Connection, columns: str) -> None:
    try:
        db.execute(f"CREATE VIRTUAL TABLE docs USING fts5({columns}, tokenize='{_TOKENIZER}')")
    except sqlite3.OperationalError as exc:
        raise KnowledgeError(
            f"this Python's SQLite {sqlite3.sqlite_version} has no FTS5 ({exc}); knowledge_files need it"
        ) from exc


def rank(terms: Sequence[str], documents: Sequence[str], *, limit: int) -> list[int]:
    """Indexes into `documents`, best BM25 score first, only those matching at least one term.

    Args:
        terms: the words to look for (any text: it is quoted, never parsed as FTS5 syntax).
        documents: the texts to rank; equal scores keep their order here.
        limit: at most this many indexes.

    Raises:
        KnowledgeError: SQLite was built without FTS5.
    """
    query = fts5_query(terms)
    if not query or limit <= 0 or not documents:
        return []
    db = sqlite3.connect(":memory:")
    try:
        _create_table(db, "body")
        db.executemany(
            "INSERT INTO docs(rowid, body) VALUES (?, ?)",
            ((i, _clean(text)) for i, text in enumerate(documents)),
        )
        rows = db.execute(
            "SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY bm25(docs), rowid LIMIT ?",
            (query, limit),
        )
        return [rowid for (rowid,) in rows]
    finally:
        db.close()


@dataclass
class _File:
    name: str  # as configured: what logs and errors call it
    path: Path
    position: int
    stamp: tuple[int, int] | None = None  # (mtime_ns, size) of the indexed text
    sections: list[Section] = field(default_factory=list)
    failed_stamp: tuple[int, int] | None = None  # don't re-read a bad file until it changes again
    warned: bool = False  # one warning per spell of trouble; cleared when the file is well again

    @property
    def first_rowid(self) -> int:
        return self.position << _FILE_SHIFT


class KnowledgeBase:
    """The sections of the configured knowledge files, in one FTS5 index, kept fresh on search.

    Thread-safe: one in-memory connection (`check_same_thread=False`) behind one lock. The AI job's
    worker threads share the index; a per-thread connection would each hold a copy of it and
    re-read the files per thread, and a search takes well under a millisecond (see the module
    docstring) beside an AI call of seconds, so serialising searches costs nothing measurable.
    The lock also makes "stat, re-read, re-index" one step, so two threads never re-read at once.
    """

    def __init__(self, files: Sequence[tuple[str, Path]], *, max_section_chars: int = 2000) -> None:
        """Args:
        files: (name as configured, resolved path) pairs, in the operator's order. Nothing is
            read until `load` or the first `search`.
        max_section_chars: passed to the sectioning rule.
        """
        self._files = [_File(name, path, i) for i, (name, path) in enumerate(files)]
        self._max_section_chars = max_section_chars
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @property
    def sections(self) -> int:
        """How many sections are indexed."""
        with self._lock:
            return sum(len(f.sections) for f in self._files)

    def load(self) -> None:
        """Read and index every file now.

        Raises:
            KnowledgeError: a file is missing, unreadable, not UTF-8 or over 5 MB (the message
                names it), or SQLite has no FTS5.
        """
        with self._lock:
            db = self._connection()
            for file in self._files:
                stamp, text = _read(file)
                self._index(db, file, stamp, text)

    def search(self, terms: Sequence[str], *, limit: int = 5) -> list[Section]:
        """The sections best matching `terms`, best first; re-reads files changed since indexed.

        Never raises: a file that cannot be read keeps its last good sections (one warning in
        the log), and an index that cannot be used gives no sections (also logged).
        """
        query = fts5_query(terms)
        with self._lock:
            try:
                db = self._connection()
                self._refresh(db)
                if not query or limit <= 0:
                    return []
                rows = db.execute(
                    "SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY bm25(docs, ?, 1.0), rowid LIMIT ?",
                    (query, TITLE_WEIGHT, limit),
                ).fetchall()
            except (KnowledgeError, sqlite3.Error) as exc:
                log.warning("knowledge_search_failed", error=str(exc))
                return []
            return [self._section(rowid) for (rowid,) in rows]

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(":memory:", check_same_thread=False)
            try:
                _create_table(db, "title, body")
            except KnowledgeError:
                db.close()
                raise
            self._db = db
        return self._db

    def _refresh(self, db: sqlite3.Connection) -> None:
        for file in self._files:
            try:
                now = _stamp(os.stat(file.path))
            except OSError as exc:
                self._warn_once(file, f"cannot stat: {exc.strerror or exc}")
                continue
            if now == file.stamp:
                file.warned = False  # back as it was indexed: a later failure is news again
                continue
            if now == file.failed_stamp:
                continue
            try:
                stamp, text = _read(file)
            except KnowledgeError as exc:
                file.failed_stamp = now
                self._warn_once(file, str(exc))
                continue
            self._index(db, file, stamp, text)
            log.info("knowledge_file_reloaded", file=file.name, sections=len(file.sections))

    def _index(self, db: sqlite3.Connection, file: _File, stamp: tuple[int, int], text: str) -> None:
        sections = split_sections(text, file.name, max_chars=self._max_section_chars)
        first = file.first_rowid
        with db:  # one transaction: a search never sees the file half indexed
            db.execute(
                "DELETE FROM docs WHERE rowid BETWEEN ? AND ?",
                (first, first + (1 << _FILE_SHIFT) - 1),
            )
            db.executemany(
                "INSERT INTO docs(rowid, title, body) VALUES (?, ?, ?)",
                ((first + i, _clean(s.title), _clean(s.text)) for i, s in enumerate(sections)),
            )
        file.stamp, file.sections = stamp, sections
        file.failed_stamp, file.warned = None, False

    def _section(self, rowid: int) -> Section:
        file = self._files[rowid >> _FILE_SHIFT]
        return file.sections[rowid & ((1 << _FILE_SHIFT) - 1)]

    @staticmethod
    def _warn_once(file: _File, error: str) -> None:
        if not file.warned:
            file.warned = True
            log.warning(
                "knowledge_file_unusable",
                file=file.name,
                error=error,
                kept_sections=len(file.sections),
            )


def _stamp(st: os.stat_result) -> tuple[int, int]:
    return st.st_mtime_ns, st.st_size


def _read(file: _File) -> tuple[tuple[int, int], str]:
    """The file's (mtime_ns, size) and text, stamped from the open file itself: a rewrite after
    the stamp was taken changes the stamp again, so the next search re-reads it.

    Raises:
        KnowledgeError: naming the file, when it is not a readable UTF-8 regular file of 5 MB
            at most.
    """
    try:
        # Checked before opening: opening a FIFO for reading would wait for a writer forever.
        if not stat.S_ISREG(os.stat(file.path).st_mode):
            raise KnowledgeError(f"knowledge file {file.name} ({file.path}) is not a regular file")
        with open(file.path, "rb") as handle:
            stamp = _stamp(os.fstat(handle.fileno()))
            data = handle.read(MAX_FILE_BYTES + 1)  # the file may have grown since the stat
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise KnowledgeError(f"knowledge file {file.name} ({file.path}): {reason}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise KnowledgeError(
            f"knowledge file {file.name} ({file.path}) is over {MAX_FILE_BYTES // (1024 * 1024)} MB"
        )
    try:
        return stamp, data.decode("utf-8-sig")  # a BOM, as some Windows editors write, is dropped
    except UnicodeDecodeError as exc:
        raise KnowledgeError(
            f"knowledge file {file.name} ({file.path}) is not UTF-8 (byte {exc.start})"
        ) from exc
