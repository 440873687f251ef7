"""FTS5 `bm25()` against a plain-Python BM25, on one synthetic corpus. Run by hand:

    python -m tests.benchmarks.bm25_choice                 # 2,000 sections, 300 queries
    python -m tests.benchmarks.bm25_choice --sections 10000

Not collected by pytest (no `test_` prefix); it prints figures and asserts nothing. The corpus is
generated from a fixed seed (Zipf-distributed pseudo-words, like real prose), so two runs rank the
same. Both sides score with the same formula (k1 = 1.2, b = 0.75, FTS5's IDF
ln((N - n + 0.5) / (n + 0.5)) floored at 1e-6), so top-3 agreement measures whether the two agree
in practice (tokenizer, ties, float order), and the times say what each costs. The figures and the
choice they led to are in `bot.ai.knowledge`'s docstring.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import re
import sqlite3
import statistics
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bot.ai.knowledge import fts5_query

K1, B = 1.2, 0.75
SEED = 14
T = TypeVar("T")
_WORD = re.compile(r"\w+")
_SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"] + ["ción", "qué", "ñu", "ré"]


@dataclass(frozen=True)
class Doc:
    title: str
    body: str


def make_corpus(sections: int, *, vocabulary: int = 6000, seed: int = SEED) -> list[Doc]:
    """Sections with a short title and a 40–300-word body, words drawn with Zipf frequencies."""
    rng = random.Random(seed)
    words = sorted({_pseudo_word(rng) for _ in range(vocabulary * 2)})[:vocabulary]
    rng.shuffle(words)
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    docs = []
    for _ in range(sections):
        title = " ".join(rng.choices(words, weights, k=rng.randint(2, 6))).capitalize()
        body = " ".join(rng.choices(words, weights, k=rng.randint(40, 300)))
        docs.append(Doc(title, body))
    return docs


def _pseudo_word(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4)))


def make_queries(
    docs: Sequence[Doc], count: int, *, skip: frozenset[str] = frozenset(), seed: int = SEED
) -> list[list[str]]:
    """2–5 terms each, mostly taken from one section (as a customer's question echoes the
    answer's wording), sometimes one word from elsewhere; words in `skip` are never taken (the
    stop words that `query_terms` drops)."""
    rng = random.Random(seed + 1)
    queries = []
    for _ in range(count):
        words = [w for w in tokens(rng.choice(docs).body) if w not in skip]
        terms = rng.sample(words, k=min(len(words), rng.randint(2, 5)))
        if rng.random() < 0.3:
            terms.extend(w for w in tokens(rng.choice(docs).body)[:1] if w not in skip)
        queries.append(terms)
    return queries


def tokens(text: str) -> list[str]:
    """What `unicode61 remove_diacritics 2` does, near enough: fold case, drop accents, split."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _WORD.findall(plain)


class PythonBM25:
    """Okapi BM25 with postings lists, the way one would write it without a library."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.lengths: list[int] = []
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for doc_id, text in enumerate(texts):
            counts = Counter(tokens(text))
            self.lengths.append(sum(counts.values()))
            for term, freq in counts.items():
                self.postings[term].append((doc_id, freq))
        self.average = sum(self.lengths) / max(len(self.lengths), 1)

    def top(self, terms: Sequence[str], k: int) -> list[int]:
        n_docs = len(self.lengths)
        scores: dict[int, float] = defaultdict(float)
        for term in dict.fromkeys(t for raw in terms for t in tokens(raw)):
            postings = self.postings.get(term, [])
            idf = max(math.log((n_docs - len(postings) + 0.5) / (len(postings) + 0.5)), 1e-6)
            for doc_id, freq in postings:
                norm = K1 * (1 - B + B * self.lengths[doc_id] / self.average)
                scores[doc_id] += idf * freq * (K1 + 1) / (freq + norm)
        return heapq.nsmallest(k, scores, key=lambda d: (-scores[d], d))


class Fts5BM25:
    """The same ranking done by SQLite: one FTS5 table in memory, `bm25()` in ORDER BY."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.execute(
            "CREATE VIRTUAL TABLE docs USING fts5(body, tokenize='unicode61 remove_diacritics 2')"
        )
        with self.db:
            self.db.executemany("INSERT INTO docs(rowid, body) VALUES (?, ?)", enumerate(texts))

    def top(self, terms: Sequence[str], k: int) -> list[int]:
        rows = self.db.execute(
            "SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY bm25(docs), rowid LIMIT ?",
            (fts5_query(terms), k),
        )
        return [rowid for (rowid,) in rows]


def timed(action: Callable[..., T], *args: object) -> tuple[T, float]:
    start = time.perf_counter()
    result = action(*args)
    return result, time.perf_counter() - start


def compare(fts: Fts5BM25, py: PythonBM25, queries: Sequence[list[str]], label: str) -> None:
    fts_top: list[list[int]] = []
    py_top: list[list[int]] = []
    fts_times: list[float] = []
    py_times: list[float] = []
    for terms in queries:
        top, seconds = timed(fts.top, terms, 3)
        fts_top.append(top)
        fts_times.append(seconds)
        top, seconds = timed(py.top, terms, 3)
        py_top.append(top)
        py_times.append(seconds)
    pairs = list(zip(fts_top, py_top, strict=True))
    same_list = sum(a == b for a, b in pairs) / len(pairs)
    same_set = sum(set(a) == set(b) for a, b in pairs) / len(pairs)
    overlap = statistics.fmean(len(set(a) & set(b)) / max(len(a), 1) for a, b in pairs)
    print(f"\n{label}: {len(queries)} queries")
    print(f"{'':14}{'mean query (ms)':>18}{'p95 query (ms)':>17}")
    for name, times in (("FTS5 bm25()", fts_times), ("Python BM25", py_times)):
        p95 = statistics.quantiles(times, n=20)[-1]
        print(f"{name:14}{statistics.fmean(times) * 1e3:18.3f}{p95 * 1e3:17.3f}")
    print(f"top-3 agreement: same order {same_list:.1%}, same set {same_set:.1%}, mean overlap {overlap:.1%}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sections", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args(argv)

    docs = make_corpus(args.sections)
    texts = [f"{d.title}\n{d.body}" for d in docs]
    chars = sum(len(t) for t in texts)
    print(f"corpus: {len(texts)} sections, {chars / 1e6:.2f} M chars")

    fts, fts_index = timed(Fts5BM25, texts)
    py, py_index = timed(PythonBM25, texts)
    print(f"index: FTS5 bm25() {fts_index * 1e3:.1f} ms, Python BM25 {py_index * 1e3:.1f} ms")

    frequency = Counter(t for text in texts for t in tokens(text))
    stop_words = frozenset(word for word, _ in frequency.most_common(100))
    compare(fts, py, make_queries(docs, args.queries), "any words")
    compare(fts, py, make_queries(docs, args.queries, skip=stop_words), "without the 100 commonest")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
