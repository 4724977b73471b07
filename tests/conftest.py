"""Fixtures shared by several test modules, and the one place that finds the shared data.

The tests on real scans, meshes and tabular sets read the project's shared data: the folder named by the environment
variable PCFLOW_DATA, else shared/data beside the repository (where CI puts it). A test whose data is missing fails,
naming the path. To run without the data, opt out: `pytest --no-shared-data` or `PCFLOW_SKIP_SHARED_DATA=1 pytest`
(those tests then skip).
"""

import os
from pathlib import Path

import numpy as np
import pytest

#: The shared data folder: $PCFLOW_DATA, else shared/data beside the repository.
SHARED_DATA = Path(os.environ.get("PCFLOW_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def pytest_addoption(parser):
    parser.addoption("--no-shared-data", action="store_true",
                     help="skip, instead of failing, the tests whose shared data (PCFLOW_DATA, else ../shared/data) "
                          "is missing; the same as PCFLOW_SKIP_SHARED_DATA=1")


@pytest.fixture(scope="session")
def shared_data(request):
    """`shared_data("scans", "simple.las")`: the path of that file or folder of the shared data.

    Fails the test when it is missing, unless the run opted out (--no-shared-data or PCFLOW_SKIP_SHARED_DATA=1): then
    the test skips.
    """
    opted_out = request.config.getoption("--no-shared-data") or os.environ.get("PCFLOW_SKIP_SHARED_DATA") == "1"

    def find(*parts: str) -> Path:
        path = SHARED_DATA.joinpath(*parts)
        if not path.exists():
            if opted_out:
                pytest.skip(f"{path} not available (shared data opted out)")
            pytest.fail(f"shared data missing: {path}; set PCFLOW_DATA to the shared data folder, or opt out with "
                        "--no-shared-data or PCFLOW_SKIP_SHARED_DATA=1", pytrace=False)
        return path

    return find


@pytest.fixture(scope="session")
def table_and_wall():
    """An open scene: a table top (2000 points) and, across a gap above it, a wall (1000 points)."""
    rng = np.random.default_rng(0)
    table = np.c_[rng.uniform(-1, 1, 2000), rng.uniform(-1, 0, 2000), np.zeros(2000)]
    wall = np.c_[rng.uniform(-1, 1, 1000), np.full(1000, 1.5), rng.uniform(1, 2, 1000)]
    return np.vstack([table, wall]) + rng.normal(scale=0.01, size=(3000, 3))
