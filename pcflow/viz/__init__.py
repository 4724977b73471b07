"""Pictures and an interactive viewer of a cloud, its outliers and the region's boundary surface (pyvista).

`gl` imports pyvista and checks that OpenGL renders here; `camera` holds the views; `scene` draws the cloud, the
outliers and the surface into a plotter; `render` writes pictures and turntables off-screen; `window` opens the
interactive viewer.
"""

from .camera import UP_AXES, VIEWS, default_up, set_view
from .render import IMAGE_SUFFIXES, render_scene, render_turntable
from .scene import BACKGROUND_COLOR, INLIER_COLOR, OUTLIER_COLOR, SURFACE_COLOR, Scene, build_scene, outlyingness
from .window import view

__all__ = [
    "BACKGROUND_COLOR", "IMAGE_SUFFIXES", "INLIER_COLOR", "OUTLIER_COLOR", "SURFACE_COLOR", "Scene", "UP_AXES",
    "VIEWS", "build_scene", "default_up", "outlyingness", "render_scene", "render_turntable", "set_view", "view",
]
