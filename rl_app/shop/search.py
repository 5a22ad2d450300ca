"""BM25 product search, ranked as WebShop's Lucene (pyserini) index ranks it.

WebShop indexes each product's ``contents`` with pyserini's default analyzer and searches
with ``LuceneSearcher`` (BM25, k1=0.9, b=0.4), top 50. This module reproduces that ranking:

* Analyzer (Anserini ``DefaultEnglishAnalyzer``): StandardTokenizer (Unicode UAX#29 words;
  each emoji is a token) -> EnglishPossessiveFilter (drops a trailing ``'s``) -> lower case
  -> the 33 Lucene English stopwords (``bm25s.stopwords.STOPWORDS_EN``, the same set) ->
  Lucene's PorterStemmer. PyStemmer's ``porter`` does the stemming; the words where
  Lucene's stemmer departs from it (words of <= 2 letters are left alone; ``-bli -> -ble``
  and ``-logi -> -log``) go through :func:`porter_stem`, a port of Lucene's.
* Scoring (Lucene 8+ ``BM25Similarity``, bm25s ``method="lucene"``):
  ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` and per term
  ``idf - idf / (1 + tf / (k1 * (1 - b + b * L / avgdl)))``, in float32 as Lucene does,
  summed in float64 over the query's terms (a term repeated n times counts n times, as
  pyserini's bag-of-words query boosts it). ``L`` is the document length after Lucene's
  lossy one-byte norm (``SmallFloat.intToByte4``: exact below 24 tokens, then 4
  significant bits); ``length_norm="exact"`` uses the true length as bm25s does.
* Ties go to the earlier product in catalogue order (Lucene: lower doc id first; pyserini
  indexes the file in order). Only products matching at least one query term are returned.

Known differences from Lucene's StandardTokenizer (rare in product text): Python's ``\\w``
stands in for the UAX#29 letter/digit classes (combining marks split words; Hebrew and
Southeast-Asian rules are not modelled); tokens are not cut at 255 characters.
Checked on the real catalogue: the first 20 results for the query captured from the
original in reference/PAGES.md come out in the same order, and all 150
``bm25_top10_random_product`` reference cases (a product drawn from the original's top 10)
find their product in our top 10; with exact lengths, 148 do (tests/shop/test_search.py).

Bad input: an empty, whitespace-only or stopword-only query returns ``[]`` (Lucene would
return no hits); a query's analysed tokens beyond ``max_query_tokens`` (default 1024,
Lucene's ``maxClauseCount``) are dropped instead of raising; ``k <= 0`` is a ValueError.

Sharing (one index per node, not one copy per env runner): :meth:`SearchEngine.save` writes a
bm25s index directory plus the row -> asin table and the sorted term table;
:meth:`SearchEngine.load` memory-maps them (``mmap=True``), so all env runners on a node share
one copy through the page cache.
"""

from __future__ import annotations

import bisect
import dataclasses
import gc
import itertools
import json
import os
from collections import Counter, OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np

from rl_app.data.files import atomic_write_dir
from rl_app.errors import InputError
from rl_app.shop.lucene_analyzer import _normalise, _raw_tokens, _stem_many, analyze, porter_stem

if TYPE_CHECKING:
    from rl_app.shop.catalogue import Catalogue

__all__ = [
    "SearchEngine",
    "SearchIndexError",
    "LengthNorm",
    "analyze",
    "porter_stem",
    "DEFAULT_K1",
    "DEFAULT_B",
    "SEARCH_RETURN_N",
    "MAX_QUERY_TOKENS",
    "DEFAULT_CACHE_SIZE",
]

# pyserini's LuceneSearcher defaults, used by WebShop's search engine.
DEFAULT_K1 = 0.9
DEFAULT_B = 0.4
# WebShop's SEARCH_RETURN_N: 50 results, 10 per page.
SEARCH_RETURN_N = 50
# Lucene's IndexSearcher.maxClauseCount: a longer query would raise TooManyClauses there.
MAX_QUERY_TOKENS = 1024
DEFAULT_CACHE_SIZE = 1024  # (query, k) entries of ~50 asins: ~3 MB at most
LengthNorm = Literal["lucene", "exact"]

