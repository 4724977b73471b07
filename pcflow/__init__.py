"""pcflow: clean point clouds and watertight meshes from one-class normalizing flows (OneFlow)."""

from importlib import import_module

from .errors import PcflowError

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
