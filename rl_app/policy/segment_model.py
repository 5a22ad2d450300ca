"""The late-interaction choice model over the ``segments`` observation, built to train cheaply.

Where :class:`~rl_app.policy.choice_model.ChoiceModel` runs BERT over the whole state and
every candidate in each update, this model reads the ``segments`` layout
(:mod:`rl_app.env.observation`): the instruction, the page's lines and the candidates as
separate short token rows. The pretrained encoder is frozen below a cut
(``trainable_layers`` from the top; 0 = all frozen), and the frozen part of each unique row
is computed once and remembered (:class:`~rl_app.policy.frozen_rows.FrozenRows`); what
trains is the top ``trainable_layers`` layers (if any) and a small head:

* **token-level matching** (late interaction, as ColBERT's MaxSim, Khattab & Zaharia 2020):
  each candidate token is projected and scored against its best-matching instruction token
  (cosine, per head), and each instruction token against its best candidate token; learned
  per-token weights average them. This is what picks ``click[coral sands] color`` for an
  instruction that names ``color: coral sands`` among ~30 options, which pooled vectors miss;
* **page context**: the instruction's pooled vector and the page's line vectors (plus a
  learned slot embedding) pass one transformer layer; each candidate attends over them and
  also scores its best-matching line (a result's own row with its price, a selected option);
* **exact-match signals** (``match_signals``, on by default; the exact-match features of
  neural rankers such as DRMM/KNRM): computed from the token ids alone, so only from what the
  instruction and the page show. For each candidate: the share of its word pieces that occur
  in the instruction and of the instruction's in it (plain and under the learned token
  weights); its *own line* -- the page line holding most of its word pieces (a result's row,
  an option's label) -- with that line's share of word pieces in the instruction, the
  instruction's coverage by it, and its context vector. A result's title and its price mark
  (``under budget`` / ``over budget``, written by the layout) reach the result's candidate
  through its own line;
* ``[candidate, context, candidate * context, state, match scores, signals]`` -> MLP ->
  logit, and the state vector -> MLP -> V(s) for PPO.

It answers the same calls as ``ChoiceModel`` (``forward_obs``, ``log_probs_obs``,
``value_obs``, ``config``, ``encoder``), so the RLModule, ``ChoicePolicy``, checkpoints and
the IL/DPO/PPO learners use either unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from rl_app.env.observation import OBS_KEYS
from rl_app.policy.choice_model import (
    MASKED_LOGIT,
    ChoiceOutput,
    config_as_dict,
    masked_log_softmax,
    model_encoder,
    with_encoder_config,
)
from rl_app.policy.encoder import EncoderConfig
from rl_app.policy.frozen_rows import FrozenRows

__all__ = ["SegmentModelConfig", "SegmentChoiceModel"]

# Cosine similarities are in [-1, 1]; this scale makes the max over tokens sharp enough to read.
_MATCH_SCALE = 10.0
# Exact-match scalars per candidate (see ``_signals``), besides its own line's vector.
_N_SIGNALS = 7


@dataclass(frozen=True)
class SegmentModelConfig:
    """Architecture of the late-interaction model.

    Attributes:
        encoder: which BERT (its weights below the cut stay as loaded).
        trainable_layers: top encoder layers that train; 0 (default) freezes the whole
            encoder, so every row's token states are computed once.
        head_dim: width of the head (projections, context layer, MLP).
        match_heads: heads of the token- and line-level matching (each head_dim/match_heads wide).
        match_signals: add the exact-match signals and the own-line features (checkpoints
            saved before they existed load with False).
        max_lines: line slots (the layout's ``lines``; the slot embedding covers them).
        value_hidden: width of the value head's hidden layer.
        instruction_tokens, line_tokens, max_action_tokens: the token lengths the policy was
            trained at (``ChoicePolicy`` tokenizes with them; None = the layout's defaults).
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    trainable_layers: int = 0
    head_dim: int = 128
    match_heads: int = 4
    match_signals: bool = True
    max_lines: int = 64
    value_hidden: int = 128
    instruction_tokens: Optional[int] = None
    line_tokens: Optional[int] = None
    max_action_tokens: Optional[int] = None
    kind: str = "segments"

    def __post_init__(self) -> None:
        if self.kind != "segments":
            raise ValueError(f"SegmentModelConfig.kind must be 'segments', got {self.kind!r}")
        if int(self.trainable_layers) < 0:
            raise ValueError(f"trainable_layers must be >= 0, got {self.trainable_layers}")
        if self.head_dim < 8 or self.head_dim % self.match_heads:
            raise ValueError(f"head_dim ({self.head_dim}) must be >= 8 and divisible by match_heads "
                             f"({self.match_heads})")
        if self.max_lines < 1 or self.value_hidden < 1:
            raise ValueError("max_lines and value_hidden must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return config_as_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SegmentModelConfig":
        d = with_encoder_config(d)
        d.setdefault("match_signals", False)  # saved before the signals existed
        return cls(**d)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(dim=dim) / w.sum(dim=dim).clamp_min(1.0)


def _content(ids: torch.Tensor) -> torch.Tensor:
    """The word-piece positions of 0-padded token rows ``(..., L)``: not padding, not the
    leading ``[CLS]`` nor the trailing ``[SEP]``."""
    present = ids != 0
    pos = torch.arange(ids.shape[-1], device=ids.device)
    return present & (pos >= 1) & (pos < present.sum(-1, keepdim=True) - 1)


def _share(hit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Share of the masked positions (last axis) that are hits."""
    return (hit & mask).sum(-1).float() / mask.sum(-1).clamp_min(1).float()


def _weighted(values: torch.Tensor, weight_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax(weight_logits) over the masked last-but-one axis, applied to values (..., T, heads)."""
    w = torch.softmax(weight_logits.masked_fill(~mask, -1e4), dim=-1)
    return (values * w.unsqueeze(-1)).sum(dim=-2)


class SegmentChoiceModel(nn.Module):
    """Frozen-encoder (below a cut) candidate scorer with a late-interaction head and a value head."""

    def __init__(self, config: SegmentModelConfig = SegmentModelConfig(), *, encoder: Optional[nn.Module] = None,
                 bert_config: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder = model_encoder(config.encoder, encoder, bert_config)
        n_layers = int(encoder.config.num_hidden_layers)
        if config.trainable_layers > n_layers:
            raise ValueError(f"trainable_layers={config.trainable_layers} but the encoder has {n_layers} layers")
        self.vocab_size = int(encoder.config.vocab_size)
        self.max_positions = int(encoder.config.max_position_embeddings)
        hidden = int(encoder.config.hidden_size)
        d = int(config.head_dim)
        self.frozen = FrozenRows(encoder, n_layers - int(config.trainable_layers))
        for _, p in self.frozen.frozen_parameters():
            p.requires_grad_(False)
        # A replaced frozen part (load_state_dict) invalidates the memo.
        self.register_load_state_dict_post_hook(lambda module, keys: module.frozen.weights_changed())

        self.instruction_proj = nn.Sequential(nn.Linear(hidden, d), nn.LayerNorm(d))
        self.candidate_proj = nn.Sequential(nn.Linear(hidden, d), nn.LayerNorm(d))
        self.line_proj = nn.Sequential(nn.Linear(hidden, d), nn.LayerNorm(d))
        self.slot = nn.Embedding(int(config.max_lines) + 1, d)  # slot 0: the instruction
        self.context = nn.TransformerEncoderLayer(d, nhead=config.match_heads, dim_feedforward=2 * d,
                                                  dropout=0.0, batch_first=True)
        self.candidate_weight = nn.Linear(d, 1)   # which candidate tokens matter for matching
        self.instruction_weight = nn.Linear(d, 1)  # which instruction tokens must be matched
        self.attend = nn.MultiheadAttention(d, config.match_heads, batch_first=True)
        n_match = 3 * int(config.match_heads)
        n_signals = d + _N_SIGNALS if config.match_signals else 0
        self.score = nn.Sequential(nn.Linear(4 * d + n_match + n_signals, 2 * d), nn.GELU(), nn.Linear(2 * d, d),
                                   nn.GELU(), nn.Linear(d, 1))
        self.value_head = nn.Sequential(nn.Linear(d, int(config.value_hidden)), nn.GELU(),
                                        nn.Linear(int(config.value_hidden), 1))

    obs_keys = OBS_KEYS["segments"]

    @property
    def hidden_size(self) -> int:
        return int(self.encoder.config.hidden_size)

    # ------------------------------------------------------------------ rows -> token states
    def _top_layers(self, hidden: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        if not self.config.trainable_layers:
            return hidden
        additive = torch.zeros(attend.shape, dtype=hidden.dtype, device=hidden.device)
        additive = additive.masked_fill(~attend, torch.finfo(hidden.dtype).min)[:, None, None, :]
        for layer in self.encoder.encoder.layer[self.frozen.frozen_layers:]:
            out = layer(hidden, attention_mask=additive)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    def encode_rows(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(token states (R, L, H), attend (R, L)) of token rows (R, L_max); rows of all padding
        get one attended position (finite numbers)."""
        top = int(ids.max()) if ids.numel() else 0
        if top >= self.vocab_size or (ids.numel() and int(ids.min()) < 0):
            raise ValueError(f"token ids up to {top} outside the encoder's vocabulary of {self.vocab_size}: the "
                             "env's tokenizer does not match the policy's encoder (use the same name in both configs)")
        hidden, attend = self.frozen.lookup(ids)
        return self._top_layers(hidden, attend), attend

    # ------------------------------------------------------------------ forward
    def forward_obs(self, obs: Mapping[str, torch.Tensor], *, with_value: bool = True) -> ChoiceOutput:
        missing = [k for k in OBS_KEYS["segments"] if k not in obs]
        if missing:
            raise ValueError(f"the segments model needs observation keys {OBS_KEYS['segments']}, missing {missing}: build "
                             "the env / data with observation_layout='segments'")
        instruction_ids, line_ids = obs["instruction_ids"], obs["line_ids"]
        action_ids, action_mask = obs["action_ids"], obs["action_mask"]
        if instruction_ids.dim() != 2 or line_ids.dim() != 3 or action_ids.dim() != 3 or action_mask.dim() != 2:
            raise ValueError(
                "expected instruction_ids (B, L_i), line_ids (B, N, L_l), action_ids (B, K, L_a), action_mask (B, K); "
                f"got {tuple(instruction_ids.shape)}, {tuple(line_ids.shape)}, {tuple(action_ids.shape)}, "
                f"{tuple(action_mask.shape)}")
        batch, k, _ = action_ids.shape
        if not (instruction_ids.shape[0] == line_ids.shape[0] == batch == action_mask.shape[0]) \
                or action_mask.shape[1] != k:
            raise ValueError("batch/candidate dims of the observation keys disagree")
        if batch == 0:
            raise ValueError("empty batch: nothing to encode")
        n_lines = line_ids.shape[1]
        if n_lines > self.config.max_lines:
            raise ValueError(f"{n_lines} lines per state exceed the model's max_lines={self.config.max_lines}")
        device = action_ids.device

        # Instruction tokens.
        instr_h, instr_m = self.encode_rows(instruction_ids.long())
        instr = self.instruction_proj(instr_h)                                  # (B, Li, D)
        instr_pooled = _masked_mean(instr, instr_m, 1)                          # (B, D)

        # Page lines: pooled vectors of the rows that hold text.
        flat_lines = line_ids.long().reshape(batch * n_lines, -1)
        line_present = (flat_lines[:, 0] != 0)
        line_vec = torch.zeros(batch * n_lines, self.config.head_dim, device=device)
        rows = torch.nonzero(line_present).squeeze(-1)
        if rows.numel():
            lh, lm = self.encode_rows(flat_lines.index_select(0, rows))
            line_vec = line_vec.index_copy(0, rows, self.line_proj(_masked_mean(lh, lm, 1)))
        line_mask = line_present.view(batch, n_lines)
        slots = self.slot(torch.arange(n_lines + 1, device=device))
        seq = torch.cat([instr_pooled.unsqueeze(1), line_vec.view(batch, n_lines, -1)], dim=1) + slots
        seq_mask = torch.cat([torch.ones(batch, 1, dtype=torch.bool, device=device), line_mask], dim=1)
        context = self.context(seq, src_key_padding_mask=~seq_mask)             # (B, 1+N, D)
        state = context[:, 0]                                                    # (B, D)
        value = self.value_head(state).squeeze(-1).float() if with_value else None

        logits = torch.full((batch * k,), MASKED_LOGIT, dtype=torch.float32, device=device)
        mask = action_mask != 0
        valid = torch.nonzero(mask.reshape(-1)).squeeze(-1)
        if valid.numel():
            owner = torch.div(valid, k, rounding_mode="floor")                   # state of each candidate
            ch, cm = self.encode_rows(action_ids.long().reshape(batch * k, -1).index_select(0, valid))
            cand = self.candidate_proj(ch)                                       # (n, La, D)
            cand_pooled = _masked_mean(cand, cm, 1)                              # (n, D)
            heads = self.config.match_heads

            def split(x):  # (..., D) -> (..., heads, D/heads), unit length per head
                return F.normalize(x.view(*x.shape[:-1], heads, -1), dim=-1)

            # index_select, not x[owner]: its backward is an index_add, far cheaper on CPU than
            # advanced indexing's accumulating index_put.
            def per_candidate(x):
                return x.index_select(0, owner)

            instr_m_c = per_candidate(instr_m)
            ci, ii = split(cand), per_candidate(split(instr))                    # (n, La, h, d), (n, Li, h, d)
            sim = torch.einsum("nahd,nihd->nhai", ci, ii)                        # (n, h, La, Li)
            pair = cm[:, None, :, None] & instr_m_c[:, None, None, :]
            sim = sim.masked_fill(~pair, -2.0)
            cand_to_instr = sim.max(dim=-1).values.transpose(1, 2)               # (n, La, h)
            instr_to_cand = sim.max(dim=-2).values.transpose(1, 2)               # (n, Li, h)
            cand_w = self.candidate_weight(cand).squeeze(-1)                    # (n, La) token weight logits
            instr_w = self.instruction_weight(instr).squeeze(-1)                 # (B, Li)
            m_c = _weighted(cand_to_instr, cand_w, cm)
            m_i = _weighted(instr_to_cand, per_candidate(instr_w), instr_m_c)
            context_c = per_candidate(context)                                   # (n, 1+N, D)
            lsim = torch.einsum("nhd,nlhd->nhl", split(cand_pooled), split(context_c[:, 1:]))
            lsim = lsim.masked_fill(~per_candidate(line_mask)[:, None, :], -2.0)
            m_l = lsim.max(dim=-1).values                                        # (n, h)
            ctx, _ = self.attend(cand_pooled.unsqueeze(1), context_c, context_c,
                                 key_padding_mask=~per_candidate(seq_mask), need_weights=False)
            ctx = ctx.squeeze(1)
            parts = [cand_pooled, ctx, cand_pooled * ctx, per_candidate(state),
                     _MATCH_SCALE * m_c, _MATCH_SCALE * m_i, _MATCH_SCALE * m_l]
            if self.config.match_signals:
                cand_ids = action_ids.long().reshape(batch * k, -1).index_select(0, valid)
                parts += self._signals(cand_ids, cand_w, instruction_ids.long(), instr_w, line_ids.long(),
                                       context[:, 1:], owner)
            features = torch.cat(parts, dim=-1)
            logits = logits.index_copy(0, valid, self.score(features).squeeze(-1).float())
        return ChoiceOutput(logits.view(batch, k), value, state)

    def _signals(self, cand_ids: torch.Tensor, cand_w: torch.Tensor, instr_ids: torch.Tensor, instr_w: torch.Tensor,
                 line_ids: torch.Tensor, line_ctx: torch.Tensor, owner: torch.Tensor) -> list[torch.Tensor]:
        """Exact-match features of the valid candidates (n): ``cand_ids`` (n, La) with the
        matching's token weight logits ``cand_w`` (n, La') (La' <= La: trimmed to the batch's
        longest row), the states' ``instr_ids`` (B, Li) and ``instr_w`` (B, Li'), ``line_ids``
        (B, N, Ll), the lines' context vectors ``line_ctx`` (B, N, D), ``owner`` (n,) the
        state of each candidate. Returns [(n, _N_SIGNALS), (n, D)]."""
        cand_ids, instr_ids = cand_ids[:, : cand_w.shape[1]], instr_ids[:, : instr_w.shape[1]]
        cc, ic = _content(cand_ids), _content(instr_ids)
        # Candidate <-> instruction.
        ii, icc = instr_ids.index_select(0, owner), ic.index_select(0, owner)
        eq = (cand_ids[:, :, None] == ii[:, None, :]) & cc[:, :, None] & icc[:, None, :]
        c_in_i, i_in_c = eq.any(-1), eq.any(-2)                                  # (n, La'), (n, Li')
        weighted_c = _weighted(c_in_i.float().unsqueeze(-1), cand_w, cc).squeeze(-1)
        weighted_i = _weighted(i_in_c.float().unsqueeze(-1), instr_w.index_select(0, owner), icc).squeeze(-1)
        # Lines <-> instruction, per state (B, N).
        lc = _content(line_ids)
        eq_l = (line_ids[:, :, :, None] == instr_ids[:, None, None, :]) & lc[..., None] & ic[:, None, None, :]
        line_in_instr = _share(eq_l.any(-1), lc)                                 # (B, N)
        instr_w_l = instr_w[:, None, :].expand(-1, line_ids.shape[1], -1)
        instr_by_line = _weighted(eq_l.any(-2).float().unsqueeze(-1), instr_w_l,
                                  ic[:, None, :].expand_as(instr_w_l)).squeeze(-1)  # (B, N)
        # Each candidate's own line: the one holding the largest share of its word pieces.
        lines_c = line_ids.index_select(0, owner)                                # (n, N, Ll)
        held = (cand_ids[:, None, :, None] == lines_c[:, :, None, :]) & lc.index_select(0, owner)[:, :, None, :]
        held = _share(held.any(-1), cc[:, None, :].expand(-1, lines_c.shape[1], -1))  # (n, N)
        share, own = held.max(dim=-1)                                            # (n,)
        has_own = (share > 0).float()
        flat = owner * line_ids.shape[1] + own
        own_line = line_ctx.reshape(-1, line_ctx.shape[-1]).index_select(0, flat) * has_own[:, None]
        scalars = torch.stack([
            _share(c_in_i, cc), _share(i_in_c, icc), weighted_c, weighted_i, share,
            line_in_instr.reshape(-1).index_select(0, flat) * has_own,
            instr_by_line.reshape(-1).index_select(0, flat) * has_own,
        ], dim=-1)
        return [_MATCH_SCALE * scalars, own_line]

    def forward(self, obs: Mapping[str, torch.Tensor], *, with_value: bool = True) -> ChoiceOutput:
        return self.forward_obs(obs, with_value=with_value)

    def log_probs_obs(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """log pi(a|s) (B, K) over the valid candidates."""
        return masked_log_softmax(self.forward_obs(obs, with_value=False).logits, obs["action_mask"])

    def value_obs(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.forward_obs(obs, with_value=True).value

    def value(self, state_embedding: torch.Tensor) -> torch.Tensor:
        return self.value_head(state_embedding).squeeze(-1).float()

    def trainable_parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