INDEX_FORMAT = 1
ANALYZER_NAME = "lucene-default-english-v1"
_META_FILE = "rl_app_search.json"
_ASINS_FILE = "asins.npy"
_TERMS_BLOB_FILE = "terms.blob.npy"
_TERMS_OFFSETS_FILE = "terms.offsets.npy"

# Documents analysed per batch while indexing (bounds the token strings held at once).
_INDEX_CHUNK_DOCS = 4_096
# Up to this many documents, top-k scans every score; above, a threshold prunes first.
_DIRECT_TOPK_MAX_DOCS = 32_768
_TOPK_SAMPLE_SIZE = 8_192
_TOPK_SEED_POSTINGS = 4_096
_TERM_CACHE_MAX = 1_000_000


class SearchIndexError(InputError):
    """A saved index directory is missing, incomplete, or from another format."""


# ----------------------------------------------------------------------------- indexing

def _lucene_norm_length(lengths: np.ndarray) -> np.ndarray:
    """Field lengths after Lucene's SmallFloat.intToByte4 / byte4ToInt round trip.

    Lengths below 24 are exact; above, ``length - 24`` keeps its 4 most significant bits.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    out = lengths.copy()
    big = lengths >= 24
    rest = lengths[big] - 24
    bits = np.zeros_like(rest)
    nonzero = rest > 0
    bits[nonzero] = np.floor(np.log2(rest[nonzero])).astype(np.int64) + 1
    shift = np.maximum(bits - 4, 0)
    out[big] = 24 + ((rest >> shift) << shift)
    return out


@dataclasses.dataclass
class _ChunkPostings:
    """One chunk's (doc, term) pairs, doc-major: terms in first-seen ids, tf, pairs per doc."""

    start: int
    terms: np.ndarray      # int32
    tf: np.ndarray         # uint16 (clipped; a term 65,535 times in one product does not occur)
    per_doc: np.ndarray    # int64, pairs per document of the chunk


class _RawTokenIds(dict):
    """Raw token -> term id (-1: dropped by the analyzer); a miss reads -2, nothing inserted."""

    def __missing__(self, key: str) -> int:
        return -2


def _analyse_chunks(texts: Sequence[str]) -> tuple[list[_ChunkPostings], np.ndarray, list[str]]:
    """Distinct (doc, term) pairs with term frequencies, field lengths, and the vocabulary.

    Tokens are analysed once per distinct raw token, and documents are processed in chunks
    of plain arrays, so 1M+ documents never hold all their token strings at once.
    """
    raw_to_term = _RawTokenIds()
    term_ids: dict[str, int] = {}
    chunks = []
    doc_length = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), _INDEX_CHUNK_DOCS):
        chunk = texts[start:start + _INDEX_CHUNK_DOCS]
        token_lists = [_raw_tokens(t) for t in chunk]
        counts = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        ids = np.fromiter(map(raw_to_term.__getitem__, itertools.chain.from_iterable(token_lists)),
                          dtype=np.int64, count=int(counts.sum()))
        missing = np.flatnonzero(ids == -2)
        if len(missing):  # tokens never seen before: analyse each distinct one once
            ends = np.cumsum(counts)
            docs_of = np.searchsorted(ends, missing, side="right")
            offsets = missing - (ends - counts)[docs_of]
            raw = [token_lists[d][o] for d, o in zip(docs_of.tolist(), offsets.tolist())]
            new_raw = sorted(set(raw))
            words = [_normalise(t) for t in new_raw]
            stems = iter(_stem_many([w for w in words if w is not None]))
            for token, word in zip(new_raw, words):
                raw_to_term[token] = -1 if word is None else term_ids.setdefault(next(stems), len(term_ids))
            ids[missing] = np.fromiter(map(raw_to_term.__getitem__, raw), dtype=np.int64, count=len(raw))
        del token_lists
        doc = np.repeat(np.arange(len(chunk), dtype=np.int64), counts)
        keep = ids >= 0
        doc, ids = doc[keep], ids[keep]
        doc_length[start:start + len(chunk)] = np.bincount(doc, minlength=len(chunk))
        keys, tf = np.unique((doc << 32) | ids, return_counts=True)
        chunks.append(_ChunkPostings(
            start=start, terms=(keys & 0xFFFFFFFF).astype(np.int32),
            tf=np.minimum(tf, np.iinfo(np.uint16).max).astype(np.uint16),
            per_doc=np.bincount(keys >> 32, minlength=len(chunk))))
    return chunks, doc_length, list(term_ids)


