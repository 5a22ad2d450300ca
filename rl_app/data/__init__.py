"""Trajectory data: the step-record schema, parquet I/O via Ray Data, demonstrations, human demos,
and how result files are written (:mod:`rl_app.data.files`).

Exports and submodules import lazily (pyarrow, Ray, transformers), so ``import rl_app.data``
stays cheap and :mod:`rl_app.data.files` can be imported from anywhere without cycles.
"""

from __future__ import annotations

from rl_app._lazy import lazy_getattr

_EXPORTS = {
    "StepRecord": "rl_app.data.schema",
    "TRAJECTORY_SCHEMA": "rl_app.data.schema",
    "COLUMNS": "rl_app.data.schema",
    "TrajectoryValidationError": "rl_app.data.schema",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
