"""pcflow: clean point clouds and watertight meshes from one-class normalizing flows (OneFlow)."""

import os
from importlib import import_module

from .errors import PcflowError

# MKL's strict reproducible mode: its matrix products (torch's on Intel CPUs) give the same bits at any thread count,
# so a fit is the same at --threads 1 and 2 (without it, AVX-512 CPUs split sums by thread). Read at MKL's first
# call: it holds where pcflow is imported before torch computes anything. No cost measured on a reconstruct.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"

__all__ = ["OneFlow", "LLFlow", "SurfaceFlow", "PAPER_2D", "PAPER_TABULAR", "PcflowError", "NotFittedError",
           "__version__"]

#: Public names imported on first use (torch or scikit-learn comes with them), so that `import pcflow` and
#: `pcflow --help` stay fast.
_LAZY = {name: ".models" for name in ("OneFlow", "LLFlow", "SurfaceFlow", "PAPER_2D", "PAPER_TABULAR")}
_LAZY["NotFittedError"] = ".errors"


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
