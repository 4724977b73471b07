"""Keeps the old import path `pcflow.detector` for one version: the estimators now live in `pcflow.models`."""

from .flows import Flow
from .models import (
    LLFlow, NEIGHBOR_STATISTICS, OneFlow, PAPER_2D, PAPER_TABULAR, SURFACE_CHECK_STEPS, SURFACE_WEIGHT, SurfaceFlow,
)

__all__ = ["OneFlow", "LLFlow", "SurfaceFlow", "PAPER_2D", "PAPER_TABULAR", "SURFACE_CHECK_STEPS", "SURFACE_WEIGHT",
           "NEIGHBOR_STATISTICS", "Flow"]
