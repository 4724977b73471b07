"""Tests for pcflow.viz: headless pictures checked pixel by pixel, and the viewer's widgets and coverage slider."""

import os
import subprocess
import sys

import numpy as np
import pytest
import trimesh

from pcflow import viz
from pcflow.viz import camera, gl
from pcflow.errors import PcflowError
from pcflow.io import PointCloud

BALL = 4.0 / 3.0 * np.pi
WHITE = np.array(viz.BACKGROUND_COLOR)


@pytest.fixture(scope="module")
def pv():
    """pyvista, set up by pcflow.viz; skips when pyvista is missing or nothing can render here."""
    pytest.importorskip("pyvista")
    try:
        return gl._pyvista()
    except PcflowError as error:
        pytest.skip(f"no off-screen rendering here: {error}")


class AffineModel:
    """Stand-in for a fitted 3-D OneFlow: latent z = (x - center) / scale, ball quantiles of the training radii."""

    n_features_in_ = 3

    def __init__(self, train, center=(0.0, 0.0, 0.0), scale=2.0, alpha=0.1):
        self.center = np.asarray(center, dtype=np.float64)
        self.scale = float(scale)
        self.alpha = alpha
        self.train_radii = np.linalg.norm((train - self.center) / self.scale, axis=1)
        self.n_latent_calls = 0

    def latent_radius(self, X):
        self.n_latent_calls += 1
        return np.linalg.norm((np.asarray(X) - self.center) / self.scale, axis=1)

    def inverse_transform(self, Z):
        return np.asarray(Z) * self.scale + self.center

    def radius_at(self, coverage):
        return float(np.quantile(self.train_radii, coverage))

    def region_volume(self, radius=None):
        return BALL * (radius * self.scale) ** 3, 0.0


def ball_cloud(n=400, seed=0, center=(0.0, 0.0, 0.0)):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)) * 0.5 + np.asarray(center)


def red_mask(image):
    """Pixels drawn in the outlier colour (shaded red)."""
    image = image.astype(int)
    return (image[..., 0] > 120) & (image[..., 1] < 90) & (image[..., 2] < 90)


def blue_mask(image):
    """Pixels drawn in the default inlier colour (shaded blue)."""
    image = image.astype(int)
    return (image[..., 2] > image[..., 0] + 60) & (image[..., 2] > 100)


def corner_scene():
    """A unit sphere mesh at the origin, inliers around (-2.5, -2.5, 0) and outliers around (2.5, 2.5, 0)."""
    rng = np.random.default_rng(1)
    inliers = rng.normal(size=(60, 3)) * 0.15 + [-2.5, -2.5, 0.0]
    outliers = rng.normal(size=(60, 3)) * 0.15 + [2.5, 2.5, 0.0]
    cloud = PointCloud(np.vstack([inliers, outliers]), source="scene.ply")
    inside = np.arange(120) < 60
    return cloud, inside, trimesh.creation.icosphere(subdivisions=3, radius=1.0)


def read_image(path):
    import imageio.v3 as iio

    return np.asarray(iio.imread(path))[..., :3]


def test_import_pcflow_leaves_pyvista_unloaded():
    code = "import sys, pcflow, pcflow.viz, pcflow.pipeline; print('pyvista' in sys.modules, 'vtk' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_render_scene_draws_surface_and_outliers_where_expected(pv, tmp_path):
    cloud, inside, mesh = corner_scene()
    path = tmp_path / "picture.png"
    viz.render_scene(path, cloud=cloud, inside=inside, mesh=mesh, views=("front",), size=(300, 300), up="y")
    image = read_image(path)
    assert image.shape == (300, 300, 3)
    assert sorted(os.listdir(tmp_path)) == ["picture.png"]  # atomic: no temporary file left behind

    # front view with y up: +x to the right, +y up, the sphere at the centre
    centre = image[140:160, 140:160].reshape(-1, 3).astype(int)
    assert np.all(np.abs(centre - WHITE).sum(axis=1) > 30), "the surface should cover the centre"
    assert np.all(centre[:, 1] > centre[:, 0] + 10), "the centre should show the (teal) surface colour"
    assert not red_mask(image[100:200, 100:200]).any()

    upper_right, lower_left = image[:150, 150:], image[150:, :150]
    assert red_mask(upper_right).sum() > 50
    assert not red_mask(lower_left).any()
    assert blue_mask(lower_left).sum() > 50
    assert not blue_mask(upper_right).any()


