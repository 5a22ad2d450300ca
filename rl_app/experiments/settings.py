"""Typed settings: one owner for each setting's name, type, default and help.

A preset section (``tune_configs/*.yaml``) is read with :meth:`Settings.from_section`, which
refuses keys the settings do not have, naming the file, section and key; command lines get
their flags from the same fields (:meth:`Settings.add_arguments` / :meth:`Settings.from_args`),
so a default is written once, here.

:class:`ModelSettings` (the ``model`` section) is the policy's architecture and its training
mode: full fine-tuning of BERT over the ``text`` layout, or the cached-encoder mode over the
``segments`` layout (``trainable_layers`` top layers train, the rest is frozen and computed
once per unique row).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from rl_app.errors import InputError

__all__ = ["SettingsError", "Settings", "ModelSettings"]


class SettingsError(InputError):
    """A preset section or flag that the settings refuse (unknown key, wrong type)."""


def _setting(default: Any, help: str, **kwargs: Any):
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass(frozen=True)
class Settings:
    """Base of the typed settings: section reading and derived command-line flags."""

    @classmethod
    def from_section(cls, section: Optional[Mapping[str, Any]], *, name: str = "", where: str = "") -> "Settings":
        """The settings of a preset section; unknown keys are an error naming where and which."""
        section = dict(section or {})
        known = [f.name for f in dataclasses.fields(cls)]
        for key in section:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(known)}"
                prefix = f"{where}: " if where else ""
                raise SettingsError(f"{prefix}unknown key {key!r} in section {name or cls.__name__!r}{hint}")
        try:
            return cls(**section)
        except (TypeError, ValueError) as e:
            raise SettingsError(f"{where + ': ' if where else ''}section {name!r}: {e}") from None

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *, skip: Sequence[str] = ()) -> None:
        """One ``--flag`` per field (``trainable_layers`` -> ``--trainable-layers``); booleans get
        ``--x/--no-x``. Flags left unset keep the field's default (or a section's value, through
        :meth:`from_args`)."""
        for f in dataclasses.fields(cls):
            if f.name in skip:
                continue
            flag = "--" + f.name.replace("_", "-")
            help_text = f"{f.metadata.get('help', '')} (default: {f.default!r})"
            if f.metadata.get("kind") is bool:
                parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                                    help=help_text)
            else:
                parser.add_argument(flag, dest=f.name, type=f.metadata.get("kind", str), default=None,
                                    choices=f.metadata.get("choices"), help=help_text)

    @classmethod
    def from_args(cls, args: argparse.Namespace, base: Optional["Settings"] = None) -> "Settings":
        """``base`` (or the defaults) with every flag the user set."""
        base = base if base is not None else cls()
        given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
                 if getattr(args, f.name, None) is not None}
        return dataclasses.replace(base, **given)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _optional_int(text: str) -> Optional[int]:
    return None if text.lower() in ("none", "all", "") else int(text)


@dataclass(frozen=True)
class ModelSettings(Settings):
    """The ``model`` section: which encoder, and how much of it trains.

    Attributes:
        encoder: ``minilm`` (packaged all-MiniLM-L6-v2), ``tiny`` (random, tests) or any
            Hugging Face BERT name or local path.
        dropout: encoder dropout.
        trainable_layers: top encoder layers that train. None fine-tunes the whole encoder
            (the ``text`` layout's default); with the ``segments`` layout None means 0 (all
            frozen: each unique row is encoded once).
        frozen_cache: with the ``segments`` layout, encode the frozen part of every unique row
            of the training data once, store it beside the data and read it into the learners.
        head_dim: width of the segments model's late-interaction head.
        match_heads: heads of its token- and line-level matching.
        match_signals: its exact-match signals (off: the learned matching alone, the ablation).
    """

    encoder: str = _setting("minilm", "minilm, tiny, or a BERT name/path")
    dropout: float = _setting(0.0, "encoder dropout", kind=float)
    trainable_layers: Optional[int] = _setting(
        None, "top encoder layers that train; none = all (text layout) / 0 (segments layout)", kind=_optional_int)
    frozen_cache: bool = _setting(True, "segments layout: cache the frozen part of every unique data row", kind=bool)
    head_dim: int = _setting(128, "segments model: width of its late-interaction head", kind=int)
    match_heads: int = _setting(4, "segments model: heads of its token/line matching", kind=int)
    match_signals: bool = _setting(True, "segments model: exact-match signals (word pieces shared with the "
                                         "instruction, each candidate's own page line)", kind=bool)

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, str) or not self.encoder:
            raise SettingsError(f"encoder must be a non-empty string, got {self.encoder!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise SettingsError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.trainable_layers is not None and int(self.trainable_layers) < 0:
            raise SettingsError(f"trainable_layers must be >= 0 or None, got {self.trainable_layers!r}")
        if int(self.head_dim) < 8 or int(self.head_dim) % int(self.match_heads):
            raise SettingsError(f"head_dim ({self.head_dim}) must be >= 8 and divisible by match_heads "
                                f"({self.match_heads})")

    def to_model_config(self, layout: str = "text") -> dict[str, Any]:
        """``WebShopChoiceModule``'s ``model_config`` for a policy reading ``layout``."""
        config: dict[str, Any] = {"encoder": self.encoder, "dropout": float(self.dropout)}
        if layout == "segments":
            config.update(trainable_layers=int(self.trainable_layers or 0), head_dim=int(self.head_dim),
                          match_heads=int(self.match_heads), match_signals=bool(self.match_signals))
        elif self.trainable_layers is not None:
            config["trainable_layers"] = int(self.trainable_layers)
        return config

    def cached(self, layout: str) -> bool:
        """Whether training reads a stored frozen-row cache (segments layout with ``frozen_cache``)."""
        return layout == "segments" and bool(self.frozen_cache)

    def argv(self) -> list[str]:
        """The flags that reproduce these settings on a training command line."""
        out: list[str] = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            flag = "--" + f.name.replace("_", "-")
            if f.metadata.get("kind") is bool:
                out.append(flag if value else "--no-" + f.name.replace("_", "-"))
            elif value is not None:
                out += [flag, str(value)]
        return out
