"""The drawn scene: a cloud, its outliers and the region's boundary surface (or a scene's objects and planes, each
with its surface) as pyvista actors, with their widgets."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import PcflowError
from ..scene import OUTLIER, PLANE, is_object, is_plane
from .gl import _pyvista

#: Colour of points when the cloud has none of its own, as (r, g, b) uint8.
INLIER_COLOR = (40, 110, 190)
#: Colour of the outliers.
OUTLIER_COLOR = (230, 20, 20)
#: Colour of the boundary surface.
SURFACE_COLOR = (70, 175, 165)
#: Colour behind the scene.
BACKGROUND_COLOR = (255, 255, 255)
#: Colours of a scene's objects, object k in ``OBJECT_PALETTE[k % 7]``, its points and its surface alike: the Tableau
#: 10 qualitative palette less its red (the outliers'), brown (near that red) and grey (the planes').
OBJECT_PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (148, 103, 189), (227, 119, 194), (188, 189, 34), (23, 190, 207),
)
#: Colour of a scene's plane points and plane surfaces.
PLANE_COLOR = (150, 150, 150)
#: Opacity of the plane surfaces: the objects stand out through them.
PLANE_OPACITY = 0.3

#: Icosphere level of the surface the coverage slider redraws (5120 faces, no refinement: fast enough to follow).
_LIVE_SUBDIVISIONS = 4
#: Face budget of the refined surface drawn when a model but no mesh is given.
_RENDER_MAX_FACES = 50_000
_SLIDER_LOW = 0.5


def _rgb(color) -> tuple[float, float, float]:
    return tuple(channel / 255.0 for channel in color)


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
        labels: (N,) int64 array of the points' scene labels (`pcflow.scene`: -1 outlier, k object k, PLANE + k
            plane k), or None.
        model: the fitted model, or None.
        coverage: coverage the surface and colours show, or None without a model.
        radius: latent radius of that coverage, or None.
        volume: region volume at that radius (`model.region_volume`, input units), or None without a model.
        mesh_volume: volume enclosed by the drawn surface when it is watertight, else None.
        actors: layer name ("inliers", "outliers", "surface", "objects", "planes", "text") -> actor.
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
    labels: np.ndarray | None = None
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
        from ..meshing import model_template, sphere_mesh

        if radius != self.radius:
            boundary = sphere_mesh(
                self.model.inverse_transform, radius, subdivisions=_LIVE_SUBDIVISIONS, tolerance=np.inf,
                check_intersections=False, template=model_template(self.model),
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
        """Shows or hides one layer ("inliers", "outliers", "surface", "objects", "planes")."""
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
        if self.labels is not None:
            objects, planes = _label_counts(self.labels)
            lines.append(f"objects {objects}   planes {planes}")
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


def build_scene(plotter, *, cloud, inside=None, mesh=None, model=None, labels=None, object_meshes=(),
                plane_meshes=(), interactive: bool = False, coverage: float | None = None, point_size: float = 4.0,
                surface_opacity: float = 0.35, plane_opacity: float = PLANE_OPACITY, radii: np.ndarray | None = None,
                text: bool = True, font_size: int = 7) -> Scene:
    """Adds the cloud, its outliers and the boundary surface (or a scene's objects and planes) to a plotter (its
    active subplot).

    With a model the points' latent radii are computed once and the outliers are the points whose radius
    exceeds the radius of `coverage` (for a surface model: whose distance exceeds the one of `coverage`, see
    `outlyingness`); without a model `inside` (if given) splits them, else all are drawn alike. Without a mesh but
    with a model, the surface is the model's boundary at `coverage` (a surface model's own surface).

    A scene's `labels` colour the points instead: object k in ``OBJECT_PALETTE[k % 7]`` (its surface in
    `object_meshes` the same), plane points in `PLANE_COLOR` (plane surfaces translucent, `plane_opacity`),
    outliers in `OUTLIER_COLOR`. Without labels, `object_meshes` and `plane_meshes` the scene is drawn as before.

    Args:
        plotter: a `pyvista.Plotter`.
        cloud: a `pcflow.io.PointCloud` of 3-D points (its colours colour the inliers when it has some).
        inside: (N,) bool array, True for inliers; ignored when a model is given.
        mesh: the boundary surface as a `trimesh.Trimesh`, or None.
        model: a fitted 3-D OneFlow (or any object with `latent_radius`, `radius_at`, `inverse_transform`,
            `region_volume`, `alpha`), or None.
        labels: (N,) int array of scene labels (`pcflow.scene`: -1 outlier, k >= 0 object k, PLANE + k plane k), or
            None; not with `inside` or a model.
        object_meshes: object k's surface (a trimesh) at index (or key) k of a sequence (or mapping); None entries
            are skipped.
        plane_meshes: plane k's surface, likewise.
        interactive: also add checkbox widgets toggling each layer and, with a model, a coverage slider.
        coverage: share of the training points inside the drawn region, default `1 - model.alpha`.
        point_size: point diameter in pixels (outliers are drawn 1.5 times larger).
        surface_opacity: opacity of the surface and of the object surfaces, in [0, 1].
        plane_opacity: opacity of the plane surfaces, in [0, 1].
        radii: (N,) outlyingness of the points (`outlyingness`) when already computed (saves a pass through the flow).
        text: show the counts and volume in the upper left corner.
        font_size: size of that text (pyvista font size; 7 draws 14 px letters).

    Returns:
        The `Scene`.

    Raises:
        PcflowError: points not 3-D, mask, radii or labels of the wrong length, labels below -1 or with a mask or a
            model, a model that is not 3-D, bad coverage.
    """
    points = _points(cloud)
    for name, opacity in (("surface_opacity", surface_opacity), ("plane_opacity", plane_opacity)):
        if not 0.0 <= opacity <= 1.0:
            raise PcflowError(f"{name}={opacity} is invalid; expected a number in [0, 1]")
    object_meshes, plane_meshes = _indexed(object_meshes, "object_meshes"), _indexed(plane_meshes, "plane_meshes")
    if labels is not None:
        labels = _check_labels(labels, len(points), inside=inside, model=model)
        inside = labels != OUTLIER
    if model is not None:
        coverage, radii = _model_levels(model, points, coverage, radii)
        inside = None
    elif inside is not None:
        inside = np.asarray(inside, dtype=bool)
        if inside.shape != (len(points),):
            raise PcflowError(f"inside has shape {inside.shape}; expected ({len(points)},), one flag per point")

    pv = _pyvista()
    scene = Scene(plotter, points, radii, np.ones(len(points), dtype=bool), model=model, labels=labels)
    _add_points(pv, scene, cloud, point_size, outliers=model is not None or inside is not None)
    if mesh is None and model is not None:
        mesh = model_surface(model, coverage)
    if mesh is not None:
        _add_surface(scene, mesh, surface_opacity)
    if object_meshes:
        _add_group(scene, "objects", object_meshes, object_color, surface_opacity)
    if plane_meshes:
        _add_group(scene, "planes", plane_meshes, lambda k: PLANE_COLOR, plane_opacity)
    _split_points(scene, coverage, inside)
    if text:
        scene.actors["text"] = plotter.add_text(
            scene.summary(), position=(0.015, 0.985), viewport=True, font_size=font_size, color="black",
        )
        scene.actors["text"].prop.justification_vertical = "top"
    if interactive:
        _add_widgets(plotter, scene)
    plotter.reset_camera()
    return scene


def model_surface(model, coverage: float | None):
    """The surface drawn for a model without a mesh: its refined boundary at `coverage` (a surface model's own
    surface), as a trimesh of at most `_RENDER_MAX_FACES` faces."""
    from ..meshing import boundary_mesh

    return boundary_mesh(
        model, coverage=None if _is_surface(model) else coverage, max_faces=_RENDER_MAX_FACES,
        check_intersections=False,
    ).mesh


def _split_points(scene: Scene, coverage: float | None, inside) -> None:
    """The first split into inliers and outliers: by the model at `coverage`, else by `inside`, else none."""
    if scene.model is not None:
        scene.coverage = float(coverage)
        scene.radius, threshold = _levels(scene.model, coverage)
        scene.volume = float(scene.model.region_volume(scene.radius)[0])
        scene.set_inside(scene.radii <= threshold)
    elif inside is not None:
        scene.set_inside(inside)
    else:
        scene.set_inside(np.ones(len(scene.points), dtype=bool))


def _model_levels(model, points: np.ndarray, coverage: float | None, radii) -> tuple[float, np.ndarray]:
    """(coverage, (N,) float64 outlyingness of the points) of a scene with a model: the defaults filled in
    (`1 - model.alpha`, `outlyingness`) and checked."""
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
    return coverage, radii


def _add_points(pv, scene: Scene, cloud, point_size: float, *, outliers: bool) -> None:
    """Adds the layer of inliers (in the cloud's colours, else `INLIER_COLOR`) and, with `outliers`, the layer of
    outliers (`OUTLIER_COLOR`, 1.5 times larger); both hold every point until `Scene.set_inside` selects theirs.
    A scene's labels colour the inliers by `label_colors`."""
    points, plotter = scene.points, scene.plotter
    colors = cloud.colors if getattr(cloud, "colors", None) is not None else None
    if scene.labels is not None:
        colors = label_colors(scene.labels)
    elif colors is None:
        colors = np.tile(np.asarray(INLIER_COLOR, dtype=np.uint8), (len(points), 1))
    inliers = pv.PolyData(points)
    inliers.point_data["rgb"] = np.ascontiguousarray(colors, dtype=np.uint8)
    scene.layers["inliers"] = inliers
    scene.actors["inliers"] = plotter.add_mesh(
        inliers, scalars="rgb", rgb=True, style="points", point_size=point_size, render_points_as_spheres=True,
        show_scalar_bar=False, reset_camera=False,
    )
    if outliers:
        layer = pv.PolyData(points)
        scene.layers["outliers"] = layer
        scene.actors["outliers"] = plotter.add_mesh(
            layer, color=_rgb(OUTLIER_COLOR), style="points", point_size=1.5 * point_size,
            render_points_as_spheres=True, reset_camera=False,
        )


def _add_surface(scene: Scene, mesh, opacity: float) -> None:
    """Adds the boundary surface (a trimesh) as a semi-transparent layer; a watertight one gives `Scene.mesh_volume`."""
    surface = _surface_polydata(mesh)
    scene.layers["surface"] = surface
    scene.actors["surface"] = scene.plotter.add_mesh(
        surface, color=_rgb(SURFACE_COLOR), opacity=opacity, specular=0.3, reset_camera=False,
    )
    if mesh.is_watertight:
        scene.mesh_volume = abs(float(mesh.volume))


def object_color(k: int) -> tuple[int, int, int]:
    """The colour of object k: ``OBJECT_PALETTE[k % 7]``."""
    return OBJECT_PALETTE[int(k) % len(OBJECT_PALETTE)]


def label_colors(labels: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 colours of labelled points: object k `object_color(k)`, planes `PLANE_COLOR`, outliers
    `OUTLIER_COLOR`."""
    labels = np.asarray(labels)
    colors = np.tile(np.asarray(OUTLIER_COLOR, dtype=np.uint8), (len(labels), 1))
    objects = is_object(labels)
    colors[objects] = np.asarray(OBJECT_PALETTE, dtype=np.uint8)[labels[objects] % len(OBJECT_PALETTE)]
    colors[is_plane(labels)] = PLANE_COLOR
    return colors


def _check_labels(labels, n: int, *, inside, model) -> np.ndarray:
    """The labels as an (n,) int64 array, or a PcflowError."""
    if model is not None or inside is not None:
        raise PcflowError("labels split the points into objects, planes and outliers; pass labels without a model "
                          "or an inside mask")
    array = np.asarray(labels)
    if array.shape != (n,):
        raise PcflowError(f"labels has shape {array.shape}; expected ({n},), one label per point")
    if array.dtype.kind not in "iu":
        if array.dtype.kind != "f" or not np.array_equal(array, np.round(array)):
            raise PcflowError(f"labels has dtype {array.dtype}; expected integer labels")
    array = array.astype(np.int64)
    if n and array.min() < OUTLIER:
        raise PcflowError(f"labels holds {array.min()}; expected -1 (outlier), k (object k) or {PLANE} + k "
                          "(plane k) for points with finite coordinates")
    return array


def _label_counts(labels: np.ndarray) -> tuple[int, int]:
    """(number of objects, number of planes) with points among `labels`."""
    return len(np.unique(labels[is_object(labels)])), len(np.unique(labels[is_plane(labels)]))


def _indexed(meshes, name: str) -> dict:
    """Index -> mesh of a sequence or mapping of meshes (None entries dropped), sorted by index."""
    if meshes is None:
        return {}
    items = meshes.items() if hasattr(meshes, "items") else enumerate(meshes)
    out = {}
    for key, mesh in items:
        if mesh is None:
            continue
        if not isinstance(key, (int, np.integer)) or key < 0:
            raise PcflowError(f"{name} has the key {key!r}; expected indices 0, 1, ...")
        if not hasattr(mesh, "faces") or not hasattr(mesh, "vertices"):
            raise PcflowError(f"{name}[{key}] is a {type(mesh).__name__}; expected a trimesh.Trimesh")
        out[int(key)] = mesh
    return dict(sorted(out.items()))


def _add_group(scene: Scene, name: str, meshes: dict, color_of, opacity: float) -> None:
    """Adds several surfaces as one layer, surface k in `color_of(k)` (the same colour over each surface)."""
    import pyvista as pv

    vertices, faces, colors, offset = [], [], [], 0
    for k, mesh in meshes.items():
        vertices.append(np.asarray(mesh.vertices, dtype=np.float64))
        faces.append(np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3) + offset)
        colors.append(np.tile(np.asarray(color_of(k), dtype=np.uint8), (len(mesh.vertices), 1)))
        offset += len(mesh.vertices)
    surface = pv.PolyData.from_regular_faces(np.concatenate(vertices), np.concatenate(faces))
    surface = surface.compute_normals(cell_normals=False, split_vertices=False, auto_orient_normals=False)
    surface.point_data["rgb"] = np.concatenate(colors)
    scene.layers[name] = surface
    scene.actors[name] = scene.plotter.add_mesh(
        surface, scalars="rgb", rgb=True, opacity=opacity, specular=0.3, show_scalar_bar=False, reset_camera=False,
    )


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
              "surface": "surface", "objects": "objects", "planes": "planes"}
    colors = {"inliers": INLIER_COLOR if scene.labels is None else OBJECT_PALETTE[0], "outliers": OUTLIER_COLOR,
              "surface": SURFACE_COLOR, "objects": OBJECT_PALETTE[0], "planes": PLANE_COLOR}
    names = [name for name in ("inliers", "outliers", "surface", "objects", "planes") if name in scene.actors]
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
