"""Which choice model a config describes: the one place that maps a saved/model config to a class.

* ``ChoiceModel`` (:mod:`rl_app.policy.choice_model`): the ``text`` observation layout, BERT
  over the whole state and every candidate (full fine-tuning by default);
* ``SegmentChoiceModel`` (:mod:`rl_app.policy.segment_model`): the ``segments`` layout, a
  frozen (or partly frozen) encoder whose rows are computed once, and a late-interaction head.

Saved configs carry ``"kind": "segments"`` for the second; configs without a kind are the first
(every checkpoint written before the segments model existed).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Union

from rl_app.policy.choice_model import ChoiceModel, ChoiceModelConfig
from rl_app.policy.segment_model import SegmentChoiceModel, SegmentModelConfig

__all__ = ["ModelConfig", "AnyChoiceModel", "config_from_dict", "build_model", "layout_of", "SEGMENTS"]

SEGMENTS = "segments"
ModelConfig = Union[ChoiceModelConfig, SegmentModelConfig]
AnyChoiceModel = Union[ChoiceModel, SegmentChoiceModel]


def config_from_dict(d: Mapping[str, Any]) -> ModelConfig:
    """A model config from its ``to_dict()`` form (a saved ``choice_config.json``'s ``model``)."""
    if d.get("kind") == SEGMENTS:
        return SegmentModelConfig.from_dict(d)
    return ChoiceModelConfig.from_dict(d)


def build_model(config: ModelConfig, *, bert_config: Optional[Mapping[str, Any]] = None) -> AnyChoiceModel:
    """The model of ``config``: pretrained encoder weights, or a random-init ``bert_config``
    architecture to load saved weights into."""
    cls = SegmentChoiceModel if isinstance(config, SegmentModelConfig) else ChoiceModel
    return cls(config, bert_config=bert_config)


def layout_of(config: Union[ModelConfig, Mapping[str, Any]]) -> str:
    """The observation layout a model reads: ``segments`` or ``text``."""
    kind = config.get("kind") if isinstance(config, Mapping) else getattr(config, "kind", None)
    return SEGMENTS if kind == SEGMENTS else "text"
