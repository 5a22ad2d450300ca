"""Trajectory data: the step-record schema, parquet I/O via Ray Data, demonstrations, human demos.

Submodules import lazily (Ray, transformers) so ``import rl_app.data`` stays cheap.
"""

from rl_app.data.schema import COLUMNS, TRAJECTORY_SCHEMA, StepRecord, TrajectoryValidationError

__all__ = ["StepRecord", "TRAJECTORY_SCHEMA", "COLUMNS", "TrajectoryValidationError"]
