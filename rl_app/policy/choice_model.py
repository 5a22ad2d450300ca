"""The BERT choice model: one logit per candidate action, a value for the state.

WebShop's IL/RL model (Yao et al. 2022, ``BertModelForWebshop``) encodes the state and every
valid action with one shared BERT, lets each action token attend over the state tokens
with a BiDAF-style bi-attention, maps ``[h, a, h*a, q2c*a]`` through a linear+ReLU, averages
over the action's tokens and reads a logit; log pi(a|s) = log-softmax over the valid actions.

This module keeps that interaction and removes its costs:

* the state is encoded once per step (WebShop repeats the state's token states once per
  action before attending);
* only valid candidates are encoded, all of a batch in one pass: rows with
  ``action_mask == 1`` are gathered from the ``(B*K, L_a)`` id matrix, encoded and
  scattered back;
* padding columns beyond the longest real sequence in the batch are cut (state and
  candidates) before BERT runs: a 512-token observation space costs what its longest page
  costs;
* candidate tokens attend over their own state's tokens in one batched multi-head
  attention (``scaled_dot_product_attention``), with the candidates of a state packed next to
  each other, so the interaction costs a few percent of the encoder;
* the sizes that depend on the batch's values (lengths after the cut, the number of valid
  candidates, the most valid candidates of any state) and the vocabulary check are read to
  the host in one transfer per forward pass: on a GPU each such read makes the CPU wait for
  the queued kernels, and a host-bound update (MiniLM) pays for every one. Rows are selected
  without ``nonzero`` and the attention masks are handed to BERT ready-made, so neither
  reads the device again (``rl_app.op_counter.OpCounter`` counts the reads).

Features per candidate token t (hidden h_t, attended state a_t, candidate summary c):
``[h_t, a_t, h_t * a_t, c * a_t]`` -> Linear+ReLU -> masked mean over t -> MLP -> logit.
WebShop's ``output_two`` (a candidate summary weighted by max attention) is replaced by the
candidate's pooled vector c; learned multi-head projections replace BiDAF's single
trilinear score, so the interaction is at least as expressive.

Masked candidates get logit ``MASKED_LOGIT`` (-1e9, not -inf: -inf gives NaN in RLlib's
entropies and KLs): after a float32 softmax their probability is exactly 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rl_app.env.observation import OBS_KEYS
from rl_app.policy.encoder import EncoderConfig, build_encoder, load_encoder
from rl_app.policy.frozen_rows import parameters_below

__all__ = ["MASKED_LOGIT", "ChoiceModelConfig", "ChoiceOutput", "ChoiceModel", "masked_log_softmax"]

MASKED_LOGIT = -1e9
Pooling = Literal["mean", "cls"]


@dataclass(frozen=True)
class ChoiceModelConfig:
    """Architecture and input handling of the choice model.

    Attributes:
        encoder: which BERT, its dropout and gradient checkpointing.
        pooling: how a sequence becomes one vector: masked ``mean`` over tokens (what
            all-MiniLM-L6-v2 was trained with) or the ``cls`` token's state.
        attention_heads: heads of the candidate->state cross-attention; must divide the
            encoder's hidden size.
        interaction_dim: width of the per-token interaction features (None = hidden size).
        value_hidden: width of the value head's hidden layer.
        max_state_tokens: cut states to this many tokens before encoding (None = as given;
            must then fit the encoder's position embeddings).
        max_action_tokens: same for candidate actions.
        encode_valid_only: encode only rows with ``action_mask == 1`` (False encodes every
            row; kept for the equivalence test and benchmarks).
        trainable_layers: None (default) fine-tunes the whole encoder; N freezes its
            embeddings and all but the top N layers (no caching here: every state is unique
            in this layout; the ``segments`` model caches its frozen part).
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    pooling: Pooling = "mean"
    attention_heads: int = 4
    interaction_dim: Optional[int] = None
    value_hidden: int = 256
    max_state_tokens: Optional[int] = None
    max_action_tokens: Optional[int] = None
    encode_valid_only: bool = True
    trainable_layers: Optional[int] = None

    def __post_init__(self) -> None:
        if self.trainable_layers is not None and int(self.trainable_layers) < 0:
            raise ValueError(f"trainable_layers must be None or >= 0, got {self.trainable_layers!r}")
        if self.pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {self.pooling!r}")
        for name in ("attention_heads", "value_hidden"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("interaction_dim", "max_state_tokens", "max_action_tokens"):
            value = getattr(self, name)
            if value is not None and int(value) < (1 if name == "interaction_dim" else 2):
                raise ValueError(f"{name} must be None or a positive length, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return config_as_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ChoiceModelConfig":
        d = with_encoder_config(d)
        d.pop("kind", None)
        return cls(**d)


def model_encoder(cfg: EncoderConfig, encoder: Optional[nn.Module] = None,
                  bert_config: Optional[Mapping[str, Any]] = None) -> nn.Module:
    """A choice model's encoder: ``encoder`` as given, a random-init ``bert_config`` architecture
    (to load saved weights into), or ``cfg``'s pretrained weights."""
    if encoder is not None:
        return encoder
    return build_encoder(bert_config, cfg) if bert_config is not None else load_encoder(cfg)


def config_as_dict(config) -> dict[str, Any]:
    """A model config dataclass as JSON-ready dict (its ``encoder`` as a dict too)."""
    d = dataclasses.asdict(config)
    d["encoder"] = config.encoder.to_dict()
    return d


def with_encoder_config(d: Mapping[str, Any]) -> dict[str, Any]:
    """A model config dict with its ``encoder`` (a dict or a name) made an :class:`EncoderConfig`."""
    d = dict(d)
    if isinstance(d.get("encoder"), Mapping):
        d["encoder"] = EncoderConfig.from_dict(d["encoder"])
    elif isinstance(d.get("encoder"), str):
        d["encoder"] = EncoderConfig(name_or_path=d["encoder"])
    return d


class ChoiceOutput(NamedTuple):
    """What one forward pass gives.

    logits: (B, K) float32, ``MASKED_LOGIT`` where ``action_mask == 0``.
    value: (B,) float32 state value V(s); None from ``forward(..., with_value=False)``.
    state_embedding: (B, H) pooled state vector (the value head's input).
    """

    logits: torch.Tensor
    value: Optional[torch.Tensor]
    state_embedding: torch.Tensor


def masked_log_softmax(logits: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
    """log pi over the valid candidates; masked entries are ``MASKED_LOGIT``-level (not -inf)."""
    mask = action_mask != 0
    return torch.log_softmax(logits.float().masked_fill(~mask, MASKED_LOGIT), dim=-1)


class _Cut(NamedTuple):
    """How a batch of token-id rows is cut before BERT: its first ``length`` columns, and whether
    any kept position is padding (False: no attention mask is needed)."""

    length: int
    padded: bool


def _cut_stats(ids: torch.Tensor, rows: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(4,) long tensor on the device: the column after the last non-pad token of the rows, the
    shortest leading run of non-pad tokens of any row, the largest and smallest id. ``rows``
    (bool, one per row) limits all four to those rows. Read to the host with the other
    forward-pass sizes at once (:meth:`ChoiceModel._cut`)."""
    attend = ids != 0
    if rows is not None:
        attend = attend & rows[:, None]
        ids = ids.masked_fill(~rows[:, None], 0)
    positions = torch.arange(1, ids.shape[1] + 1, device=ids.device)
    last = (attend.any(dim=0) * positions).max()
    lead = attend.long().cumprod(dim=1).sum(dim=1)
    if rows is not None:
        lead = lead.masked_fill(~rows, ids.shape[1])
    return torch.stack([last, lead.min(), ids.max(), ids.min()])


def _attention_mask(ids: torch.Tensor, cut: _Cut) -> Optional[torch.Tensor]:
    """True where a token of the cut rows attends (None if every position does). Position 0
    always attends, so an all-padding row (RLlib zero-padding, a terminal page with no
    candidates) gives finite numbers instead of a fully masked softmax."""
    if not cut.padded:
        return None
    attend = ids != 0
    attend[:, 0] = True
    return attend


def _nonempty(ids: torch.Tensor) -> torch.Tensor:
    if ids.shape[0] == 0:
        raise ValueError("empty batch: nothing to encode")
    return ids


def _pool(hidden: torch.Tensor, attend: Optional[torch.Tensor], how: Pooling) -> torch.Tensor:
    if how == "cls":
        return hidden[:, 0]
    if attend is None:
        return hidden.mean(dim=1)
    weights = attend.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class _CrossAttention(nn.Module):
    """Multi-head attention of query tokens over one state's tokens (keys padded per state)."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"attention_heads={heads} must divide the encoder's hidden size {hidden}")
        self.heads = heads
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, key_mask: Optional[torch.Tensor]) -> torch.Tensor:
        # queries (B, Q, H), keys (B, L, H), key_mask (B, L) bool, True = attend (None: all keys).
        b, q_len, hidden = queries.shape
        d = hidden // self.heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, -1, self.heads, d).transpose(1, 2)

        attended = F.scaled_dot_product_attention(
            split(self.q(queries)), split(self.k(keys)), split(self.v(keys)),
            attn_mask=None if key_mask is None else key_mask[:, None, None, :])
        return self.out(attended.transpose(1, 2).reshape(b, q_len, hidden))


class ChoiceModel(nn.Module):
    """Shared-BERT candidate scorer with a value head; plain torch, usable outside RLlib.

    Inputs follow ``rl_app.env.webshop_env``: ``state_ids`` (B, L_s), ``action_ids``
    (B, K, L_a), ``action_mask`` (B, K); padding id 0; any integer dtype.
    """

    def __init__(self, config: ChoiceModelConfig = ChoiceModelConfig(), *, encoder: Optional[nn.Module] = None,
                 bert_config: Optional[Mapping[str, Any]] = None) -> None:
        """``encoder`` or ``bert_config`` (a random-init architecture, e.g. to load saved
        weights into) replace loading ``config.encoder``."""
        super().__init__()
        self.config = config
        self.encoder = encoder = model_encoder(config.encoder, encoder, bert_config)
        hidden = int(encoder.config.hidden_size)
        self.max_positions = int(encoder.config.max_position_embeddings)
        self.vocab_size = int(encoder.config.vocab_size)
        inner = int(config.interaction_dim or hidden)
        self.cross_attention = _CrossAttention(hidden, int(config.attention_heads))
        self.token_features = nn.Sequential(nn.Linear(4 * hidden, inner), nn.ReLU())
        self.score = nn.Sequential(nn.Linear(inner, inner), nn.ReLU(), nn.Linear(inner, 1))
        self.value_head = nn.Sequential(nn.Linear(hidden, int(config.value_hidden)), nn.GELU(),
                                        nn.Linear(int(config.value_hidden), 1))
        if config.trainable_layers is not None:
            n_layers = int(encoder.config.num_hidden_layers)
            if config.trainable_layers > n_layers:
                raise ValueError(f"trainable_layers={config.trainable_layers} but the encoder has {n_layers} layers")
            for _, p in parameters_below(encoder, n_layers - int(config.trainable_layers)):
                p.requires_grad_(False)

    obs_keys = OBS_KEYS["text"]

    @property
    def hidden_size(self) -> int:
        return int(self.encoder.config.hidden_size)

    # ------------------------------------------------------------------ pieces
    def _cut(self, stats: Sequence[int], cap: Optional[int]) -> _Cut:
        """The cut of a :func:`_cut_stats` already on the host; refuses ids outside the vocabulary
        and sequences longer than the encoder's positions."""
        last, lead, top, bottom = (int(v) for v in stats)
        if top >= self.vocab_size or bottom < 0:
            raise ValueError(
                f"token ids in [{bottom}, {top}] outside the encoder's vocabulary of {self.vocab_size}: the env's "
                "tokenizer does not match the policy's encoder (use the same name in both configs)")
        length = max(last, 1)
        if cap is not None:
            length = min(length, cap)
        if length > self.max_positions:
            raise ValueError(
                f"sequences of {length} tokens exceed the encoder's {self.max_positions} "
                "positions: lower the env's max_state_tokens/max_action_tokens or set "
                "ChoiceModelConfig.max_state_tokens/max_action_tokens")
        return _Cut(length, padded=max(lead, 1) < length)

    def _encode(self, ids: torch.Tensor, cut: _Cut) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        ids = ids[:, :cut.length]
        attend = _attention_mask(ids, cut)
        hidden = self.encoder(input_ids=ids, attention_mask=self._bert_mask(attend)).last_hidden_state
        return hidden, attend

    def _bert_mask(self, attend: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """The attention mask as BERT takes it. With SDPA attention: the (B, 1, 1, L) boolean mask
        that transformers would build from the 2-D one after testing ``mask.all()`` on the host
        (a ready 4-D mask is used as given); other attention implementations get the 2-D mask."""
        if attend is None:
            return None
        if getattr(self.encoder.config, "_attn_implementation", None) == "sdpa":
            return attend[:, None, None, :]
        return attend.long()

    def encode_state(self, state_ids: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
        """(token states (B, L, H), attention mask (B, L) or None if no kept position is
        padding, pooled (B, H)) of the states."""
        state_ids = _nonempty(state_ids.long())
        return self._encode_state(state_ids, self._cut(_cut_stats(state_ids).tolist(), self.config.max_state_tokens))

    def _encode_state(self, state_ids: torch.Tensor, cut: _Cut):
        hidden, attend = self._encode(state_ids, cut)
        return hidden, attend, _pool(hidden, attend, self.config.pooling)

    def value(self, state_embedding: torch.Tensor) -> torch.Tensor:
        """V(s) (B,) float32 from the pooled state vector."""
        return self.value_head(state_embedding).squeeze(-1).float()

    def _encode_candidates(self, flat_ids: torch.Tensor, valid_rows: torch.Tensor, cut: _Cut):
        """Token states, attention mask (or None) and pooled vectors of the valid rows only."""
        if self.config.encode_valid_only:
            hidden, attend = self._encode(flat_ids.index_select(0, valid_rows), cut)
        else:
            hidden, attend = self._encode(flat_ids, cut)
            hidden = hidden.index_select(0, valid_rows)
            attend = None if attend is None else attend.index_select(0, valid_rows)
        return hidden, attend, _pool(hidden, attend, self.config.pooling)

    # ------------------------------------------------------------------ forward
    def forward(self, state_ids: torch.Tensor, action_ids: torch.Tensor, action_mask: torch.Tensor, *,
                with_value: bool = True) -> ChoiceOutput:
        """Logits of every candidate row; ``with_value=False`` skips the value head (``value`` is
        then None: RLlib's forward passes never use it, PPO's value comes from ``compute_values``)."""
        if state_ids.dim() != 2 or action_ids.dim() != 3 or action_mask.dim() != 2:
            raise ValueError(
                "expected state_ids (B, L_s), action_ids (B, K, L_a), action_mask (B, K); got "
                f"{tuple(state_ids.shape)}, {tuple(action_ids.shape)}, {tuple(action_mask.shape)}")
        batch, k, action_len = action_ids.shape
        if action_mask.shape != (batch, k) or state_ids.shape[0] != batch:
            raise ValueError(
                f"batch/candidate dims disagree: state_ids {tuple(state_ids.shape)}, "
                f"action_ids {tuple(action_ids.shape)}, action_mask {tuple(action_mask.shape)}")
        if k == 0 or action_len == 0:
            raise ValueError(f"action_ids {tuple(action_ids.shape)} has no candidate rows or no tokens per row")
        state_ids = _nonempty(state_ids.long())
        mask = action_mask != 0
        flat_mask = mask.reshape(-1)
        flat_ids = action_ids.long().reshape(batch * k, action_len)
        counts = mask.sum(dim=1)
        # The pass's one read to the host: both cuts, the valid-candidate count, the most per state.
        stats = torch.cat([_cut_stats(state_ids),
                           _cut_stats(flat_ids, flat_mask if self.config.encode_valid_only else None),
                           torch.stack([counts.sum(), counts.max()])]).tolist()
        n_valid, k_packed = stats[8], stats[9]
        state_cut = self._cut(stats[0:4], self.config.max_state_tokens)
        action_cut = self._cut(stats[4:8], self.config.max_action_tokens) if n_valid > 0 else None
        state_hidden, state_attend, state_pooled = self._encode_state(state_ids, state_cut)
        value = self.value(state_pooled) if with_value else None

        logits = torch.full((batch * k,), MASKED_LOGIT, dtype=torch.float32, device=action_ids.device)
        if action_cut is not None:
            # The valid rows in row-major order (grouped by state); a stable sort, where nonzero
            # would read the count back.
            valid_rows = torch.sort(flat_mask.to(torch.uint8), descending=True, stable=True).indices[:n_valid]
            row_logits = self._score_valid(state_hidden, state_attend, flat_ids, mask, valid_rows, k_packed,
                                           action_cut)
            logits = logits.index_copy(0, valid_rows, row_logits)
        return ChoiceOutput(logits.view(batch, k), value, state_pooled)

    def _score_valid(self, state_hidden, state_attend, flat_ids, mask, valid_rows, k_packed: int,
                     cut: _Cut) -> torch.Tensor:
        batch, k = mask.shape
        tokens, token_attend, pooled = self._encode_candidates(flat_ids, valid_rows, cut)
        n, length, hidden = tokens.shape

        # Pack each state's valid candidates to the left: (B, K', L) with K' = most valid
        # candidates of any state, so the cross-attention runs once per state.
        rank = mask.long().cumsum(dim=1).reshape(-1).index_select(0, valid_rows) - 1
        packed_rows = torch.div(valid_rows, k, rounding_mode="floor") * k_packed + rank
        queries = tokens.new_zeros(batch * k_packed, length, hidden).index_copy(0, packed_rows, tokens)
        attended = self.cross_attention(queries.view(batch, k_packed * length, hidden), state_hidden, state_attend)
        attended = attended.view(batch * k_packed, length, hidden).index_select(0, packed_rows)

        features = torch.cat([tokens, attended, tokens * attended, pooled.unsqueeze(1) * attended], dim=-1)
        summary = _pool(self.token_features(features), token_attend, "mean")
        return self.score(summary).squeeze(-1).float()

    # ------------------------------------------------------------------ observation dicts
    def forward_obs(self, obs: Mapping[str, torch.Tensor], *, with_value: bool = True) -> ChoiceOutput:
        """``forward`` on an observation dict (the call both choice models answer)."""
        missing = [key for key in self.obs_keys if key not in obs]
        if missing:
            raise ValueError(f"the text-layout model needs observation keys {self.obs_keys}, missing {missing}: "
                             "build the env / data with observation_layout='text'")
        return self(obs["state_ids"], obs["action_ids"], obs["action_mask"], with_value=with_value)

    def log_probs_obs(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.log_probs(obs["state_ids"], obs["action_ids"], obs["action_mask"])

    def value_obs(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """V(s) from the states alone (encodes no candidates)."""
        return self.value(self.encode_state(obs["state_ids"])[2])

    # ------------------------------------------------------------------ conveniences
    def log_probs(self, state_ids: torch.Tensor, action_ids: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
        """log pi(a|s) (B, K): log-softmax over the valid candidates."""
        return masked_log_softmax(self(state_ids, action_ids, action_mask, with_value=False).logits, action_mask)
