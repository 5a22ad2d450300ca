"""A trained agent as a plain torch policy over text (DECISIONS 14).

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

from rl_app.policy.choice_model import ChoiceModel
from rl_app.policy.checkpoint import (
    TOKEN_LENGTH_KEYS,
    load_checkpoint_tokenizer,
    model_from_checkpoint,
    read_choice_checkpoint,
    save_choice_model,
)

__all__ = ["ChoicePolicy", "DEFAULT_MAX_STATE_TOKENS", "DEFAULT_MAX_ACTION_TOKENS"]

# WebShopEnvConfig's defaults: tokenization here must match what the policy was trained on.
DEFAULT_MAX_STATE_TOKENS = 512
DEFAULT_MAX_ACTION_TOKENS = 32


class ChoicePolicy:
    """A ``ChoiceModel`` plus its tokenizer: (observation text, candidates) -> action."""

    def __init__(self, model: ChoiceModel, tokenizer, *, max_state_tokens: Optional[int] = None,
                 max_action_tokens: Optional[int] = None, device: Union[str, torch.device, None] = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_state_tokens = int(max_state_tokens or model.config.max_state_tokens
                                    or min(DEFAULT_MAX_STATE_TOKENS, model.max_positions))
        self.max_action_tokens = int(max_action_tokens or model.config.max_action_tokens or DEFAULT_MAX_ACTION_TOKENS)
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model.to(self.device)

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
    def _ids(self, texts: Sequence[str], max_len: int) -> np.ndarray:
        # Same call as WebShopEnv._encode: [CLS] ... [SEP], truncated, 0-padded.
        rows = self.tokenizer(list(texts), truncation=True, max_length=max_len, add_special_tokens=True)["input_ids"]
        out = np.zeros((len(rows), max_len), dtype=np.int64)
        for i, ids in enumerate(rows):
            out[i, : len(ids)] = ids
        return out

    def encode(self, observation_text: str, candidate_texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The env-style numeric observation (one state, K = number of candidates)."""
        if isinstance(candidate_texts, str) or len(candidate_texts) == 0:
            raise ValueError("candidate_texts must be a non-empty list of strings")
        return {
            "state_ids": self._ids([observation_text], self.max_state_tokens)[0],
            "action_ids": self._ids(candidate_texts, self.max_action_tokens),
            "action_mask": np.ones(len(candidate_texts), dtype=np.int8),
        }

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def probs(self, observation_text: str, candidate_texts: Sequence[str]) -> np.ndarray:
        """pi(. | s) over the candidates, float64 summing to 1."""
        obs = self.encode(observation_text, candidate_texts)
        tensors = {k: torch.as_tensor(v, device=self.device).unsqueeze(0) for k, v in obs.items()}
        log_probs = self.model.log_probs(tensors["state_ids"], tensors["action_ids"], tensors["action_mask"])
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
            state_ids = self._ids(states, self.max_state_tokens)
            flat = self._ids([t for c in cands for t in c], self.max_action_tokens)
            action_ids = np.zeros((len(states), k, self.max_action_tokens), dtype=np.int64)
            mask = np.zeros((len(states), k), dtype=np.int8)
            row = 0
            for i, c in enumerate(cands):
                action_ids[i, : len(c)] = flat[row:row + len(c)]
                mask[i, : len(c)] = 1
                row += len(c)
            t = {name: torch.as_tensor(v, device=self.device)
                 for name, v in (("s", state_ids), ("a", action_ids), ("m", mask))}
            log_probs = self.model.log_probs(t["s"], t["a"], t["m"]).double().cpu().numpy()
            out += [log_probs[i, : len(c)] for i, c in enumerate(cands)]
        return out
