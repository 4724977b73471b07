"""Sample clouds and file bodies shared by the tests of pcflow.io."""

import numpy as np

from pcflow.io import PointCloud


def rich_cloud(n=50, seed=0):
    """A georeferenced cloud with colours (uchar), normals (float), intensity (uint16)."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, 3)) * 10 + [4.5e6, 5.6e6, 300.0]  # needs float64 to keep the decimals
    fields = np.empty(n, dtype=[("x", "f8"), ("y", "f8"), ("z", "f8"), ("red", "u1"), ("green", "u1"),
                                ("blue", "u1"), ("nx", "f4"), ("ny", "f4"), ("nz", "f4"), ("intensity", "u2")])
    for k, axis in enumerate("xyz"):
        fields[axis] = points[:, k]
    for name in ("red", "green", "blue"):
        fields[name] = rng.integers(0, 256, n)
    normals = rng.normal(size=(n, 3)).astype(np.float32)
    for k, name in enumerate(("nx", "ny", "nz")):
        fields[name] = normals[:, k]
    fields["intensity"] = rng.integers(0, 65536, n)
    return PointCloud(points, fields)


def assert_same_fields(a: np.ndarray, b: np.ndarray):
    assert a.dtype.names == b.dtype.names
    for name in a.dtype.names:
        assert a.dtype[name] == b.dtype[name], name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def lzf_literals(data: bytes) -> bytes:
    """A valid LZF stream of literal runs only (control byte = run length - 1, runs of at most 32 bytes)."""
    return b"".join(bytes([len(data[i:i + 32]) - 1]) + data[i:i + 32] for i in range(0, len(data), 32))


def ply_header(n, fmt="binary_little_endian", props=("x", "y", "z")):
    lines = ["ply", f"format {fmt} 1.0", f"element vertex {n}"] + [f"property float {p}" for p in props]
    return ("\n".join(lines + ["end_header"]) + "\n").encode()


def pcd_text(n_declared, rows, kind="ascii"):
    header = (f"VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH {n_declared}\nHEIGHT 1\n"
              f"POINTS {n_declared}\nDATA {kind}\n")
    return header.encode() + rows


def traced_peak(function, *args):
    """(what `function(*args)` returned or raised, its peak traced memory in bytes: Python objects, numpy buffers)."""
    import tracemalloc

    tracemalloc.start()
    try:
        outcome = function(*args)
    except Exception as error:  # the callers check which
        outcome = error
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, peak
