"""Tests for a scene's reconstruct (pcflow.pipeline.scene through `pcflow reconstruct`): files, labels, meshes."""

import json

import numpy as np
import pytest
import trimesh

from pcflow.cli.main import main
from pcflow.io import PointCloud, read_cloud, write_cloud
from pcflow.pipeline.batch import BATCH_REPORT
from pcflow.scene import NONFINITE, OUTLIER, PLANE, is_object

from .scenes import table_scene

FIT = ["--epochs", "4", "--surface-steps", "20", "--couplings", "2", "--hidden", "16", "-q", "--no-preview"]


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory):
    points, truth, meshes = table_scene(2, n_points=5000, seed=11)
    points = np.vstack([points, [[np.nan, 0.0, 0.0]]])  # a row the reader drops: labelled NONFINITE
    path = tmp_path_factory.mktemp("in") / "table.ply"
    write_cloud(path, PointCloud(points))
    return path, np.append(truth, NONFINITE), meshes


@pytest.fixture(scope="module")
def scene_run(scene_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "scene"
    assert main(["reconstruct", str(scene_file[0]), "-o", str(out), *FIT]) == 0
    return out, json.loads((out / "report.json").read_text())


def test_two_objects_on_a_table_give_two_closed_meshes_and_one_plane(scene_file, scene_run):
    _, truth, meshes = scene_file
    out, report = scene_run
    assert report["mode"] == "scene" and report["n_objects"] == 2 and report["n_planes"] == 1
    centres = [mesh.bounds.mean(axis=0) for mesh in meshes]
    matched = set()
    for entry in report["objects"]:
        mesh = trimesh.load(out / entry["mesh_file"], process=False)
        checks = entry["mesh"]
        assert mesh.is_watertight and checks["watertight"] and checks["n_components"] == 1
        assert checks["euler"] == 2 and checks["self_intersections"] == 0
        assert entry["surface_gap"] is not None and 0 <= entry["surface_gap"] <= 1
        low, high = np.array(entry["bounds"])
        # in the scan's own coordinates, around one truth sphere (radius 0.12)
        nearest = int(np.argmin([np.linalg.norm((low + high) / 2 - centre) for centre in centres]))
        assert np.linalg.norm(mesh.bounds.mean(axis=0) - centres[nearest]) < 0.03
        matched.add(nearest)
        assert entry["n_points"] == len(read_cloud(out / "objects" / f"object_{entry['index']:02d}" / "cloud.ply"))
    assert matched == {0, 1}
    assert set(report["files"]) == {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    scene_mesh = trimesh.load(out / "scene_mesh.ply", process=False)
    assert len(scene_mesh.faces) == sum(entry["mesh"]["n_faces"] for entry in report["objects"])


def test_the_labels_file_has_one_label_per_input_point(scene_file, scene_run):
    _, truth, _ = scene_file
    out, report = scene_run
    labels = np.load(out / "labels.npy")
    assert labels.dtype == np.int32 and len(labels) == len(truth) == report["n_points"]
    assert labels[-1] == NONFINITE and np.count_nonzero(labels == NONFINITE) == 1
    assert np.mean((labels >= PLANE) == (truth >= PLANE)) > 0.95
    assert np.count_nonzero(labels == OUTLIER) == report["n_outliers"]
    inliers = read_cloud(out / "inliers.ply")
    kept = labels[(labels != OUTLIER) & (labels != NONFINITE)]
    assert np.array_equal(inliers.fields["label"], kept)  # the vertex property, in input order
    for entry in report["objects"]:
        assert np.count_nonzero(labels == entry["index"]) == entry["n_points"]
        assert np.all(is_object(truth[labels == entry["index"]]) | (truth[labels == entry["index"]] == OUTLIER))


def test_a_lone_object_comes_out_as_with_no_scene(tmp_path):
    rng = np.random.default_rng(2)
    direction = rng.normal(size=(900, 3))
    points = direction / np.linalg.norm(direction, axis=1, keepdims=True) * [1.0, 0.6, 0.4]
    path = tmp_path / "ellipsoid.ply"
    write_cloud(path, PointCloud(points + rng.normal(0, 0.01, points.shape)))
    assert main(["reconstruct", str(path), "-o", str(tmp_path / "auto"), *FIT]) == 0
    assert main(["reconstruct", str(path), "-o", str(tmp_path / "one"), *FIT, "--no-scene"]) == 0
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert sorted(p.name for p in (tmp_path / "auto").iterdir()) == names and "labels.npy" not in names
    for name in names:
        if name != "report.json":
            assert (tmp_path / "auto" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    report = json.loads((tmp_path / "auto" / "report.json").read_text())
    assert report["mode"] != "scene" and "objects" not in report


def test_trim_leaves_open_meshes_of_what_was_seen(scene_file, tmp_path):
    out = tmp_path / "trimmed"
    assert main(["reconstruct", str(scene_file[0]), "-o", str(out), *FIT, "--trim", "--plane-meshes"]) == 0
    report = json.loads((out / "report.json").read_text())
    for entry in report["objects"]:
        closed = trimesh.load(out / entry["mesh_closed_file"], process=False)
        trimmed = trimesh.load(out / entry["mesh_file"], process=False)
        assert closed.is_watertight and not trimmed.is_watertight
        assert entry["trimmed"]["boundary_loops"] >= 1 and 0 < entry["trimmed"]["area_share"] < 1
        # the sphere's foot on the table was not seen: cut away
        assert trimmed.area < closed.area
        edges = np.sort(trimmed.edges, axis=1)
        assert np.unique(edges, axis=0, return_counts=True)[1].max() <= 2  # manifold edges
    plane = trimesh.load(out / "planes" / "plane_00" / "mesh.ply", process=False)
    assert plane.area == pytest.approx(1.0, rel=0.05)


def test_a_batch_takes_the_scene_options(scene_file, tmp_path):
    out = tmp_path / "batch"
    assert main(["reconstruct", str(scene_file[0]), str(scene_file[0]), "-o", str(out), *FIT, "--trim"]) == 0
    report = json.loads((out / BATCH_REPORT).read_text())
    assert report["n_ok"] == 1 and report["files"][0]["mode"] == "scene"
    one = json.loads((out / "table" / "report.json").read_text())
    assert all("trimmed" in entry for entry in one["objects"])


def test_overwrite_replaces_an_earlier_scenes_folders(scene_file, tmp_path):
    out = tmp_path / "again"
    assert main(["reconstruct", str(scene_file[0]), "-o", str(out), *FIT]) == 0
    (out / "objects" / "object_07").mkdir()  # as a scene with more objects would have left
    assert main(["reconstruct", str(scene_file[0]), "-o", str(out), *FIT]) == 1  # outputs there: refused
    assert main(["reconstruct", str(scene_file[0]), "-o", str(out), *FIT, "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "objects").iterdir()) == ["object_00", "object_01"]
    # one object over the scene, then the scene again: each time only that run's outputs are left
    for extra in (["--no-scene"], []):
        assert main(["reconstruct", str(scene_file[0]), "-o", str(out), *FIT, "--overwrite", *extra]) == 0
        report = json.loads((out / "report.json").read_text())
        assert set(report["files"]) == {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
        assert (out / "labels.npy").exists() == (not extra) == (out / "objects").exists()
        assert (out / "mesh.ply").exists() == bool(extra)


@pytest.mark.parametrize("extra, words", [
    (["--scene", "--classify"], "--classify and --scores are for one object"),
    (["--scene", "--no-scene"], "not allowed with argument"),
    (["--jobs", "-1"], "--jobs must be 0 or more"),
])
def test_bad_scene_settings_are_one_line_errors(scene_file, tmp_path, capsys, extra, words):
    try:
        code = main(["reconstruct", str(scene_file[0]), "-o", str(tmp_path / "bad"), *FIT, *extra])
    except SystemExit as done:  # argparse's own errors
        code = done.code
    last = capsys.readouterr().err.strip().splitlines()[-1]  # argparse prints its usage above
    assert code != 0 and words in last and last.startswith("pcflow")
    assert not (tmp_path / "bad").exists()


def test_scene_of_planes_only_is_refused_with_scene(tmp_path, capsys):
    rng = np.random.default_rng(3)
    points = np.column_stack([rng.uniform(-1, 1, (3000, 2)), rng.normal(0, 0.002, 3000)])
    path = tmp_path / "floor.ply"
    write_cloud(path, PointCloud(points))
    assert main(["reconstruct", str(path), "-o", str(tmp_path / "out"), *FIT, "--scene"]) == 1
    assert "no object found in the scene" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
