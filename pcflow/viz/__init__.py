"""Pictures and an interactive viewer of a cloud, its outliers and the region's boundary surface, or of a scene's
objects and planes (pyvista).

`gl` imports pyvista and checks that OpenGL renders here; `camera` holds the views; `scene` draws the cloud, the
outliers and the surface into a plotter; `render` writes pictures and turntables off-screen; `window` opens the
interactive viewer.
"""

from .camera import UP_AXES, VIEWS, default_up, set_view
from .render import IMAGE_SUFFIXES, render_scene, render_turntable
from .scene import (
    BACKGROUND_COLOR, INLIER_COLOR, OBJECT_PALETTE, OUTLIER_COLOR, PLANE_COLOR, PLANE_OPACITY, SURFACE_COLOR, Scene,
    build_scene, label_colors, object_color, outlyingness,
)
from .window import view

__all__ = [
    "BACKGROUND_COLOR", "IMAGE_SUFFIXES", "INLIER_COLOR", "OBJECT_PALETTE", "OUTLIER_COLOR", "PLANE_COLOR",
    "PLANE_OPACITY", "SURFACE_COLOR", "Scene", "UP_AXES", "VIEWS", "build_scene", "default_up", "label_colors",
    "object_color", "outlyingness", "render_scene", "render_turntable", "set_view", "view",
]
