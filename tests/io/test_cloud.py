"""Tests of pcflow.io.cloud: PointCloud subsets."""

import numpy as np


from iosamples import rich_cloud, assert_same_fields


def test_subset_keeps_fields_rows():
    cloud = rich_cloud(n=10)
    mask = np.arange(10) % 3 == 0
    part = cloud.subset(mask)
    np.testing.assert_array_equal(part.points, cloud.points[mask])
    assert_same_fields(part.fields, cloud.fields[mask])
    assert len(cloud.subset([1, 2]).points) == 2