def _build_csc(texts: Sequence[str], k1: float, b: float, length_norm: LengthNorm,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(data, indices, indptr, sorted terms): the docs x terms BM25 matrix, column-major.

    Term ids follow sorted term order (so the saved term table can be binary-searched).
    Columns are filled chunk by chunk (a counting sort), docs ascending inside a column;
    each chunk's pairs are freed once placed, which bounds the peak memory.
    """
    chunks, doc_length, vocab = _analyse_chunks(texts)
    n_terms = len(vocab)
    order = sorted(range(n_terms), key=vocab.__getitem__)
    rank = np.empty(n_terms, dtype=np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(n_terms)
    df = np.zeros(n_terms, dtype=np.int64)
    for c in chunks:
        df += np.bincount(rank[c.terms], minlength=n_terms)
    idf, norm_inverse = _bm25_factors(df, doc_length, k1, b, length_norm)
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    fill = indptr[:-1].copy()
    data = np.empty(indptr[-1], dtype=np.float32)
    indices = np.empty(indptr[-1], dtype=np.int32)
    for i in range(len(chunks)):
        c, chunks[i] = chunks[i], None  # type: ignore[call-overload]  # free as we go
        term = rank[c.terms]
        doc = np.repeat(np.arange(c.start, c.start + len(c.per_doc), dtype=np.int64), c.per_doc)
        by_term = np.argsort(term, kind="stable")
        term, doc = term[by_term], doc[by_term]
        weight = idf[term]
        # BM25Similarity.BM25Scorer.score: weight - weight / (1 + freq * normInverse), float32.
        scores = weight - weight / (np.float32(1) + c.tf[by_term].astype(np.float32) * norm_inverse[doc])
        firsts = np.flatnonzero(np.r_[True, term[1:] != term[:-1]])
        run = np.diff(np.r_[firsts, len(term)])
        position = fill[term] + (np.arange(len(term)) - np.repeat(firsts, run))
        indices[position] = doc
        data[position] = scores
        fill[term[firsts]] += run
    return data, indices, indptr, [vocab[i] for i in order]


def _bm25_factors(df: np.ndarray, doc_length: np.ndarray, k1: float, b: float,
                  length_norm: LengthNorm) -> tuple[np.ndarray, np.ndarray]:
    """Per-term idf and per-document 1 / (k1 * (1 - b + b * L / avgdl)), float32 as Lucene.

    Lucene: ``idf = (float) log(1 + (docCount - docFreq + 0.5) / (docFreq + 0.5))``,
    ``avgdl = (float) (sumTotalTermFreq / docCount)``, and the norm cache per length byte;
    docCount counts only documents with at least one indexed term.
    """
    n_docs = max(1, int(np.count_nonzero(doc_length)))  # docCount: documents with a term
    df = df.astype(np.float64)
    idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
    avgdl = np.float32(max(1, doc_length.sum()) / n_docs)
    length = _lucene_norm_length(doc_length) if length_norm == "lucene" else doc_length
    k1_, b_ = np.float32(k1), np.float32(b)
    norm_inverse = np.float32(1) / (k1_ * ((np.float32(1) - b_) + b_ * length.astype(np.float32) / avgdl))
    return idf, norm_inverse


class _TermTable:
    """Sorted terms as one UTF-8 blob + offsets: memory-mappable, binary-searchable."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self.blob, self.offsets = blob, offsets

    @classmethod
    def from_sorted(cls, terms: Sequence[str]) -> "_TermTable":
        encoded = [t.encode("utf-8") for t in terms]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        return cls(blob, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> bytes:
        return self.blob[self.offsets[i]:self.offsets[i + 1]].tobytes()

    def find(self, term: str) -> int:
        key = term.encode("utf-8")
        i = bisect.bisect_left(self, key)  # type: ignore[call-overload]
        return i if i < len(self) and self[i] == key else -1

    def terms(self) -> list[str]:
        return [self[i].decode("utf-8") for i in range(len(self))]


# ----------------------------------------------------------------------------- engine

class SearchEngine:
    """Top-k BM25 search over product ``contents``; rows are catalogue positions.

    Build with :meth:`build` (or :meth:`from_texts`), share with :meth:`save` /
    :meth:`load`. Not thread-safe (each env runner owns one; the arrays are read-only).
    """

    def __init__(self, bm25, terms: _TermTable, asins: np.ndarray, *, length_norm: LengthNorm,
                 cache_size: int = DEFAULT_CACHE_SIZE, max_query_tokens: int = MAX_QUERY_TOKENS):
        _check_runtime_options(cache_size, max_query_tokens)
        self._bm25 = bm25
        self._data = bm25.scores["data"]
        self._indices = bm25.scores["indices"]
        self._indptr = bm25.scores["indptr"]
        self._terms = terms
        self._asins = asins
        self.length_norm: LengthNorm = length_norm
        self.max_query_tokens = max_query_tokens
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, int], tuple[str, ...]] = OrderedDict()
        self._term_cache: dict[str, int] = {}
        self.cache_hits = 0
        self.cache_misses = 0

    # -- construction ------------------------------------------------------------------

    @classmethod
    def build(cls, catalogue: "Catalogue", *, k1: float = DEFAULT_K1, b: float = DEFAULT_B,
              length_norm: LengthNorm = "lucene", cache_size: int = DEFAULT_CACHE_SIZE,
              max_query_tokens: int = MAX_QUERY_TOKENS) -> "SearchEngine":
        """Index every product's ``contents``, in catalogue order.

        Args:
            k1, b: BM25 parameters (pyserini's defaults).
            length_norm: ``lucene`` quantizes document lengths as Lucene's norms do;
                ``exact`` uses true lengths (as bm25s does).
            cache_size: entries of the (query, k) -> results LRU cache; 0 disables it.
            max_query_tokens: analysed query tokens kept; the rest are dropped.
        """
        return cls.from_texts([p.asin for p in catalogue], [p.contents for p in catalogue],
                              k1=k1, b=b, length_norm=length_norm, cache_size=cache_size,
                              max_query_tokens=max_query_tokens)

    @classmethod
    def from_texts(cls, asins: Sequence[str], texts: Sequence[str], *, k1: float = DEFAULT_K1,
                   b: float = DEFAULT_B, length_norm: LengthNorm = "lucene",
                   cache_size: int = DEFAULT_CACHE_SIZE,
                   max_query_tokens: int = MAX_QUERY_TOKENS) -> "SearchEngine":
        """Index ``texts[i]`` as the document of ``asins[i]`` (see :meth:`build`)."""
        import bm25s

        if len(asins) != len(texts):
            raise ValueError(f"{len(asins)} asins but {len(texts)} texts")
        if not texts:
            raise ValueError("cannot build a search index over zero products")
        if not k1 >= 0 or not 0 <= b <= 1:
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        if length_norm not in ("lucene", "exact"):
            raise ValueError(f"length_norm must be 'lucene' or 'exact', got {length_norm!r}")
        _check_runtime_options(cache_size, max_query_tokens)
        asin_bytes = [a.upper().encode("ascii") for a in asins]
        if len(set(asin_bytes)) != len(asin_bytes):
            raise ValueError("asins must be unique")

        gc_was_enabled = gc.isenabled()
        gc.disable()  # nothing cyclic is made; the collector would rescan the catalogue
        try:
            data, indices, indptr, terms_sorted = _build_csc(texts, k1, b, length_norm)
        finally:
            if gc_was_enabled:
                gc.enable()
        bm25 = bm25s.BM25(k1=k1, b=b, method="lucene", dtype="float32", int_dtype="int32")
        bm25.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": len(texts)}
        bm25.vocab_dict = {}
        bm25.nonoccurrence_array = None
        terms = _TermTable.from_sorted(terms_sorted)
        asin_array = np.array(asin_bytes, dtype=f"S{max(len(a) for a in asin_bytes)}")
        return cls(bm25, terms, asin_array, length_norm=length_norm, cache_size=cache_size,
                   max_query_tokens=max_query_tokens)

    # -- sharing -----------------------------------------------------------------------

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the index to ``directory`` (bm25s layout + asins + term table).

        Everything goes to a temporary sibling directory first and is renamed into place,
        so a crash never leaves a half-written index under ``directory``.
        """
        target = Path(directory).resolve()
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")

        def write(tmp: Path) -> None:
            self._bm25.vocab_dict = {t: i for i, t in enumerate(self._terms.terms())}
            try:
                self._bm25.save(tmp, show_progress=False)
            finally:
                self._bm25.vocab_dict = {}
            np.save(tmp / _ASINS_FILE, self._asins)
            np.save(tmp / _TERMS_BLOB_FILE, self._terms.blob)
            np.save(tmp / _TERMS_OFFSETS_FILE, self._terms.offsets)
            meta = {"format": INDEX_FORMAT, "analyzer": ANALYZER_NAME, "k1": self._bm25.k1,
                    "b": self._bm25.b, "length_norm": self.length_norm, "num_docs": len(self),
                    "num_terms": len(self._terms)}
            (tmp / _META_FILE).write_text(json.dumps(meta, indent=2))

        return atomic_write_dir(target, write)

    @classmethod
    def load(cls, directory: str | os.PathLike, *, mmap: bool = True,
             cache_size: int = DEFAULT_CACHE_SIZE,
             max_query_tokens: int = MAX_QUERY_TOKENS) -> "SearchEngine":
        """Open a saved index; with ``mmap`` the arrays stay on disk, shared between processes."""
        import bm25s

        path = Path(directory)
        meta_path = path / _META_FILE
        if not meta_path.is_file():
            raise SearchIndexError(f"{path}: not a saved search index ({_META_FILE} missing)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != INDEX_FORMAT or meta.get("analyzer") != ANALYZER_NAME:
            raise SearchIndexError(
                f"{path}: index format {meta.get('format')}/{meta.get('analyzer')} is not "
                f"{INDEX_FORMAT}/{ANALYZER_NAME}; rebuild it with SearchEngine.build(...).save(...)")
        mode = "r" if mmap else None
        try:
            bm25 = bm25s.BM25.load(path, mmap=mmap, load_vocab=False, show_progress=False)
            asins = np.load(path / _ASINS_FILE, mmap_mode=mode)
            terms = _TermTable(np.load(path / _TERMS_BLOB_FILE, mmap_mode=mode),
                               np.load(path / _TERMS_OFFSETS_FILE, mmap_mode=mode))
        except FileNotFoundError as e:
            raise SearchIndexError(f"{path}: incomplete index ({e})") from e
        if len(asins) != meta["num_docs"] or len(terms) != meta["num_terms"]:
            raise SearchIndexError(f"{path}: array sizes disagree with {_META_FILE}")
        bm25.scores["num_docs"] = meta["num_docs"]
        return cls(bm25, terms, asins, length_norm=meta["length_norm"], cache_size=cache_size,
                   max_query_tokens=max_query_tokens)

    # -- queries -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._asins)

    @property
    def k1(self) -> float:
        return self._bm25.k1

    @property
    def b(self) -> float:
        return self._bm25.b

    def asin_at(self, row: int) -> str:
        return self._asins[row].decode("ascii")

    def check_catalogue(self, catalogue: "Catalogue") -> None:
        """Raise SearchIndexError unless the index rows are this catalogue's products, in order."""
        expected = np.array([p.asin.encode("ascii") for p in catalogue], dtype=self._asins.dtype)
        if len(expected) != len(self) or not np.array_equal(expected, self._asins):
            raise SearchIndexError(
                f"search index rows do not match catalogue {catalogue.source} "
                f"({len(self)} rows vs {len(catalogue)} products); rebuild the index")

    def memory_bytes(self) -> int:
        """Bytes of the index arrays (mapped or in memory)."""
        arrays = (self._data, self._indices, self._indptr, self._asins, self._terms.blob,
                  self._terms.offsets)
        return int(sum(a.nbytes for a in arrays))

    def search(self, query: str, k: int = SEARCH_RETURN_N) -> list[str]:
        """Upper-case asins of the top ``k`` products for ``query``, best first.

        Fewer than ``k`` when fewer products match; ``[]`` for a query with no indexable
        term (empty, whitespace, punctuation or stopwords only).
        """
        k = _check_k(k)
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        key = (query, k)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self.cache_hits += 1
            return list(cached)
        self.cache_misses += 1
        rows, _ = self._top_k(query, k)
        result = tuple(a.decode("ascii") for a in self._asins[rows])
        if self.cache_size:
            self._cache[key] = result
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return list(result)

    def search_with_scores(self, query: str, k: int = SEARCH_RETURN_N) -> list[tuple[str, float]]:
        """Like :meth:`search` with the float32 BM25 scores (not cached)."""
        k = _check_k(k)
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        rows, scores = self._top_k(query, k)
        return [(self.asin_at(r), float(s)) for r, s in zip(rows, scores)]

    def clear_cache(self) -> None:
        self._cache.clear()
        self.cache_hits = self.cache_misses = 0

    def _term_id(self, term: str) -> int:
        found = self._term_cache.get(term)
        if found is None:
            if len(self._term_cache) >= _TERM_CACHE_MAX:
                self._term_cache.clear()
            found = self._term_cache[term] = self._terms.find(term)
        return found

    def _top_k(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        counts = Counter(analyze(query, max_tokens=self.max_query_tokens))
        ids, boosts = [], []
        for term, count in counts.items():
            tid = self._term_id(term)
            if tid >= 0:
                ids.append(tid)
                boosts.append(float(count))
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores, rarest_rows = self._accumulate(np.asarray(ids, dtype=np.int64),
                                               np.asarray(boosts, dtype=np.float64))
        return _select_top_k(scores, k, rarest_rows)

    def _accumulate(self, ids: np.ndarray, boosts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dense float64 scores of every row (Lucene sums clause scores in double)."""
        import scipy.sparse as sp

        starts, ends = self._indptr[ids], self._indptr[ids + 1]
        order = np.argsort(ends - starts, kind="stable")  # rarest term first
        spans = [(int(starts[i]), int(ends[i])) for i in order]
        rows = np.concatenate([self._indices[s:e] for s, e in spans])
        weights = np.concatenate([self._data[s:e] for s, e in spans], dtype=np.float64)
        col_ptr = np.zeros(len(spans) + 1, dtype=np.int64)
        np.cumsum([e - s for s, e in spans], out=col_ptr[1:])
        # A (docs x query terms) CSC slice of the index times the term boosts.
        matrix = sp.csc_matrix((weights, rows, col_ptr), shape=(len(self), len(spans)))
        return matrix @ boosts[order], rows[:_TOPK_SEED_POSTINGS]


def _select_top_k(scores: np.ndarray, k: int, seed_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the k best positive scores, ties by row; scores compared as float32.

    On large indexes a lower bound on the k-th best score (the k-th best among a strided
    sample and among the rarest term's documents) prunes the scan to a few candidates.
    """
    n = len(scores)
    threshold = 0.0
    if n > _DIRECT_TOPK_MAX_DOCS:
        bounds = [scores[::max(1, n // _TOPK_SAMPLE_SIZE)], scores[np.unique(seed_rows)]]
        for sample in bounds:
            if len(sample) >= k:
                threshold = max(threshold, float(np.partition(sample, len(sample) - k)[len(sample) - k]))
    if threshold > 0:
        # Keep every row whose float32 score could tie the bound's float32 value.
        below = np.nextafter(np.float32(threshold), np.float32(-np.inf))
        candidates = np.flatnonzero(scores >= float(below))
    else:
        candidates = np.flatnonzero(scores > 0)
    cand_scores = scores[candidates].astype(np.float32)
    if len(candidates) > k:
        kth = np.partition(cand_scores, len(cand_scores) - k)[len(cand_scores) - k]
        keep = cand_scores >= kth
        candidates, cand_scores = candidates[keep], cand_scores[keep]
    order = np.lexsort((candidates, -cand_scores))[:k]
    return candidates[order], cand_scores[order]


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if k <= 0:
        raise ValueError(f"k must be a positive number of results, got {k}")
    return int(k)


def _check_runtime_options(cache_size: int, max_query_tokens: int) -> None:
    if cache_size < 0:
        raise ValueError(f"cache_size must be >= 0 (0 disables the cache), got {cache_size}")
    if max_query_tokens <= 0:
        raise ValueError(f"max_query_tokens must be positive, got {max_query_tokens}")
