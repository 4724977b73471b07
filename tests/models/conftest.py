"""Fixtures of the model tests: the Two Blobs data and its fits, shared by the test modules of this folder."""

import pytest

from .samples import ESTIMATORS, FAST, two_blobs


class _Fits(dict):
    """fits[flow, objective]: the estimator of that objective and flow fitted on the blobs, on first use."""

    def __init__(self, X):
        super().__init__()
        self.X = X

    def __missing__(self, key):
        flow, objective = key
        self[key] = ESTIMATORS[objective](alpha=0.05, flow=flow, **FAST).fit(self.X)
        return self[key]


@pytest.fixture(scope="package")
def blobs():
    return two_blobs()


@pytest.fixture(scope="package")
def fitted(blobs):
    return _Fits(blobs[0])
