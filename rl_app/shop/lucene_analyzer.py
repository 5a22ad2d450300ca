"""Lucene's default English analyzer (Anserini ``DefaultEnglishAnalyzer``), in Python.

WebShop's pyserini index analyses text with StandardTokenizer (Unicode UAX#29 words) ->
EnglishPossessiveFilter -> lower case -> Lucene's 33 English stopwords -> PorterStemmer.
:func:`analyze` reproduces that chain; :mod:`rl_app.shop.search` scores its tokens with BM25.
Known differences are listed in :mod:`rl_app.shop.search`'s docstring.
"""

from __future__ import annotations

import functools
import itertools
import re
import string
from typing import Iterable, Optional, Sequence

__all__ = ["analyze", "porter_stem"]

# Queries longer than this are tokenized lazily so that a huge string stops early.
_LAZY_QUERY_CHARS = 16_384

# ----------------------------------------------------------------------------- analyzer

# Unicode emoji-data.txt, Emoji=Yes (Unicode 15), minus '#', '*' and the digits, which
# StandardTokenizer only treats as emoji inside keycap sequences.
_EMOJI_RANGES = (
    "A9 AE 203C 2049 2122 2139 2194-2199 21A9-21AA 231A-231B 2328 23CF 23E9-23F3 23F8-23FA "
    "24C2 25AA-25AB 25B6 25C0 25FB-25FE 2600-2604 260E 2611 2614-2615 2618 261D 2620 "
    "2622-2623 2626 262A 262E-262F 2638-263A 2640 2642 2648-2653 265F-2660 2663 2665-2666 "
    "2668 267B 267E-267F 2692-2697 2699 269B-269C 26A0-26A1 26A7 26AA-26AB 26B0-26B1 "
    "26BD-26BE 26C4-26C5 26C8 26CE-26CF 26D1 26D3-26D4 26E9-26EA 26F0-26F5 26F7-26FA 26FD "
    "2702 2705 2708-270D 270F 2712 2714 2716 271D 2721 2728 2733-2734 2744 2747 274C 274E "
    "2753-2755 2757 2763-2764 2795-2797 27A1 27B0 27BF 2934-2935 2B05-2B07 2B1B-2B1C 2B50 "
    "2B55 3030 303D 3297 3299 1F004 1F0CF 1F170-1F171 1F17E-1F17F 1F18E 1F191-1F19A "
    "1F1E6-1F1FF 1F201-1F202 1F21A 1F22F 1F232-1F23A 1F250-1F251 1F300-1F321 1F324-1F393 "
    "1F396-1F397 1F399-1F39B 1F39E-1F3F0 1F3F3-1F3F5 1F3F7-1F4FD 1F4FF-1F53D 1F549-1F54E "
    "1F550-1F567 1F56F-1F570 1F573-1F57A 1F587 1F58A-1F58D 1F590 1F595-1F596 1F5A4-1F5A5 "
    "1F5A8 1F5B1-1F5B2 1F5BC 1F5C2-1F5C4 1F5D1-1F5D3 1F5DC-1F5DE 1F5E1 1F5E3 1F5E8 1F5EF "
    "1F5F3 1F5FA-1F64F 1F680-1F6C5 1F6CB-1F6D2 1F6D5-1F6D9 1F6DC-1F6E5 1F6E9 1F6EB-1F6EC "
    "1F6F0 1F6F3-1F6FC 1F7E0-1F7EB 1F7F0 1F90C-1F93A 1F93C-1F945 1F947-1F9FF 1FA70-1FA7C "
    "1FA80-1FAC6 1FAC8 1FACC-1FADD 1FADF-1FAEB 1FAEF-1FAFA")
# UAX#29 MidLetter + MidNumLet (join letter-letter) and MidNum + MidNumLet (digit-digit).
_MID_LETTER = ".'’:·\u0387\u05f4\u2018\u2024\u2027\ufe13\ufe52\ufe55\uff07\uff0e\uff1a"
_MID_NUM = ".,;'’\u037e\u0589\u060c\u060d\u066c\u07f8\u2018\u2024\u2044\ufe10\ufe14\ufe50\ufe52\ufe54\uff07\uff0c\uff0e\uff1b"
# Han ideographs and Hiragana: StandardTokenizer emits each character as its own token.
_SINGLE_CHAR_SCRIPTS = re.compile(
    "([\u3040-\u309f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f])")
_APOSTROPHES = "'\u2019\uff07"
_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with"))  # Lucene EnglishAnalyzer

