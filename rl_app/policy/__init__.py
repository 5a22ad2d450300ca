"""The BERT choice policy: encoder and tokenizer loading, the choice model, RLlib RLModules.

Exports resolve lazily so that ``import rl_app.policy`` neither imports torch nor Ray.
"""

from __future__ import annotations

from rl_app._lazy import lazy_getattr

_EXPORTS = {
    "EncoderConfig": "rl_app.policy.encoder",
    "load_encoder": "rl_app.policy.encoder",
    "load_tokenizer": "rl_app.env.tokenizer",
    "resolve_encoder_source": "rl_app.env.tokenizer",
    "EncoderNotFoundError": "rl_app.env.tokenizer",
    "MINILM": "rl_app.env.tokenizer",
    "TINY": "rl_app.env.tokenizer",
    "MASKED_LOGIT": "rl_app.policy.choice_model",
    "ChoiceModel": "rl_app.policy.choice_model",
    "ChoiceModelConfig": "rl_app.policy.choice_model",
    "ChoiceOutput": "rl_app.policy.choice_model",
    "masked_log_softmax": "rl_app.policy.choice_model",
    "ChoicePolicy": "rl_app.policy.choice_policy",
    "WebShopChoiceModule": "rl_app.policy.rl_module",
    "module_spec": "rl_app.policy.rl_module",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
