"""Pictures and an interactive viewer of a cloud, its outliers and the region's boundary surface (pyvista)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pcflow.errors import PcflowError

#: Colour of points when the cloud has none of its own, as (r, g, b) uint8.
INLIER_COLOR = (40, 110, 190)
#: Colour of the outliers.
OUTLIER_COLOR = (230, 20, 20)
#: Colour of the boundary surface.
SURFACE_COLOR = (70, 175, 165)
#: Colour behind the scene.
BACKGROUND_COLOR = (255, 255, 255)

#: View names understood by `render_scene`, relative to the up axis (camera on that side of the scene).
VIEWS = ("iso", "front", "back", "side", "left", "top", "bottom")
#: Up axes understood by `render_scene` and `view`.
UP_AXES = ("x", "y", "z", "-x", "-y", "-z")
#: Image suffixes `render_scene` writes.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

_INSTALL_HINT = 'pip install "pcflow[viz]"'
_GL_HINT = "apt-get install libegl1 libgl1-mesa-dri"
#: Icosphere level of the surface the coverage slider redraws (5120 faces, no refinement: fast enough to follow).
_LIVE_SUBDIVISIONS = 4
#: Face budget of the refined surface drawn when a model but no mesh is given.
_RENDER_MAX_FACES = 50_000
_SLIDER_LOW = 0.5
_GL_PROBE_TIMEOUT_S = 60
_GL_PROBE = """
from vtkmodules.vtkRenderingCore import vtkRenderWindow, vtkRenderer
import vtkmodules.vtkRenderingOpenGL2
window = vtkRenderWindow()
window.SetOffScreenRendering(True)
window.AddRenderer(vtkRenderer())
window.SetSize(8, 8)
window.Render()
print("ok", window.GetClassName())
"""
_gl_checked: str | None = None  # "ok" once a probe rendered, else the reason it failed


# ------------------------------------------------------------------------------------------------------------------
# pyvista, imported on demand


def _headless() -> bool:
    """Whether there is no display to open windows on (Linux without DISPLAY)."""
    return sys.platform.startswith("linux") and not os.environ.get("DISPLAY")


def _pyvista(*, interactive: bool = False):
    """Imports pyvista, set up for EGL off-screen rendering when there is no display.

    The first call also checks that OpenGL renders here, in a child process that runs while pyvista imports.

    Raises:
        PcflowError: pyvista is missing, OpenGL cannot render here, or a window is wanted without a display.
    """
    global _gl_checked
    if _headless():
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    probe = _start_gl_probe() if _gl_checked is None else None
    try:
        try:
            import pyvista
        except ImportError as error:
            raise PcflowError(f"rendering needs pyvista ({error}); install it with: {_INSTALL_HINT}") from None
        if interactive and _headless():
            raise PcflowError("no display to open a window on (DISPLAY is not set); draw pictures with `pcflow render`")
        if probe is not None:
            _gl_checked = _finish_gl_probe(probe)
    finally:
        if isinstance(probe, subprocess.Popen) and probe.poll() is None:  # an error above left it running
            probe.kill()
            probe.wait()
    if _gl_checked != "ok":
        raise PcflowError(f"OpenGL cannot render here ({_gl_checked}); on Debian/Ubuntu: {_GL_HINT}")
    return pyvista


def _start_gl_probe() -> subprocess.Popen | str:
    """Starts the OpenGL check: a child process that renders a tiny window (a missing GL library crashes VTK, so
    not in this process); or why it could not start. `_finish_gl_probe` waits for its verdict."""
    try:
        return subprocess.Popen(
            [sys.executable, "-c", _GL_PROBE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    except OSError as error:
        return f"the OpenGL check failed to run: {error}"


def _finish_gl_probe(probe: subprocess.Popen | str) -> str:
    """Waits for a probe from `_start_gl_probe`: "ok" or the reason it failed."""
    if isinstance(probe, str):
        return probe
    try:
        stdout, stderr = probe.communicate(timeout=_GL_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        probe.kill()
        probe.communicate()
        return f"the OpenGL check failed to run: {error}"
    if probe.returncode == 0 and stdout.startswith("ok"):
        return "ok"
    if probe.returncode < 0:
        return f"a test render crashed with signal {-probe.returncode}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"a test render exited with status {probe.returncode}"


def _rgb(color) -> tuple[float, float, float]:
    return tuple(channel / 255.0 for channel in color)


# ------------------------------------------------------------------------------------------------------------------
# the scene


def _is_surface(model) -> bool:
    return getattr(model, "objective", None) == "surface"


def outlyingness(model, points: np.ndarray) -> np.ndarray:
    """What the model thresholds to call a point an outlier: its latent radius, or a surface model's distance
    (minus `score_samples`)."""
    return -model.score_samples(points) if _is_surface(model) else model.latent_radius(points)


def _levels(model, coverage: float) -> tuple[float, float]:
    """(latent radius of the drawn surface, outlyingness threshold) at a coverage: a surface model keeps its surface
    and moves only the threshold."""
    if _is_surface(model):
        return float(model.radius_), float(model.threshold_at(coverage))
    radius = float(model.radius_at(coverage))
    return radius, radius


@dataclass(eq=False)
class Scene:
    """The actors of one drawn scene and the state the coverage slider changes.

    Attributes:
        plotter: the pyvista plotter the actors live in (in its subplot active when the scene was built).
        points: (N, 3) float array of the cloud.
        radii: (N,) float array of the points' outlyingness (`outlyingness`: latent radii, or a surface model's
            distances; computed once), or None without a model.
        inside: (N,) bool array, True for points drawn as inliers (all True when outliers are unknown).
        model: the fitted model, or None.
        coverage: coverage the surface and colours show, or None without a model.
        radius: latent radius of that coverage, or None.
        volume: region volume at that radius (`model.region_volume`, input units), or None without a model.
        mesh_volume: volume enclosed by the drawn surface when it is watertight, else None.
        actors: layer name ("inliers", "outliers", "surface", "text") -> actor.
        layers: layer name -> PolyData drawn by that actor (points layers hold every point; their vertex cells
            select the layer's points).
        checkboxes: layer name -> checkbox widget (interactive scenes only).
        slider: the coverage slider widget, or None.
    """

    plotter: object
    points: np.ndarray
    radii: np.ndarray | None
    inside: np.ndarray
    model: object = None
    coverage: float | None = None
    radius: float | None = None
    volume: float | None = None
    mesh_volume: float | None = None
    actors: dict = field(default_factory=dict)
    layers: dict = field(default_factory=dict)
    checkboxes: dict = field(default_factory=dict)
    slider: object = None

    @property
    def n_inliers(self) -> int:
        return int(self.inside.sum())

    @property
    def n_outliers(self) -> int:
        return int(len(self.inside) - self.inside.sum())

    def outliers_known(self) -> bool:
        """Whether the scene splits inliers from outliers (a model or an inside mask was given)."""
        return "outliers" in self.layers

    def set_coverage(self, coverage: float) -> None:
        """Redraws the surface at the latent radius holding `coverage` of the training points and recolours
        the points outside it (latent radius > radius); needs a model. No refitting. A surface model keeps its
        surface and recolours the points whose distance exceeds the one that keeps `coverage` of the training points."""
        if self.model is None:
            raise PcflowError("set_coverage needs a model; the scene was built without one")
        coverage = float(coverage)
        if not 0.0 < coverage <= 1.0:
            raise PcflowError(f"coverage={coverage} is invalid; expected a share in (0, 1]")
        radius, threshold = _levels(self.model, coverage)
        if not radius > 0:
            raise PcflowError(f"coverage={coverage} gives latent radius {radius}; expected a positive radius")
        from pcflow.mesh import sphere_mesh

        if radius != self.radius:
            boundary = sphere_mesh(
                self.model.inverse_transform, radius, subdivisions=_LIVE_SUBDIVISIONS, tolerance=np.inf,
                check_intersections=False,
            )
            self.volume = float(self.model.region_volume(radius)[0])
            self.mesh_volume = float(boundary.mesh.volume)
            if "surface" in self.layers:
                self.layers["surface"].copy_from(_surface_polydata(boundary.mesh), deep=True)
        self.coverage, self.radius = coverage, radius
        self.set_inside(self.radii <= threshold)
        self._update_text()
        self.plotter.render()

    def set_inside(self, inside: np.ndarray) -> None:
        """Splits the points into the inlier and outlier layers: inside is an (N,) bool array."""
        self.inside = np.asarray(inside, dtype=bool)
        _select(self.layers["inliers"], np.flatnonzero(self.inside))
        if "outliers" in self.layers:
            _select(self.layers["outliers"], np.flatnonzero(~self.inside))

    def set_visible(self, name: str, visible: bool) -> None:
        """Shows or hides one layer ("inliers", "outliers", "surface")."""
        if name not in self.actors:
            raise PcflowError(f"no layer {name!r} in this scene; it has {', '.join(self.actors)}")
        self.actors[name].SetVisibility(bool(visible))
        self.plotter.render()

    def summary(self) -> str:
        """The text shown on screen: counts, and coverage and volume when known."""
        n = len(self.points)
        if self.outliers_known():
            lines = [f"inliers {self.n_inliers:,}   outliers {self.n_outliers:,}   of {n:,}"]
        else:
            lines = [f"{n:,} points"]
        if self.coverage is not None:
            lines.insert(0, f"coverage {self.coverage:.3f}   latent radius {self.radius:.3g}")
        if self.volume is not None:
            lines.append(f"region volume {self.volume:.4g}")
        elif self.mesh_volume is not None:
            lines.append(f"mesh volume {self.mesh_volume:.4g}")
        return "\n".join(lines)

    def _update_text(self) -> None:
        if "text" in self.actors:
            self.actors["text"].input = self.summary()


def build_scene(
    plotter,
    *,
    cloud,
    inside=None,
    mesh=None,
    model=None,
    interactive: bool = False,
    coverage: float | None = None,
    point_size: float = 4.0,
    surface_opacity: float = 0.35,
    radii: np.ndarray | None = None,
    text: bool = True,
    font_size: int = 7,
) -> Scene:
    """Adds the cloud, its outliers and the boundary surface to a plotter (its active subplot).

    With a model the points' latent radii are computed once and the outliers are the points whose radius
    exceeds the radius of `coverage` (for a surface model: whose distance exceeds the one of `coverage`, see
    `outlyingness`); without a model `inside` (if given) splits them, else all are drawn alike. Without a mesh but
    with a model, the surface is the model's boundary at `coverage` (a surface model's own surface).

    Args:
        plotter: a `pyvista.Plotter`.
        cloud: a `pcflow.io.PointCloud` of 3-D points (its colours colour the inliers when it has some).
        inside: (N,) bool array, True for inliers; ignored when a model is given.
        mesh: the boundary surface as a `trimesh.Trimesh`, or None.
        model: a fitted 3-D OneFlow (or any object with `latent_radius`, `radius_at`, `inverse_transform`,
            `region_volume`, `alpha`), or None.
        interactive: also add checkbox widgets toggling each layer and, with a model, a coverage slider.
        coverage: share of the training points inside the drawn region, default `1 - model.alpha`.
        point_size: point diameter in pixels (outliers are drawn 1.5 times larger).
        surface_opacity: opacity of the surface, in [0, 1].
        radii: (N,) outlyingness of the points (`outlyingness`) when already computed (saves a pass through the flow).
        text: show the counts and volume in the upper left corner.
        font_size: size of that text (pyvista font size; 7 draws 14 px letters).

    Returns:
        The `Scene`.

    Raises:
        PcflowError: points not 3-D, mask or radii of the wrong length, a model that is not 3-D, bad coverage.
    """
    points = _points(cloud)
    if not 0.0 <= surface_opacity <= 1.0:
        raise PcflowError(f"surface_opacity={surface_opacity} is invalid; expected a number in [0, 1]")
    if model is not None:
        if getattr(model, "n_features_in_", 3) != 3:
            raise PcflowError(f"cannot draw a {model.n_features_in_}-D model; expected a 3-D one")
        if coverage is None:
            coverage = 1.0 - float(model.alpha)
        if not 0.0 < coverage <= 1.0:
            raise PcflowError(f"coverage={coverage} is invalid; expected a share in (0, 1]")
        if radii is None:
            radii = outlyingness(model, points)
        radii = np.asarray(radii, dtype=np.float64)
        if radii.shape != (len(points),):
            raise PcflowError(f"radii has shape {radii.shape}; expected ({len(points)},)")
        inside = None
    elif inside is not None:
        inside = np.asarray(inside, dtype=bool)
        if inside.shape != (len(points),):
            raise PcflowError(f"inside has shape {inside.shape}; expected ({len(points)},), one flag per point")

    pv = _pyvista()
    colors = cloud.colors if getattr(cloud, "colors", None) is not None else None
    if colors is None:
        colors = np.tile(np.asarray(INLIER_COLOR, dtype=np.uint8), (len(points), 1))
    scene = Scene(plotter, points, radii, np.ones(len(points), dtype=bool), model=model)

    inliers = pv.PolyData(points)
    inliers.point_data["rgb"] = np.ascontiguousarray(colors, dtype=np.uint8)
    scene.layers["inliers"] = inliers
    scene.actors["inliers"] = plotter.add_mesh(
        inliers, scalars="rgb", rgb=True, style="points", point_size=point_size, render_points_as_spheres=True,
        show_scalar_bar=False, reset_camera=False,
    )
    if model is not None or inside is not None:
        outliers = pv.PolyData(points)
        scene.layers["outliers"] = outliers
        scene.actors["outliers"] = plotter.add_mesh(
            outliers, color=_rgb(OUTLIER_COLOR), style="points", point_size=1.5 * point_size,
            render_points_as_spheres=True, reset_camera=False,
        )

    if mesh is None and model is not None:
        from pcflow.mesh import boundary_mesh

        mesh = boundary_mesh(
            model, coverage=None if _is_surface(model) else coverage, max_faces=_RENDER_MAX_FACES,
            check_intersections=False,
        ).mesh
    if mesh is not None:
        surface = _surface_polydata(mesh)
        scene.layers["surface"] = surface
        scene.actors["surface"] = plotter.add_mesh(
            surface, color=_rgb(SURFACE_COLOR), opacity=surface_opacity, specular=0.3, reset_camera=False,
        )
        if mesh.is_watertight:
            scene.mesh_volume = abs(float(mesh.volume))

    if model is not None:
        scene.coverage = float(coverage)
        scene.radius, threshold = _levels(model, coverage)
        scene.volume = float(model.region_volume(scene.radius)[0])
        scene.set_inside(radii <= threshold)
    elif inside is not None:
        scene.set_inside(inside)
    else:
        scene.set_inside(np.ones(len(points), dtype=bool))

    if text:
        scene.actors["text"] = plotter.add_text(
            scene.summary(), position=(0.015, 0.985), viewport=True, font_size=font_size, color="black",
        )
        scene.actors["text"].prop.justification_vertical = "top"
    if interactive:
        _add_widgets(plotter, scene)
    plotter.reset_camera()
    return scene


def _points(cloud) -> np.ndarray:
    """The (N, 3) float64 coordinates of a cloud, or a PcflowError."""
    points = np.asarray(cloud.points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise PcflowError(f"cannot draw points of shape {points.shape}; expected (N, 3) with N > 0")
    return points


def _select(layer, index: np.ndarray) -> None:
    """Makes a points layer draw only the points at `index` (one vertex cell each)."""
    index = np.asarray(index, dtype=np.int64)
    layer.verts = np.column_stack([np.ones_like(index), index]).ravel()


def _surface_polydata(mesh):
    """A trimesh as pyvista PolyData with point normals (smooth shading that survives in-place updates)."""
    import pyvista as pv

    surface = pv.PolyData.from_regular_faces(
        np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64),
    )
    return surface.compute_normals(cell_normals=False, split_vertices=False, auto_orient_normals=False)


def _add_widgets(plotter, scene: Scene) -> None:
    """Checkboxes for each layer (lower left, labelled) and, with a model, the coverage slider."""
    size, gap = 26, 8
    labels = {"inliers": "points" if not scene.outliers_known() else "inliers", "outliers": "outliers",
              "surface": "surface"}
    colors = {"inliers": INLIER_COLOR, "outliers": OUTLIER_COLOR, "surface": SURFACE_COLOR}
    names = [name for name in ("inliers", "outliers", "surface") if name in scene.actors]
    for row, name in enumerate(names):
        y = gap + row * (size + gap)

        def toggle(state, name=name):
            scene.set_visible(name, state)

        scene.checkboxes[name] = plotter.add_checkbox_button_widget(
            toggle, value=True, position=(gap, y), size=size, border_size=3,
            color_on=_rgb(colors[name]), color_off="white", background_color="grey",
        )
        plotter.add_text(labels[name], position=(2 * gap + size, y + 4), font_size=9, color="black")
    if scene.model is not None:
        low = min(_SLIDER_LOW, scene.coverage)

        def slide(value):
            if value != scene.coverage:  # pyvista calls back once on creation: keep the surface drawn first
                scene.set_coverage(value)

        scene.slider = plotter.add_slider_widget(
            slide, rng=(low, 1.0), value=scene.coverage, title="coverage (1 - alpha)",
            pointa=(0.55, 0.08), pointb=(0.95, 0.08), interaction_event="always", style="modern", fmt="%.3f",
            title_height=0.025, color="black",
        )


# ------------------------------------------------------------------------------------------------------------------
# cameras


def default_up(source) -> str:
    """Up axis guessed from a file's suffix: "z" for LAS/LAZ (surveys), "-y" for PCD (camera frames), else "y"."""
    suffix = Path(str(source)).suffix.lower()
    if suffix in (".las", ".laz"):
        return "z"
    if suffix == ".pcd":
        return "-y"
    return "y"


