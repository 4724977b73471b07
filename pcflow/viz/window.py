"""The interactive window: the scene with checkboxes per layer and, with a model, a live coverage slider."""

from __future__ import annotations

from .camera import _frame, check_size, default_up, set_view
from .gl import _pyvista
from .scene import BACKGROUND_COLOR, _rgb, build_scene


def view(
    cloud,
    *,
    model=None,
    mesh=None,
    inside=None,
    labels=None,
    object_meshes=(),
    plane_meshes=(),
    up: str | None = None,
    coverage: float | None = None,
    size=(1280, 860),
) -> None:
    """Opens an interactive window on the scene (blocks until it is closed).

    Checkboxes in the lower left toggle the inliers, outliers and surface (and a scene's object and plane
    surfaces); with a model, a slider sets the coverage (1 - alpha): the surface is redrawn at that coverage's
    latent radius (a given mesh is replaced by the model's) and the points outside it turn red, live, without
    refitting. The counts and the region's volume are shown in the upper left.

    Args:
        cloud, model, mesh, inside, labels, object_meshes, plane_meshes, coverage: as in `build_scene`.
        up: as in `render_scene`.
        size: (width, height) of the window in pixels.

    Raises:
        PcflowError: no display, no pyvista or no OpenGL.
    """
    up = up or default_up(getattr(cloud, "source", ""))
    _frame(up)
    width, height = check_size(size)
    pv = _pyvista(interactive=True)
    plotter = pv.Plotter(window_size=(width, height), title=f"pcflow view {getattr(cloud, 'source', '')}".strip())
    plotter.set_background(_rgb(BACKGROUND_COLOR))
    build_scene(plotter, cloud=cloud, inside=inside, mesh=mesh, model=model, labels=labels,
                object_meshes=object_meshes, plane_meshes=plane_meshes, coverage=coverage, interactive=True,
                point_size=3.0, font_size=10)
    set_view(plotter, "iso", up)
    plotter.show()