# ASCII fast path: everything but word characters and the five joiners becomes a space,
# then joiners not between two letters (. ' :) or two digits (. , ; ') become spaces.
_ASCII_WORD = string.ascii_letters + string.digits + "_"
_ASCII_TABLE = str.maketrans({chr(i): " " for i in range(128) if chr(i) not in _ASCII_WORD + ".,:;'"})
_ASCII_BAD_JOINER = re.compile(
    r"[.,:;'](?:(?![A-Za-z0-9])|(?<![A-Za-z0-9].)|(?<=[,;])(?![0-9])|(?<![0-9].)(?<=[,;])"
    r"|(?<=:)(?![A-Za-z])|(?<![A-Za-z].)(?<=:)|(?<=[A-Za-z][.'])(?![A-Za-z])"
    r"|(?<=[0-9][.'])(?![0-9]))")


@functools.cache
def _token_pattern() -> re.Pattern[str]:
    """The general (any script) token regex; built on first use."""
    parts = []
    for item in _EMOJI_RANGES.split():
        lo, _, hi = item.partition("-")
        parts.append(re.escape(chr(int(lo, 16))) + (f"-{re.escape(chr(int(hi, 16)))}" if hi else ""))
    emoji = "[" + "".join(parts) + "]"
    modifiers = "[\ufe0f\U0001F3FB-\U0001F3FF]*"
    word = (rf"\w+(?:(?:(?<=[^\W\d_])[{re.escape(_MID_LETTER)}](?=[^\W\d_])"
            rf"|(?<=\d)[{re.escape(_MID_NUM)}](?=\d))\w+)*")
    emoji_seq = rf"{emoji}{modifiers}(?:\u200d{emoji}{modifiers})*"
    return re.compile(f"{word}|{emoji_seq}")


def _raw_tokens(text: str) -> list[str]:
    """StandardTokenizer's tokens, case kept."""
    if text.isascii():
        return _ASCII_BAD_JOINER.sub(" ", text.translate(_ASCII_TABLE)).split()
    return _token_pattern().findall(_SINGLE_CHAR_SCRIPTS.sub(r" \1 ", text))


class _Porter:
    """Lucene's ``PorterStemmer`` (Porter's reference code, with its departures)."""

    def __init__(self, word: str):
        self.b = list(word)
        self.k = len(word) - 1
        self.j = 0

    def cons(self, i: int) -> bool:
        ch = self.b[i]
        if ch in "aeiou":
            return False
        if ch == "y":
            return True if i == 0 else not self.cons(i - 1)
        return True

    def m(self) -> int:
        """Number of consonant-vowel sequences in b[0..j]."""
        n, i, j = 0, 0, self.j
        while True:
            if i > j:
                return n
            if not self.cons(i):
                break
            i += 1
        i += 1
        while True:
            while True:
                if i > j:
                    return n
                if self.cons(i):
                    break
                i += 1
            i += 1
            n += 1
            while True:
                if i > j:
                    return n
                if not self.cons(i):
                    break
                i += 1
            i += 1

    def vowel_in_stem(self) -> bool:
        return any(not self.cons(i) for i in range(self.j + 1))

    def double_c(self, j: int) -> bool:
        return j >= 1 and self.b[j] == self.b[j - 1] and self.cons(j)

    def cvc(self, i: int) -> bool:
        if i < 2 or not self.cons(i) or self.cons(i - 1) or not self.cons(i - 2):
            return False
        return self.b[i] not in "wxy"

    def ends(self, s: str) -> bool:
        start = self.k - len(s) + 1
        if start < 0 or "".join(self.b[start:self.k + 1]) != s:
            return False
        self.j = self.k - len(s)
        return True

    def setto(self, s: str) -> None:
        self.b[self.j + 1:] = list(s)
        self.k = self.j + len(s)

    def r(self, s: str) -> None:
        if self.m() > 0:
            self.setto(s)

    def step1(self) -> None:
        b = self.b
        if b[self.k] == "s":
            if self.ends("sses"):
                self.k -= 2
            elif self.ends("ies"):
                self.setto("i")
            elif b[self.k - 1] != "s":
                self.k -= 1
        if self.ends("eed"):
            if self.m() > 0:
                self.k -= 1
        elif (self.ends("ed") or self.ends("ing")) and self.vowel_in_stem():
            self.k = self.j
            if self.ends("at"):
                self.setto("ate")
            elif self.ends("bl"):
                self.setto("ble")
            elif self.ends("iz"):
                self.setto("ize")
            elif self.double_c(self.k):
                self.k -= 1
                if self.b[self.k] in "lsz":
                    self.k += 1
            elif self.m() == 1 and self.cvc(self.k):
                self.setto("e")

    def step2(self) -> None:
        if self.ends("y") and self.vowel_in_stem():
            self.b[self.k] = "i"

    _STEP3 = {
        "a": (("ational", "ate"), ("tional", "tion")),
        "c": (("enci", "ence"), ("anci", "ance")),
        "e": (("izer", "ize"),),
        # Porter's published rule is abli -> able; Lucene (like Porter's own code) uses bli.
        "l": (("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous")),
        "o": (("ization", "ize"), ("ation", "ate"), ("ator", "ate")),
        "s": (("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous")),
        "t": (("aliti", "al"), ("iviti", "ive"), ("biliti", "ble")),
        "g": (("logi", "log"),),  # a departure of Porter's code, kept by Lucene
    }
    _STEP4 = {
        "e": (("icate", "ic"), ("ative", ""), ("alize", "al")),
        "i": (("iciti", "ic"),),
        "l": (("ical", "ic"), ("ful", "")),
        "s": (("ness", ""),),
    }
    _STEP5 = {
        "a": ("al",), "c": ("ance", "ence"), "e": ("er",), "i": ("ic",), "l": ("able", "ible"),
        "n": ("ant", "ement", "ment", "ent"), "o": ("ion", "ou"), "s": ("ism",),
        "t": ("ate", "iti"), "u": ("ous",), "v": ("ive",), "z": ("ize",),
    }

    def _rules(self, rules: tuple[tuple[str, str], ...]) -> None:
        for suffix, repl in rules:
            if self.ends(suffix):
                self.r(repl)
                return

    def step3(self) -> None:
        if self.k > 0:
            self._rules(self._STEP3.get(self.b[self.k - 1], ()))

    def step4(self) -> None:
        self._rules(self._STEP4.get(self.b[self.k], ()))

    def step5(self) -> None:
        if self.k == 0:
            return
        for suffix in self._STEP5.get(self.b[self.k - 1], ()):
            if self.ends(suffix):
                if suffix == "ion" and not (self.j >= 0 and self.b[self.j] in "st"):
                    continue
                break
        else:
            return
        if self.m() > 1:
            self.k = self.j

    def step6(self) -> None:
        self.j = self.k
        if self.b[self.k] == "e":
            a = self.m()
            if a > 1 or (a == 1 and not self.cvc(self.k - 1)):
                self.k -= 1
        if self.b[self.k] == "l" and self.double_c(self.k) and self.m() > 1:
            self.k -= 1

    def stem(self) -> str:
        if self.k > 1:  # words of one or two letters are left alone
            self.step1()
            self.step2()
            self.step3()
            self.step4()
            self.step5()
            self.step6()
        return "".join(self.b[:self.k + 1])