def _frame(up: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors (front, right, up) of the viewing frame: the camera of the front view sits on `front`."""
    if up not in UP_AXES:
        raise PcflowError(f"up={up!r} is invalid; expected one of {', '.join(UP_AXES)}")
    axis = np.zeros(3)
    axis["xyz".index(up[-1])] = -1.0 if up.startswith("-") else 1.0
    front = np.cross(axis, [0.0, 1.0, 0.0]) if up[-1] == "x" else np.cross([1.0, 0.0, 0.0], axis)
    right = np.cross(axis, front)
    return front, right, axis


def _camera_direction(view: str, up: str) -> tuple[np.ndarray, np.ndarray]:
    """(direction from the scene to the camera, view-up vector) of a named view or a 3-vector direction."""
    front, right, axis = _frame(up)
    if not isinstance(view, str):
        direction = _direction(view)
        if abs(np.dot(direction, axis)) > 0.999:
            return direction, -front * np.sign(np.dot(direction, axis))
        return direction, axis
    table = {
        "iso": (front + right + 0.8 * axis, axis),
        "front": (front, axis),
        "back": (-front, axis),
        "side": (right, axis),
        "left": (-right, axis),
        "top": (axis, -front),
        "bottom": (-axis, front),
    }
    if view not in table:
        raise PcflowError(f"view {view!r} is unknown; expected one of {', '.join(VIEWS)}")
    return table[view]


def _direction(view) -> np.ndarray:
    try:
        direction = np.asarray(view, dtype=np.float64).reshape(3)
    except (TypeError, ValueError):
        raise PcflowError(f"view {view!r} is invalid; expected one of {', '.join(VIEWS)} or a 3-vector") from None
    norm = np.linalg.norm(direction)
    if not np.isfinite(norm) or norm == 0:
        raise PcflowError(f"view {view!r} is invalid; a direction needs finite, not all zero, components")
    return direction / norm


def set_view(plotter, view, up: str, *, zoom: float = 1.0) -> None:
    """Points the active subplot's camera at the scene from a named view (see `VIEWS`) or from a 3-vector
    direction (scene to camera, input axes)."""
    direction, viewup = _camera_direction(view, up)
    plotter.view_vector(direction, viewup=viewup)
    plotter.reset_camera()
    if zoom != 1.0:
        plotter.camera.zoom(zoom)


# ------------------------------------------------------------------------------------------------------------------
# pictures


def render_scene(
    path,
    *,
    cloud,
    inside=None,
    mesh=None,
    model=None,
    views=("iso", "front", "side"),
    size=(1500, 500),
    up: str | None = None,
    coverage: float | None = None,
    point_size: float | None = None,
) -> None:
    """Draws the scene off-screen from several views side by side and writes the picture (atomically).

    Args:
        path: output image, .png or .jpg.
        cloud, inside, mesh, model, coverage: as in `build_scene`.
        views: view names from `VIEWS` (relative to `up`) or 3-vector directions from the scene to the camera,
            one panel each, left to right.
        size: (width, height) of the whole picture in pixels.
        up: the scene's up axis (see `UP_AXES`); default guessed from `cloud.source` by `default_up`.
        point_size: point diameter in pixels; default from the panel size.

    Raises:
        PcflowError: a bad suffix, view, up axis or size; no pyvista or no OpenGL (saying what to install).
    """
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise PcflowError(f"{path}: cannot write pictures with suffix {path.suffix!r}; expected .png or .jpg")
    views = (views,) if isinstance(views, str) else tuple(views)
    if not views:
        raise PcflowError("views is empty; expected at least one view name")
    up = up or default_up(getattr(cloud, "source", ""))
    for view in views:
        _camera_direction(view, up)
    width, height = _check_size(size)
    point_size = point_size or _default_point_size(width / len(views), height)

    pv = _pyvista()
    radii = None if model is None else outlyingness(model, _points(cloud))
    if mesh is None and model is not None:
        from pcflow.mesh import boundary_mesh

        mesh = boundary_mesh(model, coverage=None if _is_surface(model) else coverage, max_faces=_RENDER_MAX_FACES,
                             check_intersections=False).mesh
    plotter = pv.Plotter(off_screen=True, shape=(1, len(views)), window_size=(width, height), border=False)
    try:
        plotter.set_background(_rgb(BACKGROUND_COLOR))
        for column, view in enumerate(views):
            plotter.subplot(0, column)
            build_scene(
                plotter, cloud=cloud, inside=inside, mesh=mesh, model=model, coverage=coverage,
                point_size=point_size, radii=radii, text=column == 0,
            )
            if isinstance(view, str):
                plotter.add_text(view, position="lower_right", font_size=8, color="grey")
            set_view(plotter, view, up, zoom=1.15)
        image = plotter.screenshot(return_img=True)
    finally:
        plotter.close()
    _write_image(path, image)


def render_turntable(
    path,
    *,
    cloud,
    inside=None,
    mesh=None,
    model=None,
    n_frames: int = 30,
    size=(400, 400),
    up: str | None = None,
    coverage: float | None = None,
    point_size: float | None = None,
    seconds: float = 3.0,
) -> None:
    """Writes a looping GIF of the scene turning once around its up axis (atomically).

    Args:
        path: output .gif.
        cloud, inside, mesh, model, coverage: as in `build_scene`.
        n_frames: frames per turn.
        size: (width, height) in pixels.
        up, point_size: as in `render_scene`.
        seconds: duration of one turn.
    """
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise PcflowError(f"{path}: a turntable is written as GIF; expected the suffix .gif")
    if not isinstance(n_frames, (int, np.integer)) or not 2 <= n_frames <= 360:
        raise PcflowError(f"n_frames={n_frames!r} is invalid; expected an integer from 2 to 360")
    up = up or default_up(getattr(cloud, "source", ""))
    _frame(up)
    width, height = _check_size(size)
    point_size = point_size or _default_point_size(width, height)

    pv = _pyvista()
    plotter = pv.Plotter(off_screen=True, window_size=(width, height))
    frames = []
    try:
        plotter.set_background(_rgb(BACKGROUND_COLOR))
        build_scene(plotter, cloud=cloud, inside=inside, mesh=mesh, model=model, coverage=coverage,
                    point_size=point_size)
        set_view(plotter, "iso", up, zoom=1.1)
        for _ in range(int(n_frames)):
            plotter.render()
            frames.append(plotter.screenshot(return_img=True))
            plotter.camera.Azimuth(360.0 / n_frames)
    finally:
        plotter.close()
    _write_gif(path, frames, duration_ms=1000.0 * seconds / n_frames)


def _check_size(size) -> tuple[int, int]:
    try:
        width, height = (int(value) for value in size)
    except (TypeError, ValueError):
        raise PcflowError(f"size={size!r} is invalid; expected (width, height) in pixels") from None
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise PcflowError(f"size={size!r} is invalid; expected width and height from 16 to 8192 pixels")
    return width, height


def _default_point_size(width: float, height: float) -> float:
    """Point diameter in pixels that reads well in a panel of this size (3 px at 500 px)."""
    return float(np.clip(min(width, height) / 160.0, 2.0, 8.0))


def _imageio():
    try:
        import imageio.v3 as iio
    except ImportError as error:
        raise PcflowError(f"writing pictures needs imageio ({error}); install it with: {_INSTALL_HINT}") from None
    return iio


def _write_image(path: Path, image: np.ndarray) -> None:
    from pcflow.io import atomic_output

    iio = _imageio()
    with atomic_output(path) as tmp:
        iio.imwrite(tmp, image, extension=path.suffix.lower())


def _write_gif(path: Path, frames: list, *, duration_ms: float) -> None:
    from pcflow.io import atomic_output

    iio = _imageio()
    with atomic_output(path) as tmp:
        iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=duration_ms, loop=0)


# ------------------------------------------------------------------------------------------------------------------
# the window


def view(
    cloud,
    *,
    model=None,
    mesh=None,
    inside=None,
    up: str | None = None,
    coverage: float | None = None,
    size=(1280, 860),
) -> None:
    """Opens an interactive window on the scene (blocks until it is closed).

    Checkboxes in the lower left toggle the inliers, outliers and surface; with a model, a slider sets the
    coverage (1 - alpha): the surface is redrawn at that coverage's latent radius (a given mesh is replaced by
    the model's) and the points outside it turn red, live, without refitting. The counts and the region's
    volume are shown in the upper left.

    Args:
        cloud, model, mesh, inside, coverage: as in `build_scene`.
        up: as in `render_scene`.
        size: (width, height) of the window in pixels.

    Raises:
        PcflowError: no display, no pyvista or no OpenGL.
    """
    up = up or default_up(getattr(cloud, "source", ""))
    _frame(up)
    width, height = _check_size(size)
    pv = _pyvista(interactive=True)
    plotter = pv.Plotter(window_size=(width, height), title=f"pcflow view {getattr(cloud, 'source', '')}".strip())
    plotter.set_background(_rgb(BACKGROUND_COLOR))
    build_scene(plotter, cloud=cloud, inside=inside, mesh=mesh, model=model, coverage=coverage,
                interactive=True, point_size=3.0, font_size=10)
    set_view(plotter, "iso", up)
    plotter.show()


def load_inputs(input_path, *, model_path=None, mesh_path=None, device: str = "cpu"):
    """Reads what `pcflow view` and `pcflow render` draw: (cloud, model or None, trimesh or None)."""
    from pcflow.io import read_cloud, read_mesh

    cloud = read_cloud(input_path)
    if cloud.points.shape[1] != 3:
        raise PcflowError(f"{input_path}: expected 3-D points, got {cloud.points.shape[1]} coordinates per point")
    model = None
    if model_path:
        from pcflow.detector import OneFlow

        model = OneFlow.load(model_path, device=device)
    mesh = read_mesh(mesh_path) if mesh_path else None
    return cloud, model, mesh
