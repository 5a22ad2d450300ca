"""The frozen lower part of a BERT, computed once per unique token row and remembered.

In the cached-encoder training mode (``trainable_layers`` < the encoder's layers) the
embeddings and the lower encoder layers never change, so their output for a token row is a
pure function of the row. Page lines, option labels and candidate texts repeat heavily across
steps and episodes (1,000 demonstrator episodes on the real small catalogue: 217,870 page
lines, 4,241 unique), so :class:`FrozenRows` encodes each unique row once and keeps its token
states (float16, trimmed to the row's length) in memory; an epoch then costs only the
trainable head.

The memo is keyed by the row's token ids and belongs to one set of frozen weights, named by
:attr:`FrozenRows.fingerprint` (a hash of the architecture, the layer cut and the frozen
weights' bytes). Loading other weights into the model clears it, and a stored cache
(:mod:`rl_app.data.frozen_cache`) is only read into a memo whose fingerprint it carries.
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterable, Mapping, Optional

import numpy as np
import torch
from torch import nn

__all__ = ["FrozenRows", "row_key", "rows_of_keys", "parameters_below", "MAX_MEMO_ROWS"]

# Rows kept before the memo starts over (a long PPO run over a large catalogue): at most
# 250,000 x 24 tokens x 384 dims of float16 = 4.6 GB; rows average well under 24 tokens.
MAX_MEMO_ROWS = 250_000
# Rows encoded per forward pass of the frozen layers.
ENCODE_BATCH = 256


def row_key(row: np.ndarray) -> bytes:
    """The memo key of a 0-padded token row: its ids up to the last non-pad token, as int32 bytes."""
    nonzero = np.flatnonzero(row)
    n = int(nonzero[-1]) + 1 if nonzero.size else 1
    return np.ascontiguousarray(row[:n], dtype=np.int32).tobytes()


def rows_of_keys(keys) -> np.ndarray:
    """The 0-padded (len(keys), longest) int64 id matrix of :func:`row_key` keys."""
    ids = np.zeros((len(keys), max(len(k) // 4 for k in keys)), dtype=np.int64)
    for i, k in enumerate(keys):
        row = np.frombuffer(k, dtype=np.int32)
        ids[i, : row.size] = row
    return ids


def parameters_below(encoder: nn.Module, cut: int) -> Iterable[tuple[str, torch.Tensor]]:
    """A ``transformers`` BERT's parameters below layer ``cut``: its embeddings and layers
    ``0 .. cut - 1`` (what a model with the top layers training keeps frozen)."""
    for name, p in encoder.named_parameters():
        if name.startswith("embeddings.") or (name.startswith("encoder.layer.") and int(name.split(".")[2]) < cut):
            yield name, p


class FrozenRows:
    """Token states of the frozen layers (embeddings + the first ``frozen_layers`` layers).

    Args:
        encoder: the ``transformers`` BERT whose lower part is frozen (its parameters are not
            modified here; the caller sets ``requires_grad``).
        frozen_layers: encoder layers below the cut (0 = the embeddings only).
    """

    def __init__(self, encoder: nn.Module, frozen_layers: int) -> None:
        n_layers = int(encoder.config.num_hidden_layers)
        if not 0 <= frozen_layers <= n_layers:
            raise ValueError(f"frozen_layers must be in [0, {n_layers}], got {frozen_layers}")
        self.encoder = encoder
        self.frozen_layers = int(frozen_layers)
        self.memo: dict[bytes, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0
        self._fingerprint: Optional[str] = None

    # ------------------------------------------------------------------ identity
    def frozen_parameters(self) -> Iterable[tuple[str, torch.Tensor]]:
        """The parameters below the cut: embeddings and layers ``0 .. frozen_layers - 1``."""
        return parameters_below(self.encoder, self.frozen_layers)

    @property
    def fingerprint(self) -> str:
        """A hash of the architecture, the cut and the frozen weights (recomputed after a reload)."""
        if self._fingerprint is None:
            from rl_app.policy.encoder import bert_architecture

            h = hashlib.sha256()
            h.update(json.dumps({"bert": bert_architecture(self.encoder), "frozen_layers": self.frozen_layers},
                                sort_keys=True).encode())
            for name, p in self.frozen_parameters():
                h.update(name.encode())
                h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
            self._fingerprint = h.hexdigest()[:24]
        return self._fingerprint

    def weights_changed(self) -> None:
        """Forget everything: the frozen weights were replaced (``load_state_dict``)."""
        self.memo.clear()
        self._fingerprint = None

    # ------------------------------------------------------------------ encoding
    @torch.no_grad()
    def encode_rows(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """Token states (n_i, H) float16 of each row of ``ids`` (R, L), computed now (no memo)."""
        device = next(self.encoder.parameters()).device
        was_training = self.encoder.training
        self.encoder.eval()
        out: list[torch.Tensor] = []
        try:
            for lo in range(0, ids.shape[0], ENCODE_BATCH):
                chunk = ids[lo:lo + ENCODE_BATCH].to(device=device, dtype=torch.long)
                attend = chunk != 0
                attend[:, 0] = True
                length = int(attend.long().sum(dim=1).max())
                chunk, attend = chunk[:, :length], attend[:, :length]
                result = self.encoder(input_ids=chunk, attention_mask=attend.long(),
                                      output_hidden_states=self.frozen_layers < self.encoder.config.num_hidden_layers)
                hidden = (result.hidden_states[self.frozen_layers] if result.hidden_states is not None
                          else result.last_hidden_state)
                lengths = attend.long().sum(dim=1).tolist()
                out += [hidden[i, :n].to(torch.float16) for i, n in enumerate(lengths)]
        finally:
            if was_training:
                self.encoder.train()
        return out

    def lookup(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(token states (R, L', H) float32, attend (R, L') bool) of the rows of ``ids`` (R, L),
        from the memo where known; unknown rows are encoded (in one pass) and remembered."""
        rows = ids.detach().to("cpu").numpy()
        keys = [row_key(r) for r in rows]
        missing = list(dict.fromkeys(k for k in keys if k not in self.memo))
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        if missing:
            if len(self.memo) + len(missing) > MAX_MEMO_ROWS:
                self.memo.clear()
            for k, states in zip(missing, self.encode_rows(torch.from_numpy(rows_of_keys(missing)))):
                self.memo[k] = states
        states = [self.memo[k] for k in keys]
        hidden = nn.utils.rnn.pad_sequence(states, batch_first=True).float()
        lengths = torch.tensor([s.shape[0] for s in states])
        attend = torch.arange(hidden.shape[1])[None, :] < lengths[:, None]
        device = next(self.encoder.parameters()).device
        return hidden.to(device), attend.to(device)

    def update(self, rows: Mapping[bytes, torch.Tensor]) -> None:
        """Add precomputed rows (a stored cache of this fingerprint)."""
        device = next(self.encoder.parameters()).device
        for k, v in rows.items():
            self.memo[k] = v.to(device=device, dtype=torch.float16)

    def stats(self) -> dict[str, int]:
        return {"rows": len(self.memo), "hits": self.hits, "misses": self.misses}