def test_render_scene_panels_each_show_the_scene(pv, tmp_path):
    cloud, inside, mesh = corner_scene()
    path = tmp_path / "views.png"
    viz.render_scene(path, cloud=cloud, inside=inside, mesh=mesh, size=(480, 160))
    image = read_image(path)
    assert image.shape == (160, 480, 3)
    for panel in np.split(image, 3, axis=1):
        drawn = np.abs(panel.astype(int) - WHITE).sum(axis=2) > 30
        assert drawn[40:120, 40:120].mean() > 0.05
        assert red_mask(panel).sum() > 5


def test_render_scene_replaces_an_existing_picture(pv, tmp_path):
    cloud, inside, mesh = corner_scene()
    path = tmp_path / "picture.png"
    path.write_bytes(b"old")
    viz.render_scene(path, cloud=cloud, inside=inside, mesh=mesh, views=("top",), size=(64, 64))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["picture.png"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"path": "picture.bmp"}, "suffix"),
        ({"views": ("diagonal",)}, "unknown"),
        ({"views": ((0, 0, 0),)}, "not all zero"),
        ({"up": "w"}, "up="),
        ({"size": (0, 100)}, "size="),
        ({"inside": np.ones(3, dtype=bool)}, "inside has shape"),
    ],
)
def test_render_scene_rejects_bad_arguments(pv, tmp_path, kwargs, match):
    cloud, inside, mesh = corner_scene()
    arguments = {"cloud": cloud, "inside": inside, "mesh": mesh, "size": (64, 64), **kwargs}
    path = tmp_path / arguments.pop("path", "picture.png")
    with pytest.raises(PcflowError, match=match):
        viz.render_scene(path, **arguments)
    assert not list(tmp_path.iterdir())


def test_render_turntable_writes_turning_frames(pv, tmp_path):
    cloud, inside, mesh = corner_scene()
    path = tmp_path / "turn.gif"
    viz.render_turntable(path, cloud=cloud, inside=inside, mesh=mesh, n_frames=8, size=(96, 96), up="y")
    import imageio.v3 as iio

    frames = np.asarray(iio.imread(path, index=None))
    assert frames.shape[:3] == (8, 96, 96)
    # a quarter turn about y moves the outlier cluster from the right half to (mostly) the middle
    assert not np.array_equal(frames[0], frames[2])
    assert red_mask(frames[0][..., :3]).any()
    with pytest.raises(PcflowError, match="GIF"):
        viz.render_turntable(tmp_path / "turn.png", cloud=cloud, inside=inside, mesh=mesh)


def test_scene_without_model_or_labels_draws_one_points_layer(pv):
    cloud = PointCloud(ball_cloud(50))
    plotter = pv.Plotter(off_screen=True, window_size=(64, 64))
    try:
        scene = viz.build_scene(plotter, cloud=cloud, interactive=True)
        assert set(scene.actors) == {"inliers", "text"}
        assert set(scene.checkboxes) == {"inliers"} and scene.slider is None
        assert scene.layers["inliers"].n_verts == 50
        assert scene.summary() == "50 points"
        with pytest.raises(PcflowError, match="needs a model"):
            scene.set_coverage(0.5)
    finally:
        plotter.close()


def test_scene_uses_input_colours_for_inliers(pv):
    colors = np.tile(np.array([10, 200, 30], dtype=np.uint8), (20, 1))
    fields = np.zeros(20, dtype=[("x", "f8"), ("y", "f8"), ("z", "f8"), ("red", "u1"), ("green", "u1"),
                                 ("blue", "u1")])
    fields["red"], fields["green"], fields["blue"] = colors.T
    cloud = PointCloud(ball_cloud(20), fields)
    plotter = pv.Plotter(off_screen=True, window_size=(64, 64))
    try:
        scene = viz.build_scene(plotter, cloud=cloud, inside=np.arange(20) < 15)
        np.testing.assert_array_equal(scene.layers["inliers"].point_data["rgb"], colors)
        assert (scene.n_inliers, scene.n_outliers) == (15, 5)
        assert scene.layers["outliers"].n_verts == 5
    finally:
        plotter.close()


