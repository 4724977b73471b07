"""Batches on a Dask distributed cluster: the same outputs, resume and failure handling as the local pool."""

import json
from pathlib import Path

import pytest

from pcflow.cli import main
from pcflow.io import write_cloud
from pcflow.pipeline import FitOptions, MeshOptions
from pcflow.pipeline.batch import BATCH_REPORT, run_batch

from test_batch import ellipsoid

distributed = pytest.importorskip("distributed")

#: Hidden width 32, not 16: affine couplings of width 16 get last-bit different gradients at 1 and 2 threads from
#: MKL on some CPUs (docs/benchmarks/determinism.md), and the cluster's workers run at another thread count.
TINY = FitOptions(epochs=3, surface_steps=10, n_couplings=2, hidden_features=32, seed=0)
MESH = MeshOptions(subdivisions=1, max_faces=2_000)
#: what may differ between two runs of one file: where it ran and how long it took
VARIES = ("timings", "input")


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scans")
    write_cloud(folder / "a.ply", ellipsoid(seed=1))
    write_cloud(folder / "b.ply", ellipsoid(400, seed=2))
    (folder / "c.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 5\nproperty float x\nend_header\n")
    return folder


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def test_a_cluster_batch_equals_the_local_one(scans, cluster, tmp_path):
    local = run_batch([scans], tmp_path / "local", TINY, MESH, preview=False)
    remote = run_batch([scans], tmp_path / "remote", TINY, MESH, preview=False, scheduler=cluster.scheduler_address)
    assert remote["scheduler"] == cluster.scheduler_address and remote["jobs"] is None
    for one, other in zip(local["files"], remote["files"]):
        assert {k: v for k, v in one.items() if k not in ("output", "seconds")} == {
            k: v for k, v in other.items() if k not in ("output", "seconds")}
    assert [e["ok"] for e in remote["files"]] == [True, True, False] and "c.ply" in remote["files"][2]["error"]
    for name in ("a", "b"):
        here, there = tmp_path / "local" / name, tmp_path / "remote" / name
        assert sorted(p.name for p in here.iterdir()) == sorted(p.name for p in there.iterdir())
        for file in ("inliers.ply", "outliers.ply", "mesh.ply", "mesh.obj"):
            assert (here / file).read_bytes() == (there / file).read_bytes(), file
        reports = [json.loads((folder / "report.json").read_text()) for folder in (here, there)]
        assert Path(reports[1]["input"]).is_absolute()  # the workers get absolute paths
        assert [{k: v for k, v in r.items() if k not in VARIES} for r in reports][0] == {
            k: v for k, v in reports[1].items() if k not in VARIES}


def test_a_cluster_batch_resumes(scans, cluster, tmp_path):
    out = tmp_path / "out"
    run_batch([scans], out, TINY, MESH, preview=False, scheduler=cluster.scheduler_address)
    (out / "a" / "report.json").unlink()
    again = run_batch([scans], out, TINY, MESH, preview=False, resume=True, scheduler=cluster.scheduler_address)
    assert again["skipped"] == [str(scans / "b.ply")]
    assert [e["ok"] for e in again["files"]] == [True, True, False] and (out / "a" / "report.json").is_file()
    assert json.loads((out / BATCH_REPORT).read_text())["n_skipped"] == 1


def test_a_bad_scheduler_address_is_one_line(scans, tmp_path, capsys, monkeypatch):
    from pcflow.pipeline import tasks

    monkeypatch.setattr(tasks, "SCHEDULER_TIMEOUT", 1)
    for address, reason in (("tcp://127.0.0.1:9", "Timed out"), ("nowhere", "missing port number")):
        assert main(["reconstruct", str(scans), "-o", str(tmp_path / "out"), "--scheduler", address, "-q"]) == 1
        error = capsys.readouterr().err
        assert error.startswith(f"pcflow: error: cannot connect to the Dask scheduler at {address}: ")
        assert reason in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()
    assert main(["reconstruct", str(scans / "a.ply"), "-o", str(tmp_path / "one"), "--scheduler", "tcp://x:1"]) == 1
    assert capsys.readouterr().err.startswith("pcflow: error: --scheduler runs batches")


def test_a_scenes_objects_fit_on_the_cluster_as_here(cluster, tmp_path, monkeypatch):
    from pcflow.io import PointCloud
    from pcflow.pipeline import reconstruct
    from scene.scenes import table_scene

    points, _, _ = table_scene(2, n_points=4000, seed=3)
    write_cloud(tmp_path / "table.ply", PointCloud(points))
    monkeypatch.chdir(tmp_path)  # relative output folders: the workers get absolute ones
    here = reconstruct("table.ply", "here", TINY, MESH, preview=False, scene=True, jobs=1)
    there = reconstruct("table.ply", "there", TINY, MESH, preview=False, scene=True,
                        scheduler=cluster.scheduler_address)
    assert here["n_objects"] == there["n_objects"] == 2
    assert here["files"] == there["files"]
    for name in here["files"]:
        if name != "report.json":
            assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "there" / name).read_bytes(), name
