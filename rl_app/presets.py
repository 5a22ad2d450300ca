"""Experiment presets: ``tune_configs/<name>.yaml`` (ci, smoke, default, paper, gpu10).

A preset has sections ``shop`` (ShopConfig), ``env`` (episode + tokenization settings of
WebShopEnvConfig), ``model`` (WebShopChoiceModule settings) and per-stage sections
(``demos``, ``il``, ``eval``, and later ``dpo``, ``ppo``, ``tune``) that the stage CLIs read.
Unknown sections or shop/env keys are errors naming the file and key.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from rl_app.env.webshop_env import WebShopEnvConfig
from rl_app.errors import InputError
from rl_app.shop.config import ShopConfig

__all__ = ["PRESET_DIR", "PRESETS", "Preset", "PresetError", "load_preset"]

PRESET_DIR = Path(__file__).resolve().parents[1] / "tune_configs"
PRESETS = ("ci", "smoke", "default", "paper", "gpu10", "cpu60")
SECTIONS = ("shop", "env", "model", "demos", "il", "generated", "pairs", "dpo", "ppo", "eval", "tune")


class PresetError(InputError):
    """A preset file that does not parse into the known sections and settings."""


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    path: str
    sections: Mapping[str, Mapping[str, Any]]

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.sections.get(name, {}))

    def env_config(self, **overrides: Any) -> dict[str, Any]:
        """Flat WebShopEnv config: shop + env sections (+ overrides), validated."""
        cfg = {**self.section("shop"), **self.section("env"), **overrides}
        WebShopEnvConfig.from_dict(cfg)
        return cfg

    def shop_config(self, **overrides: Any) -> dict[str, Any]:
        cfg = {**self.section("shop"), **overrides}
        ShopConfig.from_dict(cfg)
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
    unknown = set(raw) - set(SECTIONS)
    if unknown:
        raise PresetError(f"{path}: unknown sections {sorted(unknown)}; known: {list(SECTIONS)}")
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise PresetError(f"{path}: section {name!r} must be a mapping")
    sections = {k: dict(v) for k, v in raw.items()}
    if data_dir is not None:
        sections.setdefault("shop", {})["data_dir"] = str(data_dir)
    preset = Preset(path.stem, str(path), sections)
    try:
        preset.env_config()
    except ValueError as e:
        raise PresetError(f"{path}: {e}") from e
    from rl_app.experiments.settings import ModelSettings

    ModelSettings.from_section(preset.section("model"), name="model", where=str(path))
    return preset