def porter_stem(word: str) -> str:
    """Stem one lower-case word exactly as Lucene's PorterStemFilter does."""
    return _Porter(word).stem()


def _needs_lucene_porter(word: str) -> bool:
    """Words on which PyStemmer's Snowball ``porter`` and Lucene's stemmer may differ."""
    return len(word) <= 2 or "bl" in word or "log" in word


@functools.cache
def _snowball():
    import Stemmer  # PyStemmer

    return Stemmer.Stemmer("porter")


def _stem_many(words: Sequence[str]) -> list[str]:
    fast = [w for w in words if not _needs_lucene_porter(w)]
    stemmed = dict(zip(fast, _snowball().stemWords(fast))) if fast else {}
    return [stemmed[w] if w in stemmed else porter_stem(w) for w in words]


def _normalise(raw: str) -> Optional[str]:
    """Possessive filter, lower case and stop filter; None for a dropped token.

    Underscore-only runs are dropped too: StandardTokenizer never emits them.
    """
    if len(raw) >= 2 and raw[-1] in "sS" and raw[-2] in _APOSTROPHES:
        raw = raw[:-2]
    word = raw.lower()
    return None if not word.strip("_") or word in _STOPWORDS else word


@functools.lru_cache(maxsize=200_000)
def _analyze_token(raw: str) -> Optional[str]:
    word = _normalise(raw)
    return None if word is None else _stem_many([word])[0]


def analyze(text: str, *, max_tokens: Optional[int] = None) -> list[str]:
    """The index terms of ``text``, in order (repeats kept), as the Lucene analyzer gives them.

    >>> analyze("The Women's Running Shoes, size: 3x-large")
    ['women', 'run', 'shoe', 'size', '3x', 'larg']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if max_tokens is not None and max_tokens <= 0:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    if max_tokens is not None and len(text) > _LAZY_QUERY_CHARS:
        raw_iter: Iterable[str] = (
            m.group() for m in _token_pattern().finditer(_SINGLE_CHAR_SCRIPTS.sub(r" \1 ", text)))
    else:
        raw_iter = _raw_tokens(text)
    terms = (t for t in map(_analyze_token, raw_iter) if t is not None)
    return list(itertools.islice(terms, max_tokens))
