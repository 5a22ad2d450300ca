"""A trained agent as a plain torch policy over text, usable without RLlib or Ray.

>>> policy = ChoicePolicy.from_checkpoint("runs/dpo/checkpoint_000010")   # doctest: +SKIP
>>> index, probs = policy.act(observation_text, env.candidate_texts())      # doctest: +SKIP

Candidate texts must be what the env's policy reads (``WebShopEnv.candidate_texts()``,
which adds product titles to ``click[asin]`` when ``enrich_candidates`` is on), and the
token limits must match the env's (``max_state_tokens``/``max_action_tokens``; defaults 512
and 32 as in ``WebShopEnvConfig``).
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import numpy as np
import torch

from rl_app.env.observation import (
    DEFAULT_MAX_ACTION_TOKENS,
    DEFAULT_MAX_STATE_TOKENS,
    ObservationEncoder,
    SegmentSizes,
)
from rl_app.policy.checkpoint import (
    TOKEN_LENGTH_KEYS,
    load_checkpoint_tokenizer,
    model_from_checkpoint,
    read_choice_checkpoint,
    save_choice_model,
)
from rl_app.policy.models import AnyChoiceModel, layout_of

__all__ = ["ChoicePolicy", "DEFAULT_MAX_STATE_TOKENS", "DEFAULT_MAX_ACTION_TOKENS"]


class ChoicePolicy:
    """A choice model plus its tokenizer: (observation text, candidates) -> action.

    Text becomes ids through the env's own :class:`~rl_app.env.observation.ObservationEncoder`
    (one tokenization path), in the layout the model reads (``text`` or ``segments``).
    """

    def __init__(self, model: AnyChoiceModel, tokenizer, *, max_state_tokens: Optional[int] = None,
                 max_action_tokens: Optional[int] = None, device: Union[str, torch.device, None] = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        config = model.config
        self.layout = layout_of(config)
        if self.layout == "segments":
            defaults = SegmentSizes()
            self.segments = SegmentSizes(config.instruction_tokens or defaults.instruction_tokens, config.max_lines,
                                         config.line_tokens or defaults.line_tokens)
            self.max_state_tokens = int(max_state_tokens or DEFAULT_MAX_STATE_TOKENS)
        else:
            self.segments = SegmentSizes()
            self.max_state_tokens = int(max_state_tokens or config.max_state_tokens
                                        or min(DEFAULT_MAX_STATE_TOKENS, model.max_positions))
        self.max_action_tokens = int(max_action_tokens or config.max_action_tokens or DEFAULT_MAX_ACTION_TOKENS)
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model.to(self.device)
        self._encoders: dict[int, ObservationEncoder] = {}

    @classmethod
    def from_checkpoint(cls, path: Union[str, os.PathLike], *, module_id: str = "default_policy",
                        device: Union[str, torch.device, None] = None, **kwargs) -> "ChoicePolicy":
        """Load a ``save_pretrained`` dir, an RLModule checkpoint or an Algorithm checkpoint."""
        loaded = read_choice_checkpoint(path, module_id)
        return cls(model_from_checkpoint(loaded), load_checkpoint_tokenizer(loaded), device=device, **kwargs)

    @classmethod
    def from_pretrained(cls, path, **kwargs) -> "ChoicePolicy":
        return cls.from_checkpoint(path, **kwargs)

    def save_pretrained(self, directory: Union[str, os.PathLike]) -> str:
        """Weights + config + tokenizer, written to a temporary dir and renamed. The config
        records this policy's token lengths, so the loaded policy tokenizes as this one does."""
        lengths = {key: getattr(self, key) for key in TOKEN_LENGTH_KEYS}
        return save_choice_model(self.model, directory, tokenizer=self.tokenizer, overrides=lengths)

    # ------------------------------------------------------------------ text -> ids
    def observation_encoder(self, k: int) -> ObservationEncoder:
        """The encoder at this policy's lengths with ``k`` candidate rows (one per k, cached)."""
        encoder = self._encoders.get(k)
        if encoder is None:
            encoder = self._encoders[k] = ObservationEncoder(
                self.tokenizer, k_max=k, max_state_tokens=self.max_state_tokens,
                max_action_tokens=self.max_action_tokens, layout=self.layout, segments=self.segments)
        return encoder

    def encode(self, observation_text: str, candidate_texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The env-style numeric observation (one state, K = number of candidates)."""
        if isinstance(candidate_texts, str) or len(candidate_texts) == 0:
            raise ValueError("candidate_texts must be a non-empty list of strings")
        return self.observation_encoder(len(candidate_texts)).encode(observation_text, list(candidate_texts))

    def _tensors(self, obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(v, device=self.device) for k, v in obs.items()}

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def probs(self, observation_text: str, candidate_texts: Sequence[str]) -> np.ndarray:
        """pi(. | s) over the candidates, float64 summing to 1."""
        obs = self.encode(observation_text, candidate_texts)
        log_probs = self.model.log_probs_obs({k: v.unsqueeze(0) for k, v in self._tensors(obs).items()})
        probs = log_probs[0].double().exp().cpu().numpy()
        return probs / probs.sum()

    def act(self, observation_text: str, candidate_texts: Sequence[str], *, greedy: bool = True,
            rng: Optional[np.random.Generator] = None) -> tuple[int, np.ndarray]:
        """(chosen index, probabilities): argmax, or a sample when ``greedy=False``."""
        probs = self.probs(observation_text, candidate_texts)
        if greedy:
            return int(np.argmax(probs)), probs
        rng = rng if rng is not None else np.random.default_rng()
        return int(rng.choice(len(probs), p=probs)), probs

    @torch.no_grad()
    def log_probs_batch(self, observation_texts: Sequence[str], candidate_texts: Sequence[Sequence[str]], *,
                        batch_size: int = 32) -> list[np.ndarray]:
        """log pi(. | s) for many states at once (one array per state, over its own candidates).

        States are batched ``batch_size`` at a time, candidates padded to the largest count in
        the batch and masked; this is the reference pass that precomputes pi_ref for DPO pairs.
        """
        if len(observation_texts) != len(candidate_texts):
            raise ValueError(f"{len(observation_texts)} states but {len(candidate_texts)} candidate lists")
        out: list[np.ndarray] = []
        for lo in range(0, len(observation_texts), batch_size):
            states = list(observation_texts[lo:lo + batch_size])
            cands = [list(c) for c in candidate_texts[lo:lo + batch_size]]
            if any(len(c) == 0 for c in cands):
                raise ValueError("every state needs at least one candidate")
            k = max(len(c) for c in cands)
            obs = self.observation_encoder(k).encode_batch(states, cands)
            log_probs = self.model.log_probs_obs(self._tensors(obs)).double().cpu().numpy()
            out += [log_probs[i, : len(c)] for i, c in enumerate(cands)]
        return out
