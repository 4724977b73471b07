"""Fixtures shared by several test modules."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def table_and_wall():
    """An open scene: a table top (2000 points) and, across a gap above it, a wall (1000 points)."""
    rng = np.random.default_rng(0)
    table = np.c_[rng.uniform(-1, 1, 2000), rng.uniform(-1, 0, 2000), np.zeros(2000)]
    wall = np.c_[rng.uniform(-1, 1, 1000), np.full(1000, 1.5), rng.uniform(1, 2, 1000)]
    return np.vstack([table, wall]) + rng.normal(scale=0.01, size=(3000, 3))
