"""End-to-end tests of the `pcflow` command line and the reconstruct pipeline, including bad input."""

import gc
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from pcflow import OneFlow, PcflowError
from pcflow import cli
from pcflow.cli import build_parser, main
from pcflow.io import read_cloud
from pcflow.meshing import boundary_mesh, validity
from pcflow.pipeline import OPEN_SCENE_GAP

FIT = ["--epochs", "4", "--surface-steps", "10", "--couplings", "2", "--hidden", "16", "-q"]
FAST = [*FIT, "--no-preview"]


def write_ply(path, points, colors=None):
    dtype = [("x", "f8"), ("y", "f8"), ("z", "f8")]
    if colors is not None:
        dtype += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    records = np.empty(len(points), dtype=dtype)
    records["x"], records["y"], records["z"] = points.T
    if colors is not None:
        records["red"], records["green"], records["blue"] = colors.T
    PlyData([PlyElement.describe(records, "vertex")]).write(str(path))
    return path


def noisy_ellipsoid(n=1500, n_outliers=60, seed=0):
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    surface = direction * [1.0, 0.6, 0.4] + rng.normal(scale=0.01, size=(n, 3))
    outliers = rng.uniform(-2.0, 2.0, size=(n_outliers, 3))
    return np.vstack([surface, outliers])


@pytest.fixture(scope="module")
def cloud_file(tmp_path_factory):
    points = noisy_ellipsoid()
    colors = np.random.default_rng(1).integers(0, 256, size=(len(points), 3), dtype=np.uint8)
    return write_ply(tmp_path_factory.mktemp("in") / "cloud.ply", points, colors)


