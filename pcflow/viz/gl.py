"""The pyvista import, set up for off-screen rendering without a display, and the check that OpenGL renders here."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from ..errors import PcflowError

_INSTALL_HINT = 'pip install "pcflow[viz]"'
_GL_HINT = "apt-get install libegl1 libgl1-mesa-dri"
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
_gl_probe: subprocess.Popen | str | None = None  # a probe `start_gl_check` started that no one has waited for yet


def _headless() -> bool:
    """Whether there is no display to open windows on (Linux without DISPLAY)."""
    return sys.platform.startswith("linux") and not os.environ.get("DISPLAY")


def start_gl_check() -> None:
    """Starts the check that OpenGL renders here (where pyvista is installed), for a picture drawn later: a
    command that ends with a picture calls it first, so that the check runs while the command works, and `_pyvista`
    then only reads its verdict."""
    global _gl_probe
    if _gl_checked is None and _gl_probe is None and importlib.util.find_spec("pyvista") is not None:
        _set_up_headless()
        _gl_probe = _start_gl_probe()


def _set_up_headless() -> None:
    """Off-screen rendering through EGL where there is no display (before pyvista or a probe loads VTK)."""
    if _headless():
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def _pyvista(*, interactive: bool = False):
    """Imports pyvista, set up for EGL off-screen rendering when there is no display.

    The first call also checks that OpenGL renders here, in a child process that runs while pyvista imports (or
    since `start_gl_check`). Once it rendered, pyvista's own check (``ALLOW_PLOTTING``) is not made again.

    Raises:
        PcflowError: pyvista is missing, OpenGL cannot render here, or a window is wanted without a display.
    """
    global _gl_checked, _gl_probe
    _set_up_headless()
    probe = None
    if _gl_checked is None:
        probe, _gl_probe = _gl_probe or _start_gl_probe(), None
    try:
        try:
            import pyvista
        except ImportError as error:
            raise PcflowError(f"rendering needs pyvista ({error}); install it with: {_INSTALL_HINT}") from None
        if interactive and _headless():
            raise PcflowError("no display to open a window on (DISPLAY is not set); draw pictures with `pcflow render`")
        if probe is not None:
            _gl_checked = _finish_gl_probe(probe)
            if _gl_checked == "ok":
                os.environ.setdefault("ALLOW_PLOTTING", "true")
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
