"""The data and fast settings the model tests share."""

import numpy as np

from pcflow import PAPER_2D, LLFlow, OneFlow

ESTIMATORS = {"volume": OneFlow, "likelihood": LLFlow}
FAST = dict(PAPER_2D, epochs=40, random_state=0)


def two_blobs(n=2000, seed=0):
    """98% of the points in a wide blob, 2% in a tight far one (the paper's Two Blobs)."""
    rng = np.random.default_rng(seed)
    n_big = int(0.98 * n)
    big = rng.normal(size=(n_big, 2)) * 0.5
    small = rng.normal(size=(n - n_big, 2)) * 0.1 + 4.0
    return np.vstack([big, small]), n_big