def test_viewer_slider_recolours_points_and_redraws_the_surface(pv):
    points = ball_cloud(400, center=(1.0, -2.0, 0.5))
    model = AffineModel(points, center=(1.0, -2.0, 0.5), scale=2.0, alpha=0.1)
    radii = np.linalg.norm((points - model.center) / model.scale, axis=1)
    plotter = pv.Plotter(off_screen=True, window_size=(320, 240))
    try:
        scene = viz.build_scene(plotter, cloud=PointCloud(points), model=model, interactive=True)
        assert set(scene.actors) == {"inliers", "outliers", "surface", "text"}
        assert set(scene.checkboxes) == {"inliers", "outliers", "surface"}

        def expect(coverage):
            radius = model.radius_at(coverage)
            n_out = int((radii > radius).sum())
            assert scene.coverage == pytest.approx(coverage)
            assert scene.n_outliers == n_out
            assert scene.layers["outliers"].n_verts == n_out
            assert scene.layers["inliers"].n_verts == 400 - n_out
            outside = np.zeros(400, dtype=bool)
            outside[scene.layers["outliers"].verts.reshape(-1, 2)[:, 1]] = True
            np.testing.assert_array_equal(outside, radii > radius)
            surface = scene.layers["surface"]
            half_widths = (np.array(surface.bounds).reshape(3, 2) @ [-0.5, 0.5])
            np.testing.assert_allclose(half_widths, radius * model.scale, rtol=0.02)
            np.testing.assert_allclose(surface.center, model.center, atol=0.02 * radius * model.scale)
            assert surface.volume == pytest.approx(BALL * (radius * model.scale) ** 3, rel=0.03)
            assert f"outliers {n_out:,}" in scene.actors["text"].input
            assert f"region volume {BALL * (radius * model.scale) ** 3:.4g}" in scene.actors["text"].input
            return surface.volume

        def red_points():
            image = plotter.screenshot(return_img=True)
            image[-3 * 34:, :34] = WHITE  # the outliers' checkbox (lower left) is red too
            return red_mask(image).sum()

        volume = expect(0.9)
        red_before = red_points()
        assert red_before > 0

        from vtkmodules.vtkCommonCore import vtkCommand

        scene.slider.GetRepresentation().SetValue(0.6)
        scene.slider.InvokeEvent(vtkCommand.InteractionEvent)
        assert expect(0.6) < volume
        plotter.render()
        assert red_points() > red_before

        scene.set_coverage(1.0)
        assert expect(1.0) > volume and scene.n_outliers == 0
        assert red_points() == 0  # an empty layer draws nothing
        assert model.n_latent_calls == 1  # radii computed once, compared on every move

        checkbox = scene.checkboxes["surface"]
        checkbox.GetRepresentation().SetState(0)
        checkbox.InvokeEvent(vtkCommand.StateChangedEvent)
        assert not scene.actors["surface"].GetVisibility()
        assert scene.actors["inliers"].GetVisibility()
        checkbox.GetRepresentation().SetState(1)
        checkbox.InvokeEvent(vtkCommand.StateChangedEvent)
        assert scene.actors["surface"].GetVisibility()
    finally:
        plotter.close()


def test_viewer_keeps_a_given_mesh_until_the_slider_moves(pv):
    points = ball_cloud(200)
    model = AffineModel(points)
    mesh = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    plotter = pv.Plotter(off_screen=True, window_size=(64, 64))
    try:
        scene = viz.build_scene(plotter, cloud=PointCloud(points), model=model, mesh=mesh, interactive=True)
        assert scene.layers["surface"].n_points == len(mesh.vertices)
        scene.set_coverage(0.5)
        assert scene.layers["surface"].n_points > len(mesh.vertices)
    finally:
        plotter.close()


def test_scene_with_a_fitted_oneflow(pv):
    from pcflow import OneFlow

    rng = np.random.default_rng(0)
    directions = rng.normal(size=(300, 3))
    points = directions / np.linalg.norm(directions, axis=1, keepdims=True) + 0.05 * rng.normal(size=(300, 3))
    model = OneFlow(alpha=0.1, epochs=3, n_couplings=2, hidden_features=8, random_state=0,
                    normalize="isotropic").fit(points)
    plotter = pv.Plotter(off_screen=True, window_size=(64, 64))
    try:
        scene = viz.build_scene(plotter, cloud=PointCloud(points), model=model)
        assert scene.n_outliers == int((model.predict(points) == -1).sum())
        scene.set_coverage(0.8)
        assert scene.n_outliers == int((model.latent_radius(points) > model.radius_at(0.8)).sum())
        assert scene.volume == pytest.approx(model.region_volume(model.radius_at(0.8))[0])
        assert scene.layers["surface"].volume == pytest.approx(scene.volume, rel=0.1)
    finally:
        plotter.close()


