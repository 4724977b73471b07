"""Pictures of a scene drawn off-screen: several views side by side in a PNG or JPEG, or a turntable GIF."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import PcflowError
from .camera import _camera_direction, _frame, check_size, default_up, set_view
from .gl import _INSTALL_HINT, _pyvista
from .scene import BACKGROUND_COLOR, _points, _rgb, build_scene, model_surface, outlyingness

#: Image suffixes `render_scene` writes.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def render_scene(path, *, cloud, inside=None, mesh=None, model=None, labels=None, object_meshes=(), plane_meshes=(),
                 views=("iso", "front", "side"), size=(1500, 500), up: str | None = None,
                 coverage: float | None = None, point_size: float | None = None) -> None:
    """Draws the scene off-screen from several views side by side and writes the picture (atomically).

    Args:
        path: output image, .png or .jpg.
        cloud, inside, mesh, model, labels, object_meshes, plane_meshes, coverage: as in `build_scene`.
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
    width, height = check_size(size)
    point_size = point_size or _default_point_size(width / len(views), height)

    pv = _pyvista()
    radii = None if model is None else outlyingness(model, _points(cloud))
    if mesh is None and model is not None:
        mesh = model_surface(model, coverage)
    plotter = pv.Plotter(off_screen=True, shape=(1, len(views)), window_size=(width, height), border=False)
    try:
        plotter.set_background(_rgb(BACKGROUND_COLOR))
        for column, view in enumerate(views):
            plotter.subplot(0, column)
            build_scene(
                plotter, cloud=cloud, inside=inside, mesh=mesh, model=model, labels=labels,
                object_meshes=object_meshes, plane_meshes=plane_meshes, coverage=coverage, point_size=point_size,
                radii=radii, text=column == 0,
            )
            if isinstance(view, str):
                plotter.add_text(view, position="lower_right", font_size=8, color="grey")
            set_view(plotter, view, up, zoom=1.15)
        image = plotter.screenshot(return_img=True)
    finally:
        plotter.close()
    _write_image(path, image)


def render_turntable(path, *, cloud, inside=None, mesh=None, model=None, labels=None, object_meshes=(),
                     plane_meshes=(), n_frames: int = 30, size=(400, 400), up: str | None = None,
                     coverage: float | None = None, point_size: float | None = None, seconds: float = 3.0) -> None:
    """Writes a looping GIF of the scene turning once around its up axis (atomically).

    Args:
        path: output .gif.
        cloud, inside, mesh, model, labels, object_meshes, plane_meshes, coverage: as in `build_scene`.
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
    width, height = check_size(size)
    point_size = point_size or _default_point_size(width, height)

    pv = _pyvista()
    plotter = pv.Plotter(off_screen=True, window_size=(width, height))
    frames = []
    try:
        plotter.set_background(_rgb(BACKGROUND_COLOR))
        build_scene(plotter, cloud=cloud, inside=inside, mesh=mesh, model=model, labels=labels,
                    object_meshes=object_meshes, plane_meshes=plane_meshes, coverage=coverage, point_size=point_size)
        set_view(plotter, "iso", up, zoom=1.1)
        for _ in range(int(n_frames)):
            plotter.render()
            frames.append(plotter.screenshot(return_img=True))
            plotter.camera.Azimuth(360.0 / n_frames)
    finally:
        plotter.close()
    _write_gif(path, frames, duration_ms=1000.0 * seconds / n_frames)


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
    from ..io import atomic_output

    iio = _imageio()
    with atomic_output(path) as tmp:
        iio.imwrite(tmp, image, extension=path.suffix.lower())


def _write_gif(path: Path, frames: list, *, duration_ms: float) -> None:
    from ..io import atomic_output

    iio = _imageio()
    with atomic_output(path) as tmp:
        iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=duration_ms, loop=0)
