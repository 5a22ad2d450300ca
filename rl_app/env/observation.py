"""Text -> the numeric observation RLlib sees; shared by the env, the offline data path and
``ChoicePolicy``.

Keeping one encoder for all of them guarantees that IL/DPO train on exactly the observations
the env produces at rollout time (same tokenizer, lengths, padding and candidate layout).

Two layouts (:data:`Layout`), each with its own observation keys (:data:`OBS_KEYS`, owned
here):

* ``text`` (default): the whole state string as one token row, ``state_ids``, cut at
  ``max_state_tokens`` (WebShop's model input). On item pages the product's title comes after
  the option lists, so a 256-token cut often hides which product is on the page.
* ``segments``: the state split into what a decision needs, each part a short row of its
  own: ``instruction_ids`` (the instruction), ``line_ids`` (the last actions, then one row per
  page line: a result's asin, title and price merged into one row, buttons and options by
  their label, selected options as ``selected <value>``). Rows repeat across states (titles,
  options, buttons), which is what lets a frozen encoder be computed once per unique row
  (:mod:`rl_app.policy.frozen_cache`). When a page has more lines than ``max_lines``, its first
  and last lines are kept (an item page ends with title, price and its buttons).

A page line that starts with a price (a result's row, an item page's ``Price:``) gets a mark
after the price, ``under budget`` or ``over budget``, when the instruction states a budget
(``... price lower than 40.00 dollars``): the lowest price shown against the stated bound.
It is read only from the instruction text and the page, as a person reading both would, and
gives the policy the comparison that word pieces of two numbers cannot (a price ``$38.79`` and
a bound ``40.00`` share no token).

In the ``segments`` layout a candidate that the page shows as already clicked (a selected
option, a visited result: ``[clicked button]`` in ``text_rich``) reads ``selected <candidate>``:
without it a greedy policy re-clicks a selected option or reopens the item it just left until
the step limit, because demonstrations never show that choice.

The segments are parsed back from the env's own observation string
(:func:`state_segments`), so stored trajectories (text only) serve both layouts.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Literal, NamedTuple, Optional, Sequence

import gymnasium as gym
import numpy as np

from rl_app.env.tokenizer import load_tokenizer

__all__ = [
    "ObservationEncoder", "observation_space", "Layout", "LAYOUTS", "OBS_KEYS", "SegmentSizes", "StateSegments",
    "state_segments", "mark_selected", "mark_price", "budget_of", "SEGMENTS_VERSION", "DEFAULT_MAX_STATE_TOKENS",
    "DEFAULT_MAX_ACTION_TOKENS",
]

Layout = Literal["text", "segments"]
LAYOUTS: tuple[str, ...] = ("text", "segments")
OBS_KEYS: dict[str, tuple[str, ...]] = {
    "text": ("state_ids", "action_ids", "action_mask"),
    "segments": ("instruction_ids", "line_ids", "action_ids", "action_mask"),
}
# Token lengths (the env's, the offline data path's and ChoicePolicy's defaults).
DEFAULT_MAX_STATE_TOKENS = 512
DEFAULT_MAX_ACTION_TOKENS = 32
_TOKEN_CACHE_SIZE = 50_000
# Bumped when the segments layout's rows change (stored frozen caches are per version).
SEGMENTS_VERSION = 3
_SELECTED = "selected "


class SegmentSizes(NamedTuple):
    """Row counts and lengths of the ``segments`` layout.

    instruction_tokens: the instruction row (WebShop instructions are ~20-50 tokens).
    lines: rows for the page, the last actions included.
    line_tokens: tokens per line (a result row: price, asin and the title's first words).
    """

    instruction_tokens: int = 64
    lines: int = 64
    line_tokens: int = 32


def observation_space(k_max: int, max_state_tokens: int, max_action_tokens: int, *, layout: Layout = "text",
                      segments: SegmentSizes = SegmentSizes()) -> gym.spaces.Dict:
    """The Dict space of :class:`~rl_app.env.webshop_env.WebShopEnv` observations."""
    high = np.iinfo(np.int32).max
    candidates = {
        "action_ids": gym.spaces.Box(0, high, (k_max, max_action_tokens), np.int32),
        "action_mask": gym.spaces.Box(0, 1, (k_max,), np.int8),
    }
    if layout == "text":
        return gym.spaces.Dict({"state_ids": gym.spaces.Box(0, high, (max_state_tokens,), np.int32), **candidates})
    if layout == "segments":
        return gym.spaces.Dict({
            "instruction_ids": gym.spaces.Box(0, high, (segments.instruction_tokens,), np.int32),
            "line_ids": gym.spaces.Box(0, high, (segments.lines, segments.line_tokens), np.int32),
            **candidates,
        })
    raise ValueError(f"unknown observation layout {layout!r}; expected one of {LAYOUTS}")


def mark_selected(state: str, candidate_texts: Sequence[str]) -> list[str]:
    """``selected <text>`` for each ``click[x]`` candidate whose ``x`` the page shows as clicked
    (``[clicked button] x [clicked button_]``: a selected option or a visited result)."""
    selected = {m.group(1).strip().lower() for line in state.split("\n") if (m := _CLICKED_RE.match(line.strip()))}
    out = []
    for text in candidate_texts:
        arg = text[len("click["):text.find("]")] if text.startswith("click[") and "]" in text else None
        out.append(f"{_SELECTED}{text}" if arg is not None and arg.lower() in selected else text)
    return out


class StateSegments(NamedTuple):
    instruction: str
    prev_actions: tuple[str, ...]
    lines: tuple[str, ...]


_ACTION_RE = re.compile(r"^(?:search|click)\[.*\]$", re.DOTALL)
_BUTTON_RE = re.compile(r"^\[button\] (.*) \[button_\]$")
_CLICKED_RE = re.compile(r"^\[clicked button\] (.*) \[clicked button_\]$")
_HEADER_LINES = ("WebShop", "Instruction:")
_NUMBER = r"\d[\d,]*(?:\.\d+)?"
_BUDGET_RE = re.compile(rf"(?:lower|less|cheaper) than \$?({_NUMBER})|(?:under|below) \$({_NUMBER})", re.IGNORECASE)
_PRICE_RE = re.compile(rf"^((?:Price: )?\$({_NUMBER})(?: to \$({_NUMBER}))?)(?=\s|$)")
UNDER_BUDGET, OVER_BUDGET = "under budget", "over budget"


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def budget_of(instruction: str) -> Optional[float]:
    """The price bound an instruction states (``... price lower than 40.00 dollars`` -> 40.0), or None."""
    m = _BUDGET_RE.search(instruction)
    return _number(m.group(1) or m.group(2)) if m else None


def mark_price(line: str, budget: Optional[float]) -> str:
    """``"$16.05 to $40.98 B07.. title"`` -> ``"$16.05 to $40.98 under budget B07.. title"`` for
    a budget of 40 (the lowest price shown against the bound); lines without a leading price,
    or no budget, stay as they are."""
    if budget is None or not (m := _PRICE_RE.match(line)):
        return line
    low = min(_number(x) for x in m.groups()[1:] if x)
    mark = UNDER_BUDGET if low <= budget else OVER_BUDGET
    return f"{m.group(1)} {mark}{line[m.end(1):]}"


def _line_label(line: str) -> str:
    if m := _CLICKED_RE.match(line):
        return f"{_SELECTED}{m.group(1)}"
    if m := _BUTTON_RE.match(line):
        return m.group(1)
    return line


def state_segments(state: str) -> StateSegments:
    """Split an env observation (``text_rich`` or ``text``, after its last actions) into the
    instruction, the last actions (most recent first) and the page's lines.

    A ``text_rich`` result is a blank line, then its asin button, title and price: one line
    ``"<price> <asin> <title>"`` here. A ``text`` page (nodes joined by ``[SEP]``) gives one
    line per node.
    """
    parts = state.split(" [SEP] ")
    prev: list[str] = []
    while len(parts) > 1 and _ACTION_RE.match(parts[0].strip()):
        prev.append(parts.pop(0).strip())
    if len(parts) > 1:  # the `text` mode: every node is a [SEP] part
        raw = [p.strip() for p in parts]
        blocks = [[line] for line in raw if line]
    else:
        blocks = []
        current: list[str] = []
        pending_result = 0
        for line in parts[0].split("\n"):
            if not line.strip():
                pending_result = 3  # text_rich puts a blank line before each result's asin
                continue
            if pending_result:
                current.append(line.strip())
                pending_result -= 1
                if pending_result == 0:
                    blocks.append(current)
                    current = []
                continue
            blocks.append([line.strip()])
        if current:
            blocks.append(current)
    instruction = ""
    lines: list[str] = []
    after_header = False
    for block in blocks:
        if len(block) == 1 and block[0].rstrip() in _HEADER_LINES:
            after_header = block[0].startswith("Instruction")
            continue
        if after_header and not instruction:
            instruction = block[0]
            after_header = False
            continue
        if len(block) == 3:  # a result: asin, title, price
            asin, title, price = block
            lines.append(f"{price} {_line_label(asin)} {title}")
        else:
            lines.extend(_line_label(line) for line in block)
    if instruction.lower().startswith("instruction:"):
        instruction = instruction[len("instruction:"):].strip()
    return StateSegments(instruction, tuple(reversed(prev)), tuple(lines))


class ObservationEncoder:
    """Tokenizes a state and its candidates into fixed-shape, 0-padded int arrays.

    The tokenizer loads lazily (first encode), so building one costs nothing; candidate
    rows are cached (results and option buttons repeat across steps and episodes).
    """

    def __init__(self, tokenizer="minilm", *, k_max: int = 64, max_state_tokens: int = DEFAULT_MAX_STATE_TOKENS,
                 max_action_tokens: int = DEFAULT_MAX_ACTION_TOKENS, layout: Layout = "text",
                 segments: SegmentSizes = SegmentSizes()) -> None:
        """``tokenizer``: a name/path for :func:`~rl_app.env.tokenizer.load_tokenizer`, or a loaded
        tokenizer (e.g. the one saved with a checkpoint)."""
        if k_max < 1 or max_state_tokens < 8 or max_action_tokens < 4:
            raise ValueError(f"need k_max >= 1, max_state_tokens >= 8, max_action_tokens >= 4; got "
                             f"{k_max}, {max_state_tokens}, {max_action_tokens}")
        if layout not in LAYOUTS:
            raise ValueError(f"unknown observation layout {layout!r}; expected one of {LAYOUTS}")
        segments = SegmentSizes(*segments)
        if min(segments) < 1 or segments.instruction_tokens < 4 or segments.line_tokens < 4:
            raise ValueError(f"segment sizes must be >= 4 tokens and >= 1 line, got {segments}")
        self.tokenizer_name = tokenizer if isinstance(tokenizer, str) else getattr(tokenizer, "name_or_path", "?")
        self.k_max = k_max
        self.max_state_tokens = max_state_tokens
        self.max_action_tokens = max_action_tokens
        self.layout = layout
        self.segments = segments
        self.keys = OBS_KEYS[layout]
        self._tokenizer = None if isinstance(tokenizer, str) else tokenizer
        self._cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_name)
        return self._tokenizer

    @property
    def space(self) -> gym.spaces.Dict:
        return observation_space(self.k_max, self.max_state_tokens, self.max_action_tokens, layout=self.layout,
                                 segments=self.segments)

    def _row(self, text: str, max_len: int) -> np.ndarray:
        ids = self.tokenizer(text, truncation=True, max_length=max_len)["input_ids"]
        row = np.zeros(max_len, dtype=np.int32)
        row[: len(ids)] = ids
        return row

    def _cached_row(self, text: str, max_len: int) -> np.ndarray:
        key = (text, max_len)
        row = self._cache.get(key)
        if row is None:
            row = self._cache[key] = self._row(text, max_len)
            if len(self._cache) > _TOKEN_CACHE_SIZE:
                self._cache.popitem(last=False)
        return row

    def _action_row(self, text: str) -> np.ndarray:
        return self._cached_row(text, self.max_action_tokens)

    def _state(self, state: str) -> dict[str, np.ndarray]:
        if self.layout == "text":
            return {"state_ids": self._row(state, self.max_state_tokens)}
        seg = state_segments(state)
        sizes = self.segments
        budget = budget_of(seg.instruction)
        rows = [f"last action: {a}" for a in seg.prev_actions] + [mark_price(line, budget) for line in seg.lines]
        if len(rows) > sizes.lines:
            head = sizes.lines // 2
            rows = rows[:head] + rows[len(rows) - (sizes.lines - head):]
        lines = np.zeros((sizes.lines, sizes.line_tokens), dtype=np.int32)
        for i, text in enumerate(rows):
            lines[i] = self._cached_row(text, sizes.line_tokens)
        return {"instruction_ids": self._cached_row(seg.instruction, sizes.instruction_tokens), "line_ids": lines}

    def encode(self, state: str, candidate_texts: Sequence[str]) -> dict[str, np.ndarray]:
        """One observation; candidates beyond ``k_max`` are an error (cap them in the env)."""
        if len(candidate_texts) > self.k_max:
            raise ValueError(f"{len(candidate_texts)} candidates exceed k_max={self.k_max}")
        action_ids = np.zeros((self.k_max, self.max_action_tokens), dtype=np.int32)
        mask = np.zeros(self.k_max, dtype=np.int8)
        if self.layout == "segments":
            candidate_texts = mark_selected(state, candidate_texts)
        for i, text in enumerate(candidate_texts):
            action_ids[i] = self._action_row(text)
            mask[i] = 1
        return {**self._state(state), "action_ids": action_ids, "action_mask": mask}

    def encode_batch(self, states: Sequence[str], candidate_texts: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
        """Stacked observations (B, ...), e.g. for a Ray Data batch."""
        if len(states) != len(candidate_texts):
            raise ValueError(f"{len(states)} states but {len(candidate_texts)} candidate lists")
        rows = [self.encode(s, c) for s, c in zip(states, candidate_texts)]
        return {k: np.stack([r[k] for r in rows]) for k in self.keys}