@pytest.fixture(scope="module")
def reconstructed(cloud_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "result"
    assert main(["reconstruct", str(cloud_file), "-o", str(out), "--format", "stl", "off", "glb", "--mode", "envelope",
                 "--uv", *FAST]) == 0
    return out


def test_reconstruct_writes_every_output(reconstructed, cloud_file):
    for name in ("inliers.ply", "outliers.ply", "mesh.ply", "mesh.obj", "mesh.stl", "mesh.off", "mesh.glb",
                 "mesh_uv.obj", "model.pt", "report.json"):
        assert (reconstructed / name).stat().st_size > 0, name
    assert not [p for p in reconstructed.iterdir() if p.name.startswith(".")]  # no temporary files left
    report = json.loads((reconstructed / "report.json").read_text())
    source = read_cloud(cloud_file)
    inliers, outliers = read_cloud(reconstructed / "inliers.ply"), read_cloud(reconstructed / "outliers.ply")
    assert report["n_points"] == len(source) == report["n_inliers"] + report["n_outliers"]
    assert len(inliers) == report["n_inliers"] and len(outliers) == report["n_outliers"]
    assert abs(report["n_outliers"] / len(source) - 0.05) < 0.01
    # every vertex property of the input is kept, row for row
    model = OneFlow.load(reconstructed / "model.pt")
    inside = model.predict(source.points) == 1
    np.testing.assert_array_equal(inliers.fields, source.fields[inside])
    np.testing.assert_array_equal(outliers.colors, source.colors[~inside])
    mesh = report["mesh"]
    assert mesh["watertight"] and mesh["n_components"] == 1 and mesh["euler"] == 2
    assert mesh["self_intersections"] == 0 and mesh["winding_consistent"] and mesh["positive_volume"]
    for key in ("read", "fit", "score", "mesh", "total"):
        assert report["timings"][key] >= 0
    assert report["seed"] == 0 and report["versions"]["pcflow"]
    assert math.isclose(report["radius"], model.radius_)
    assert report["genus_estimate"] == 0 and report["warnings"] == []  # an ellipsoid: no handle


def test_obj_uvs_do_not_stretch_across_the_chart_seam(reconstructed):
    assert not [line for line in (reconstructed / "mesh.obj").read_text().splitlines() if line.startswith("vt ")]
    lines = (reconstructed / "mesh_uv.obj").read_text().splitlines()
    n_v = sum(line.startswith("v ") for line in lines)
    vt = np.array([line.split()[1:] for line in lines if line.startswith("vt ")], dtype=float)
    corners = np.array([[c.split("/")[1] for c in line.split()[1:]] for line in lines if line.startswith("f ")],
                       dtype=int) - 1
    assert len(vt) >= n_v > 0 and corners.min() >= 0 and corners.max() == len(vt) - 1
    assert np.ptp(vt[corners][..., 0], axis=1).max() < 0.5


def test_mesh_volume_matches_closed_form(reconstructed):
    report = json.loads((reconstructed / "report.json").read_text())
    assert report["volume_stderr"] == 0.0
    assert abs(report["mesh_volume"] - report["volume"]) < 0.01 * report["volume"]


def test_identity_flow_gives_exact_sphere(reconstructed):
    model = OneFlow.load(reconstructed / "model.pt")
    with torch.no_grad():
        for parameter in model.flow_.parameters():
            parameter.zero_()  # zero last layers and scaling: the flow is exactly the identity
    boundary = boundary_mesh(model, subdivisions=4)
    radius = model.radius_ * model.scale_[0]
    distance = np.linalg.norm(boundary.mesh.vertices - model.center_, axis=1)
    np.testing.assert_allclose(distance, radius, rtol=1e-6)
    volume, stderr = model.region_volume()
    assert stderr == 0 and math.isclose(volume, 4 / 3 * math.pi * radius**3, rel_tol=1e-6)
    assert abs(boundary.mesh.volume - volume) < 0.01 * volume
    assert validity(boundary.mesh)["watertight"]


def test_general_flow_reports_monte_carlo_error(cloud_file, tmp_path):
    out = tmp_path / "general"  # the mesh unsnapped: the exact image of the sphere, whose volume the region's is
    assert main(["reconstruct", str(cloud_file), "-o", str(out), "--flow", "general", "--no-snap", *FAST]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "surface" and report["distance_threshold"] > 0  # the default mode
    assert 0 <= report["surface_gap"] <= OPEN_SCENE_GAP  # the gap auto mode measured on the surface it kept
    assert abs(report["n_outliers"] / report["n_points"] - 0.05) < 0.01
    assert report["volume_stderr"] > 0
    assert abs(report["mesh_volume"] - report["volume"]) < 0.05 * report["volume"] + 4 * report["volume_stderr"]


@pytest.fixture
def torus_file(tmp_path):
    import trimesh

    torus = trimesh.creation.torus(major_radius=1.0, minor_radius=0.35)
    rng = np.random.default_rng(0)
    surface, _ = trimesh.sample.sample_surface(torus, 6000, seed=rng)
    points = np.vstack([surface, rng.uniform(torus.bounds[0] * 1.5, torus.bounds[1] * 1.5, size=(300, 3))])
    return write_ply(tmp_path / "torus.ply", points)


def test_a_handle_gets_a_genus_1_mesh(torus_file, tmp_path, capsys):
    assert main(["reconstruct", str(torus_file), "-o", str(tmp_path / "out"), *FAST]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["mode"] == "surface" and report["training"]["genus"] == 1
    assert report["genus_estimate"] == 1 and report["mesh"]["genus"] == 1 and report["mesh"]["watertight"]
    assert report["mesh"]["self_intersections"] == 0 and report["warnings"] == []
    assert "warning" not in capsys.readouterr().err


def test_two_handles_side_by_side_get_a_genus_2_mesh_with_its_chart(tmp_path, capsys):
    import trimesh

    from pcflow.latent import LatentTori, LatentTorus

    pair = LatentTori((LatentTorus((-1.2, 0.0, 0.0), (0.0, 0.0, 1.0), 1.0),
                       LatentTorus((1.2, 0.0, 0.0), (0.0, 0.0, 1.0), 1.0)), 0.175)
    rng = np.random.default_rng(1)
    surface = pair.points(12_000, 0.35, generator=torch.Generator().manual_seed(1), dtype=torch.float64).numpy()
    points = np.vstack([surface, rng.uniform(1.5 * surface.min(axis=0), 1.5 * surface.max(axis=0), size=(300, 3))])
    path = write_ply(tmp_path / "pair.ply", points)
    assert main(["reconstruct", str(path), "-o", str(tmp_path / "out"), "--uv", *FAST]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["training"]["genus"] == 2 and report["genus_estimate"] == 2
    assert report["mesh"]["genus"] == 2 and report["mesh"]["watertight"] and report["mesh"]["self_intersections"] == 0
    assert report["warnings"] == [] and "warning" not in capsys.readouterr().err
    textured = trimesh.load(tmp_path / "out" / "mesh_uv.obj", process=False)
    uv = textured.visual.uv
    assert len(uv) >= report["mesh"]["n_vertices"] and 0 <= uv.min() and uv.max() <= 1.5


def test_a_handle_is_counted_and_the_user_warned_of_a_genus_0_mesh(torus_file, tmp_path, capsys):
    path = torus_file
    settings = ["reconstruct", str(path), "-o", str(tmp_path / "out"), "--mode", "surface", "--genus", "0", *FAST]
    assert main([arg for arg in settings if arg != "-q"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["genus_estimate"] == 1 and report["mesh"]["genus"] == 0
    assert 0 < report["spanned_share"] < 1 and report["spanned_area"] > 0
    assert len(report["warnings"]) == 1 and "genus 1" in report["warnings"][0]
    assert f"pcflow: warning: {report['warnings'][0]}\n" in capsys.readouterr().err
    assert main([*settings, "--overwrite"]) == 0  # -q: no warning line
    assert "warning" not in capsys.readouterr().err
    batch = [str(path), str(path), "-o", str(tmp_path / "batch"), "--mode", "surface", "--genus", "0", *FAST]
    assert main(["reconstruct", *(arg for arg in batch if arg != "-q")]) == 0
    entry = json.loads((tmp_path / "batch" / "batch_report.json").read_text())["files"][0]
    assert entry["warnings"] == report["warnings"]
    assert f"pcflow: warning: {path}: {report['warnings'][0]}\n" in capsys.readouterr().err


def test_the_command_runs_main_with_rare_full_collections_and_none_at_exit(cloud_file, tmp_path, capsys):
    threshold = gc.get_threshold()
    try:
        assert cli.run(["info", str(cloud_file)]) == 0
        assert "1560" in capsys.readouterr().out  # main ran: the point count
        assert gc.get_threshold() == (*threshold[:2], cli._FULL_COLLECTION_AFTER)
        assert gc.get_freeze_count() > 0  # what is left is frozen, so the exit does not walk it
        assert cli.run(["info", str(tmp_path / "missing.ply")]) == cli.EXIT_FAILURE  # main's exit code comes back
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_fit_mesh_denoise_info(cloud_file, tmp_path, capsys):
    model_path = tmp_path / "model.pt"
    assert main(["fit", str(cloud_file), "-o", str(model_path), *FIT]) == 0
    assert main(["mesh", str(model_path), "-o", str(tmp_path / "fine.obj"), "--subdivisions", "4", "-q"]) == 0
    assert main(["mesh", str(model_path), "-o", str(tmp_path / "wide.ply"), "--coverage", "0.99", "-q"]) == 0
    assert main(["mesh", str(model_path), "-o", str(tmp_path / "mc.ply"), "--marching-cubes", "32", "-q"]) == 0
    from pcflow.io import read_mesh

    fine, wide, cubes = (read_mesh(tmp_path / n) for n in ("fine.obj", "wide.ply", "mc.ply"))
    assert wide.volume > fine.volume  # a larger coverage gives a larger region
    assert abs(cubes.volume - fine.volume) < 0.1 * fine.volume

    # a surface fit's mesh is snapped onto its inliers unless --no-snap keeps the exact image of the sphere
    assert main(["mesh", str(model_path), "-o", str(tmp_path / "exact.ply"), "--subdivisions", "4", "--no-snap",
                 "-q"]) == 0
    model = OneFlow.load(model_path)
    assert model.objective == "surface"
    exact = boundary_mesh(model, subdivisions=4, snap=False).mesh.vertices
    np.testing.assert_allclose(np.sort(read_mesh(tmp_path / "exact.ply").vertices, axis=0), np.sort(exact, axis=0),
                               atol=1e-5)
    assert np.abs(np.sort(fine.vertices, axis=0) - np.sort(exact, axis=0)).max() > 1e-3
    assert main(["denoise", str(cloud_file), "-o", str(tmp_path / "clean.pcd"), "--model", str(model_path),
                 "--outliers", str(tmp_path / "removed.xyz"), "-q"]) == 0
    clean, removed = read_cloud(tmp_path / "clean.pcd"), read_cloud(tmp_path / "removed.xyz")
    assert len(clean) + len(removed) == len(read_cloud(cloud_file))
    capsys.readouterr()
    assert main(["info", str(model_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_features"] == 3 and "surface_steps" in info["params"]  # the default mode: a SurfaceFlow
    assert info["distance_threshold"] == OneFlow.load(model_path).distance_threshold_ > 0
    assert 0 <= info["surface_gap"] <= OPEN_SCENE_GAP  # else auto mode would have fitted the envelope
    assert main(["info", str(cloud_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_points"] == len(clean) + len(removed)


def test_far_from_origin_coordinates(tmp_path):
    points = noisy_ellipsoid(n=800, n_outliers=0)
    offset = np.array([4.5e6, 5.2e6, 120.0])
    write_ply(tmp_path / "local.ply", points)
    write_ply(tmp_path / "geo.ply", points + offset)
    for name in ("local", "geo"):
        assert main(["reconstruct", str(tmp_path / f"{name}.ply"), "-o", str(tmp_path / name), *FAST]) == 0
    local, geo = (json.loads((tmp_path / name / "report.json").read_text()) for name in ("local", "geo"))
    # the same region, moved: full float64 precision survives the offset
    assert geo["mesh"]["watertight"] and geo["n_outliers"] == local["n_outliers"]
    assert math.isclose(geo["mesh_volume"], local["mesh_volume"], rel_tol=1e-3)
    from pcflow.io import read_mesh

    moved = read_mesh(tmp_path / "geo" / "mesh.ply").bounds - offset
    np.testing.assert_allclose(moved, read_mesh(tmp_path / "local" / "mesh.ply").bounds, atol=1e-3)


@pytest.mark.parametrize("command", ["reconstruct", "demo", "denoise", "fit", "mesh", "info", "view", "render"])
def test_every_subcommand_has_help_with_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "example:" in text and "%%" not in text  # a description is printed as written, not %-formatted


def corrupt_inputs(folder):
    """Bad input files, each with the words its error message must contain."""
    cases = {}
    (folder / "empty.ply").write_bytes(b"")
    cases["empty.ply"] = "empty"
    (folder / "cloud.abc").write_text("1 2 3\n")
    cases["cloud.abc"] = "suffix"
    write_ply(folder / "full.ply", noisy_ellipsoid(n=200, n_outliers=0))
    data = (folder / "full.ply").read_bytes()
    (folder / "truncated.ply").write_bytes(data[: len(data) // 2])
    cases["truncated.ply"] = "truncated.ply"
    (folder / "lying.pcd").write_text(
        "VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 100\nHEIGHT 1\nPOINTS 100\nDATA ascii\n"
        "1 2 3\n4 5 6\n"
    )
    cases["lying.pcd"] = "lying.pcd"
    (folder / "nan.xyz").write_text("nan nan nan\ninf 0 0\n")
    cases["nan.xyz"] = "finite"
    (folder / "few.xyz").write_text("".join(f"{i} {i * i} {i % 3}\n" for i in range(12)))
    cases["few.xyz"] = "too few"
    (folder / "flat.xyz").write_text("".join(f"{i} {i * 2}\n" for i in range(500)))
    cases["flat.xyz"] = "3-D points"
    (folder / "same.xyz").write_text("1 2 3\n" * 500)
    cases["same.xyz"] = "identical"
    return cases


def test_bad_inputs_give_one_line_errors_and_no_output(tmp_path, capsys):
    for name, words in corrupt_inputs(tmp_path).items():
        out = tmp_path / f"out_{name}"
        code = main(["reconstruct", str(tmp_path / name), "-o", str(out), *FAST])
        err = capsys.readouterr().err
        assert code != 0, name
        assert err.startswith("pcflow: error:") and err.count("\n") == 1, (name, err)
        assert words in err, (name, err)
        assert "Traceback" not in err
        assert not out.exists(), name


def test_nonfinite_rows_are_dropped_and_counted(tmp_path):
    points = noisy_ellipsoid(n=600, n_outliers=0)
    points[:7] = np.nan
    points[7, 1] = np.inf
    text = "\n".join(" ".join(f"{v}" for v in row) for row in points)
    (tmp_path / "holes.xyz").write_text(text + "\n")
    assert main(["reconstruct", str(tmp_path / "holes.xyz"), "-o", str(tmp_path / "out"), *FAST]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["n_dropped_nonfinite"] == 8 and report["n_finite"] == 592 and report["n_points"] == 600


def test_refuses_to_overwrite_outputs_and_inputs(cloud_file, reconstructed, tmp_path, capsys):
    before = (reconstructed / "mesh.ply").read_bytes()
    assert main(["reconstruct", str(cloud_file), "-o", str(reconstructed), *FAST]) != 0
    assert "--overwrite" in capsys.readouterr().err
    assert (reconstructed / "mesh.ply").read_bytes() == before
    original = cloud_file.read_bytes()
    assert main(["denoise", str(cloud_file), "-o", str(cloud_file), "--overwrite", *FIT]) != 0
    assert "overwrite the input" in capsys.readouterr().err
    assert cloud_file.read_bytes() == original


def test_unwritable_output_folder(cloud_file, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["reconstruct", str(cloud_file), "-o", str(blocker / "out"), *FAST]) != 0
    err = capsys.readouterr().err
    assert err.startswith("pcflow: error:") and "Traceback" not in err and err.count("\n") == 1


def test_missing_input_and_bad_model(tmp_path, capsys):
    assert main(["reconstruct", str(tmp_path / "missing.ply"), "-o", str(tmp_path / "o"), *FAST]) != 0
    assert "missing.ply" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"junk")
    assert main(["mesh", str(tmp_path / "bad.pt"), "-o", str(tmp_path / "m.ply")]) != 0
    assert "not a readable pcflow model" in capsys.readouterr().err
    assert not (tmp_path / "m.ply").exists()


def test_bad_option_values(cloud_file, tmp_path, capsys):
    assert main(["reconstruct", str(cloud_file), "-o", str(tmp_path / "o"), "--alpha", "1.5", *FAST]) != 0
    assert "alpha" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["reconstruct", str(cloud_file), "-o", str(tmp_path / "o"), "--flow", "maf"])
    assert exit_info.value.code == 2


def test_parser_lists_subcommands():
    text = build_parser().format_help()
    for command in ("reconstruct", "demo", "denoise", "fit", "mesh", "info"):
        assert command in text


def can_render():
    pytest.importorskip("pyvista")
    from pcflow.viz import gl

    try:
        gl._pyvista()
    except PcflowError as error:
        pytest.skip(f"no off-screen rendering here: {error}")


def test_render_and_reconstruct_preview(cloud_file, reconstructed, tmp_path):
    can_render()
    import imageio.v3 as iio

    picture = tmp_path / "picture.png"
    code = main(["render", str(cloud_file), "--model", str(reconstructed / "model.pt"), "-o", str(picture),
                 "--views", "front", "top", "-q"])
    assert code == 0
    image = iio.imread(picture)
    assert image.shape[:2] == (500, 1000)
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20  # a scene, not a blank canvas
    out = tmp_path / "with_preview"
    assert main(["reconstruct", str(cloud_file), "-o", str(out), *FIT]) == 0
    assert iio.imread(out / "preview.png").ndim == 3
    assert json.loads((out / "report.json").read_text())["preview"] == "preview.png"


def test_view_without_display_says_what_to_do(cloud_file, capsys, monkeypatch):
    pytest.importorskip("pyvista")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["view", str(cloud_file)]) != 0
    assert "pcflow render" in capsys.readouterr().err


def test_threads_option_sets_torch_threads(cloud_file, tmp_path):
    before = torch.get_num_threads()
    try:
        assert main(["fit", str(cloud_file), "-o", str(tmp_path / "m.pt"), *FIT, "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", str(cloud_file), "-o", str(tmp_path / "m.pt"), "--threads", "0"])
    assert exit_info.value.code == 2


def test_summary_suggests_the_envelope_when_the_surface_mesh_intersects_itself():
    from pcflow.cli import _summary

    report = {"input": "scene.pcd", "n_finite": 10, "n_dropped_nonfinite": 0, "n_train": 10, "n_inliers": 9,
              "n_outliers": 1, "alpha": 0.1, "mode": "surface", "requested_mode": "surface", "volume": 1.0,
              "mesh_volume": 1.0,
              "timings": {"total": 1.0},
              "mesh": {"n_vertices": 4, "n_faces": 4, "watertight": True, "n_components": 1, "euler": 2,
                       "self_intersections": 0}}
    assert "--mode envelope" not in _summary(report, Path("out"))
    report["mesh"]["self_intersections"] = 12
    assert "--mode envelope" in _summary(report, Path("out"))
    report["mode"] = "envelope"
    assert "--mode envelope" not in _summary(report, Path("out"))
    assert "open scene" not in _summary(report, Path("out"))
    report["requested_mode"] = "auto"  # auto mode fell back to the envelope
    assert "open scene" in _summary(report, Path("out")) and "--mode surface" in _summary(report, Path("out"))
    report["surface_gap"] = 0.553
    assert "spanned empty space: 55% of it" in _summary(report, Path("out"))


def test_each_mode_takes_its_own_envelope_settings_unless_told():
    from dataclasses import replace

    from pcflow.pipeline import FitOptions

    assert FitOptions().estimator().epochs == 40  # auto: a surface fit's first stage
    assert FitOptions(mode="surface").estimator().epochs == 40
    assert FitOptions(mode="envelope").estimator().epochs == 100
    assert replace(FitOptions(), mode="envelope").estimator().epochs == 100  # auto mode's fallback to the envelope
    assert FitOptions(epochs=7).estimator().epochs == 7
    assert FitOptions(mode="envelope", epochs=7).estimator().epochs == 7
    # a surface fit's envelope stage takes steps of 2,000 points at lr 2e-3, an envelope fit of 1,000 at 1e-3
    assert [FitOptions(mode=mode).estimator().get_params()[name] for mode in ("auto", "surface", "envelope")
            for name in ("batch_size", "lr")] == [2000, 2e-3, 2000, 2e-3, 1000, 1e-3]
    assert replace(FitOptions(), mode="envelope").estimator().batch_size == 1000


def test_fast_fits_take_fewer_steps_unless_told():
    from dataclasses import replace

    from pcflow.cli import _fit_options, build_parser
    from pcflow.pipeline import FitOptions

    def steps(options):
        model = options.estimator()
        return model.epochs, model.surface_steps

    def start_steps(options):  # the most steps from fitted tori and from a shaped latent surface
        model = options.estimator()
        return model.torus_steps, model.shaped_steps

    assert steps(FitOptions()) == (40, 600)
    assert start_steps(FitOptions()) == start_steps(FitOptions(fast=True)) == (300, 25)
    assert start_steps(FitOptions(surface_steps=9)) == (9, 9)
    assert steps(FitOptions(fast=True)) == (20, 400)
    assert steps(FitOptions(mode="surface", fast=True)) == (20, 400)
    assert FitOptions(mode="envelope", fast=True).estimator().epochs == 50
    assert replace(FitOptions(fast=True), mode="envelope").estimator().epochs == 50  # auto mode's fallback
    assert steps(FitOptions(fast=True, epochs=7, surface_steps=9)) == (7, 9)
    for flags, expected in (([], (40, 600)), (["--fast"], (20, 400)),
                            (["--fast", "--surface-steps", "600"], (20, 600))):
        args = build_parser().parse_args(["reconstruct", "scan.ply", "-o", "out", *flags])
        assert steps(_fit_options(args, quiet=True)) == expected


def test_auto_mode_fits_the_envelope_for_an_open_scene(table_and_wall, tmp_path, capsys):
    path = write_ply(tmp_path / "scene.ply", table_and_wall)
    settings = ["--couplings", "4", "--hidden", "32", "--epochs", "30", "--surface-steps", "150", "--no-preview"]
    assert main(["reconstruct", str(path), "-o", str(tmp_path / "auto"), *settings]) == 0
    report = json.loads((tmp_path / "auto" / "report.json").read_text())
    assert report["requested_mode"] == "auto" and report["mode"] == "envelope"
    assert report["surface_gap"] > OPEN_SCENE_GAP  # of the surface given up
    assert OneFlow.load(tmp_path / "auto" / "model.pt").objective == "volume"
    assert f"spanned empty space: {report['surface_gap']:.0%} of it" in capsys.readouterr().out
    assert report["mesh"]["watertight"] and report["mesh"]["self_intersections"] == 0
    assert main(["denoise", str(path), "-o", str(tmp_path / "clean.ply"), *settings[:-1]]) == 0
    assert "(envelope mode)" in capsys.readouterr().out
    assert main(["fit", str(path), "-o", str(tmp_path / "surface.pt"), "--mode", "surface", *settings[:-1]]) == 0
    assert "in surface mode" in capsys.readouterr().out
    assert OneFlow.load(tmp_path / "surface.pt").objective == "surface"
