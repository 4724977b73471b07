"""pcflow: clean point clouds and watertight meshes from one-class normalizing flows (OneFlow)."""

from .detector import PAPER_2D, PAPER_TABULAR, OneFlow
from .errors import NotFittedError, PcflowError

__version__ = "0.1.0"

__all__ = ["OneFlow", "PAPER_2D", "PAPER_TABULAR", "PcflowError", "NotFittedError", "__version__"]
