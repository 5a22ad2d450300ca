"""Experiment presets: ``tune_configs/<name>.yaml`` (ci, smoke, default, paper, gpu10, cpu60).

A preset has sections ``shop`` (ShopConfig), ``env`` (episode + tokenization settings of
WebShopEnvConfig), ``model`` and per-stage sections (``demos``, ``il``, ``generated``,
``pairs``, ``dpo``, ``ppo``, ``tune``; the main job's evaluation is in ``tune``). Every
section is read through its typed settings (:data:`rl_app.settings.SECTIONS`) when the preset
loads, so an unknown section or a misspelt key is an error naming the file, section and key
before anything runs.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from rl_app.env.webshop_env import WebShopEnvConfig
from rl_app.errors import InputError
from rl_app.settings import MOVED_SECTIONS, SECTIONS, env_from_section, shop_from_section

__all__ = ["PRESET_DIR", "PRESETS", "Preset", "PresetError", "load_preset"]

PRESET_DIR = Path(__file__).resolve().parents[1] / "tune_configs"
PRESETS = ("ci", "smoke", "default", "paper", "gpu10", "cpu60")


class PresetError(InputError):
    """A preset file that does not parse into the known sections and settings."""


@dataclasses.dataclass(frozen=True)
class Preset:
    """A preset's raw sections, each validated through its settings class on construction;
    :meth:`settings` gives a section's typed settings (defaults filled in)."""

    name: str
    path: str
    sections: Mapping[str, Mapping[str, Any]]
    _typed: dict[str, Any] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        moved = sorted(set(self.sections) & set(MOVED_SECTIONS))
        if moved:
            raise PresetError(f"{self.path}: section {moved[0]!r} is not a preset section; {MOVED_SECTIONS[moved[0]]}")
        unknown = sorted(set(self.sections) - set(SECTIONS))
        if unknown:
            raise PresetError(f"{self.path}: unknown sections {unknown}; known: {list(SECTIONS)}")
        typed: dict[str, Any] = {"shop": shop_from_section(self.section("shop"), where=self.path)}
        typed["env"] = env_from_section(self.section("env"), self.section("shop"), where=self.path)
        for name, cls in SECTIONS.items():
            if cls is not None:
                typed[name] = cls.from_section(self.section(name), name=name, where=self.path)
        object.__setattr__(self, "_typed", typed)

    def section(self, name: str) -> dict[str, Any]:
        """The section as written in the file (no defaults)."""
        return dict(self.sections.get(name, {}))

    def settings(self, name: str) -> Any:
        """The typed settings of section ``name`` (``shop``: ShopConfig, ``env``: WebShopEnvConfig)."""
        return self._typed[name]

    def env_config(self, **overrides: Any) -> dict[str, Any]:
        """Flat WebShopEnv config: shop + env sections (+ overrides), validated."""
        cfg = {**self.section("shop"), **self.section("env"), **overrides}
        WebShopEnvConfig.from_dict(cfg)
        return cfg

    def shop_config(self, **overrides: Any) -> dict[str, Any]:
        cfg = {**self.section("shop"), **overrides}
        shop_from_section(cfg, where=self.path)
        return cfg


def load_preset(name_or_path: str | os.PathLike, *, data_dir: Optional[str] = None) -> Preset:
    """Load ``tune_configs/<name>.yaml`` or a YAML file path; ``data_dir`` fills shop.data_dir."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"preset {name_or_path!r} not found ({path}); known: {', '.join(PRESETS)}")
    with path.open() as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise PresetError(f"{path}: a preset is a mapping of sections")
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise PresetError(f"{path}: section {name!r} must be a mapping")
    sections = {k: dict(v) for k, v in raw.items()}
    if data_dir is not None:
        sections.setdefault("shop", {})["data_dir"] = str(data_dir)
    return Preset(path.stem, str(path), sections)
