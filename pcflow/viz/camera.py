"""Where the camera looks from: up axes, named views relative to them, and the size of a picture or window."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import PcflowError

#: View names understood by `render_scene`, relative to the up axis (camera on that side of the scene).
VIEWS = ("iso", "front", "back", "side", "left", "top", "bottom")
#: Up axes understood by `render_scene` and `view`.
UP_AXES = ("x", "y", "z", "-x", "-y", "-z")


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


def check_size(size) -> tuple[int, int]:
    try:
        width, height = (int(value) for value in size)
    except (TypeError, ValueError):
        raise PcflowError(f"size={size!r} is invalid; expected (width, height) in pixels") from None
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise PcflowError(f"size={size!r} is invalid; expected width and height from 16 to 8192 pixels")
    return width, height
