"""The estimators, one per model over a shared base: OneFlow, the LL-Flow baseline and the 3D surface model."""

from .base import DTYPES, FLOWS, NORMALIZATIONS, FlowDetector, load
from .llflow import LLFlow
from .oneflow import PAPER_2D, PAPER_TABULAR, OneFlow
from .persist import FORMAT_VERSION
from .surface import NEIGHBOR_STATISTICS, SURFACE_CHECK_STEPS, SURFACE_WEIGHT, SurfaceFlow

__all__ = ["FlowDetector", "OneFlow", "LLFlow", "SurfaceFlow", "load", "PAPER_2D", "PAPER_TABULAR", "FLOWS",
           "NORMALIZATIONS", "DTYPES", "NEIGHBOR_STATISTICS", "SURFACE_CHECK_STEPS", "SURFACE_WEIGHT",
           "FORMAT_VERSION"]