def test_scene_with_a_surface_model_moves_only_the_threshold(pv):
    from pcflow import SurfaceFlow

    rng = np.random.default_rng(0)
    directions = rng.normal(size=(400, 3))
    points = directions / np.linalg.norm(directions, axis=1, keepdims=True) + 0.02 * rng.normal(size=(400, 3))
    model = SurfaceFlow(alpha=0.1, flow="general", epochs=3, surface_steps=10, n_couplings=2,
                        hidden_features=8, surface_batch_size=256, n_surface_samples=256, random_state=0,
                        normalize="isotropic").fit(points)
    plotter = pv.Plotter(off_screen=True, window_size=(64, 64))
    try:
        scene = viz.build_scene(plotter, cloud=PointCloud(points), model=model)
        assert scene.n_outliers == int((model.predict(points) == -1).sum())
        surface = scene.layers["surface"].points.copy()
        scene.set_coverage(0.7)
        assert scene.n_outliers == int((-model.score_samples(points) > model.threshold_at(0.7)).sum())
        assert abs(scene.n_outliers - 0.3 * len(points)) <= 2
        np.testing.assert_array_equal(scene.layers["surface"].points, surface)  # the fitted surface stays
        assert scene.radius == model.radius_
    finally:
        plotter.close()


def test_view_needs_a_display(monkeypatch):
    monkeypatch.setattr(gl.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    pytest.importorskip("pyvista")
    with pytest.raises(PcflowError, match="pcflow render"):
        viz.view(PointCloud(ball_cloud(10)))


def test_missing_pyvista_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyvista", None)
    with pytest.raises(PcflowError, match=r'pip install "pcflow\[viz\]"'):
        gl._pyvista()


def test_missing_opengl_says_what_to_install(monkeypatch):
    pytest.importorskip("pyvista")
    monkeypatch.setattr(gl, "_gl_checked", "a test render crashed with signal 11")
    with pytest.raises(PcflowError, match="apt-get install libegl1 libgl1-mesa-dri"):
        gl._pyvista()


@pytest.mark.parametrize(
    "probe, reason",
    [
        ("import os; os.abort()", "crashed with signal"),
        ("raise SystemExit('no EGL display')", "no EGL display"),
        ("print('ok')", "ok"),
    ],
)
def test_gl_probe_reports_crashes_and_failures(monkeypatch, probe, reason):
    monkeypatch.setattr(gl, "_GL_PROBE", probe)
    assert reason in gl._finish_gl_probe(gl._start_gl_probe())


def test_first_use_checks_opengl_in_a_child_process(monkeypatch):
    pytest.importorskip("pyvista")
    monkeypatch.setattr(gl, "_gl_checked", None)
    monkeypatch.setattr(gl, "_GL_PROBE", "import os; os.abort()")
    with pytest.raises(PcflowError, match="OpenGL cannot render here .a test render crashed with signal"):
        gl._pyvista()
    with pytest.raises(PcflowError, match="crashed with signal"):  # the verdict is kept, not probed again
        gl._pyvista()


def test_an_early_check_is_the_one_first_use_waits_for(monkeypatch):
    pytest.importorskip("pyvista")
    started = []

    def start():
        started.append(probe())
        return started[-1]

    probe = gl._start_gl_probe
    monkeypatch.setattr(gl, "_gl_checked", None)
    monkeypatch.setattr(gl, "_gl_probe", None)
    monkeypatch.setattr(gl, "_GL_PROBE", "import os; os.abort()")
    monkeypatch.setattr(gl, "_start_gl_probe", start)
    gl.start_gl_check()
    gl.start_gl_check()
    assert len(started) == 1
    with pytest.raises(PcflowError, match="crashed with signal"):
        gl._pyvista()
    assert len(started) == 1 and gl._gl_probe is None  # its verdict was read, no second probe started


def test_a_failed_import_stops_the_opengl_check(monkeypatch):
    started = []

    def start():
        started.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
        return started[-1]

    monkeypatch.setattr(gl, "_gl_checked", None)
    monkeypatch.setattr(gl, "_start_gl_probe", start)
    monkeypatch.setitem(sys.modules, "pyvista", None)
    with pytest.raises(PcflowError, match="rendering needs pyvista"):
        gl._pyvista()
    assert len(started) == 1 and started[0].poll() is not None  # killed, not left running
    assert gl._gl_checked is None


@pytest.mark.parametrize("up", viz.UP_AXES)
def test_view_frames_are_right_handed(up):
    front, right, axis = camera._frame(up)
    frame = np.array([front, right, axis])
    np.testing.assert_allclose(frame @ frame.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(np.array([right, axis, front])) == pytest.approx(1.0)
    for view in viz.VIEWS:
        direction, viewup = camera._camera_direction(view, up)
        assert abs(np.dot(direction, viewup)) < 1.0 - 1e-6


def test_default_up_follows_the_file_type():
    assert viz.default_up("scan.las") == "z"
    assert viz.default_up("scene.PCD") == "-y"
    assert viz.default_up("spot.ply") == "y"
    assert viz.default_up("") == "y"


def hue(rgb):
    """Hue in degrees of (..., 3) colours; shading (a factor) and blending with white or grey (adding the same to
    each channel) leave it unchanged."""
    rgb = np.asarray(rgb, dtype=float)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.degrees(np.arctan2(np.sqrt(3.0) * (g - b), 2.0 * r - g - b)) % 360.0


def hue_mask(image, color, tolerance=12.0):
    """Pixels of a colour's hue, shaded or seen through a translucent surface (saturated enough to have a hue)."""
    image = image.astype(int)
    chroma = image.max(axis=-1) - image.min(axis=-1)
    difference = np.abs((hue(image) - hue(color) + 180.0) % 360.0 - 180.0)
    return (chroma > 25) & (difference < tolerance)


def grey_mask(image):
    """Pixels drawn grey: no hue, darker than the background."""
    image = image.astype(int)
    return (image.max(axis=-1) - image.min(axis=-1) < 12) & (image.max(axis=-1) < 225)


def labelled_scene():
    """Object 0 upper left, object 1 upper right, a plane along the bottom, outliers in the middle (x right, y up),
    with a sphere per object and a thin box for the plane."""
    rng = np.random.default_rng(2)
    centres = np.array([[-2.5, 2.0, 0.0], [2.5, 2.0, 0.0]])
    objects = [rng.normal(size=(80, 3)) * 0.25 + centre for centre in centres]
    plane = np.c_[rng.uniform(-3.5, 3.5, 300), rng.normal(scale=0.02, size=300) - 2.5, rng.uniform(-1, 1, 300)]
    outliers = rng.normal(size=(30, 3)) * 0.2
    points = np.vstack([*objects, plane, outliers])
    labels = np.r_[np.zeros(80), np.ones(80), np.full(300, 1000), np.full(30, -1)].astype(np.int64)
    meshes = [trimesh.creation.icosphere(subdivisions=2, radius=0.7).apply_translation(c) for c in centres]
    plane_mesh = trimesh.creation.box(extents=(7.0, 0.05, 2.0)).apply_translation([0.0, -2.5, 0.0])
    return PointCloud(points, source="scene.ply"), labels, meshes, [plane_mesh]


def test_render_scene_colours_objects_planes_and_outliers(pv, tmp_path):
    cloud, labels, meshes, planes = labelled_scene()
    path = tmp_path / "scene.png"
    viz.render_scene(path, cloud=cloud, labels=labels, object_meshes=meshes, plane_meshes=planes, views=("front",),
                     size=(320, 320), up="y")
    image = read_image(path)
    upper_left, upper_right, bottom = image[40:130, :130], image[40:130, 190:], image[220:, :]  # text above
    first, second = viz.OBJECT_PALETTE[:2]
    assert hue_mask(upper_left, first).sum() > 500 and not hue_mask(upper_right, first).any()
    assert hue_mask(upper_right, second).sum() > 500 and not hue_mask(upper_left, second).any()
    for color in (first, second):
        assert not hue_mask(bottom, color).any()
    assert grey_mask(bottom).sum() > 500 and grey_mask(upper_left).sum() < 20
    assert red_mask(image[120:200, 120:200]).sum() > 20
    assert not red_mask(upper_left).any() and not red_mask(bottom).any()
    assert not hue_mask(image, viz.SURFACE_COLOR, tolerance=8).any()  # not the plain surface colour


def test_scene_surfaces_share_their_objects_colours(pv):
    cloud, labels, meshes, planes = labelled_scene()
    plotter = pv.Plotter(off_screen=True, window_size=(64, 64))
    try:
        scene = viz.build_scene(plotter, cloud=cloud, labels=labels, object_meshes=meshes, plane_meshes=planes,
                                interactive=True)
        assert set(scene.actors) == {"inliers", "outliers", "objects", "planes", "text"}
        assert set(scene.checkboxes) == {"inliers", "outliers", "objects", "planes"}
        np.testing.assert_array_equal(scene.layers["inliers"].point_data["rgb"], viz.label_colors(labels))
        colors = scene.layers["inliers"].point_data["rgb"]
        np.testing.assert_array_equal(colors[:80], np.tile(viz.OBJECT_PALETTE[0], (80, 1)))
        np.testing.assert_array_equal(colors[160:460], np.tile(viz.PLANE_COLOR, (300, 1)))
        surfaces = scene.layers["objects"].point_data["rgb"]
        n = len(meshes[0].vertices)
        np.testing.assert_array_equal(surfaces, np.repeat(np.array(viz.OBJECT_PALETTE[:2], np.uint8), n, axis=0))
        assert scene.actors["planes"].prop.opacity == pytest.approx(viz.PLANE_OPACITY)
        assert scene.actors["objects"].prop.opacity == pytest.approx(0.35)
        assert (scene.n_inliers, scene.n_outliers) == (460, 30)
        assert scene.layers["outliers"].n_verts == 30
        assert scene.summary() == "inliers 460   outliers 30   of 490\nobjects 2   planes 1"
        scene.set_visible("planes", False)
        assert not scene.actors["planes"].GetVisibility()
    finally:
        plotter.close()


def test_object_colours_cycle_and_meshes_follow_their_index(pv):
    labels = np.array([0, 7, 8, 1003, -1])
    colors = viz.label_colors(labels)
    np.testing.assert_array_equal(colors, [viz.OBJECT_PALETTE[0], viz.OBJECT_PALETTE[0], viz.OBJECT_PALETTE[1],
                                           viz.PLANE_COLOR, viz.OUTLIER_COLOR])
    assert len(set(viz.OBJECT_PALETTE)) == 7 and viz.OUTLIER_COLOR not in viz.OBJECT_PALETTE
    box = trimesh.creation.box()
    plotter = pv.Plotter(off_screen=True, window_size=(64, 64))
    try:
        scene = viz.build_scene(plotter, cloud=PointCloud(ball_cloud(5)), labels=labels,
                                object_meshes={2: box, 5: None})
        np.testing.assert_array_equal(scene.layers["objects"].point_data["rgb"],
                                      np.tile(viz.object_color(2), (len(box.vertices), 1)))
        assert "planes" not in scene.actors
    finally:
        plotter.close()


def test_render_without_labels_is_the_plain_picture(pv, tmp_path):
    cloud, inside, mesh = corner_scene()
    plain, empty = tmp_path / "plain.png", tmp_path / "empty.png"
    viz.render_scene(plain, cloud=cloud, inside=inside, mesh=mesh, views=("front", "iso"), size=(240, 120))
    viz.render_scene(empty, cloud=cloud, inside=inside, mesh=mesh, labels=None, object_meshes=(), plane_meshes=None,
                     views=("front", "iso"), size=(240, 120))
    np.testing.assert_array_equal(read_image(plain), read_image(empty))
    assert blue_mask(read_image(plain)).sum() > 20  # the plain colours: default blue inliers


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"labels": np.zeros(3, dtype=int)}, r"labels has shape \(3,\); expected \(20,\)"),
        ({"labels": np.full(20, 0.5)}, "expected integer labels"),
        ({"labels": np.full(20, -2)}, "labels holds -2"),
        ({"labels": np.zeros(20, dtype=int), "inside": np.ones(20, dtype=bool)}, "without a model or an inside"),
        ({"object_meshes": ["box"]}, r"object_meshes\[0\] is a str"),
        ({"plane_meshes": {"a": None, "b": trimesh.creation.box()}}, "plane_meshes has the key 'b'"),
        ({"plane_opacity": 2.0}, "plane_opacity=2.0"),
    ],
)
def test_scene_rejects_bad_labels_and_meshes(pv, kwargs, match):
    plotter = pv.Plotter(off_screen=True, window_size=(64, 64))
    try:
        with pytest.raises(PcflowError, match=match):
            viz.build_scene(plotter, cloud=PointCloud(ball_cloud(20)), **kwargs)
    finally:
        plotter.close()
