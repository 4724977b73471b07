"""Conversions between pcflow's clouds and meshes and those of numpy, Open3D and trimesh."""

from __future__ import annotations

import os

import numpy as np
import trimesh

from .errors import PcflowError
from .io import PointCloud, read_cloud
from .meshing import BoundaryMesh

_ACCEPTED = ("a numpy array of shape (N, D), a pcflow PointCloud or BoundaryMesh, an Open3D PointCloud or "
             "TriangleMesh, a trimesh PointCloud or Trimesh, or a path to a point cloud file")


def _open3d():
    """The open3d module (an optional dependency: ``pip install pcflow[peers]``)."""
    try:
        import open3d
    except ImportError as error:
        raise PcflowError(f"this needs Open3D, which cannot be imported ({error}); install it with "
                          "pip install 'pcflow[peers]'") from None
    return open3d


def _is_open3d(obj) -> bool:
    # by the type's module, so that open3d is imported only when an Open3D object is given
    return type(obj).__module__.split(".")[0] == "open3d"


def cloud_points(obj) -> np.ndarray | None:
    """The points of a point cloud or mesh object or file, or None when `obj` is none of those.

    Arrays, lists, data frames and other array-likes give None: the caller validates them as arrays (`OneFlow` does,
    scikit-learn style).

    Args:
        obj: a pcflow `PointCloud` or `BoundaryMesh`, an Open3D ``geometry.PointCloud``, ``geometry.TriangleMesh`` or
            ``t.geometry.PointCloud``, a trimesh ``PointCloud`` or ``Trimesh`` (its vertices), or a path (`str` or
            `os.PathLike`, read with `pcflow.io.read_cloud`).

    Returns:
        (N, D) float64 array, or None.
    """
    if isinstance(obj, (str, os.PathLike)):
        return read_cloud(obj).points
    if isinstance(obj, PointCloud):
        return obj.points
    if isinstance(obj, BoundaryMesh):
        return np.asarray(obj.mesh.vertices, dtype=np.float64)
    if isinstance(obj, (trimesh.PointCloud, trimesh.Trimesh)):
        return np.asarray(obj.vertices, dtype=np.float64)
    if _is_open3d(obj):
        o3d = _open3d()
        if isinstance(obj, o3d.geometry.PointCloud):
            return np.asarray(obj.points, dtype=np.float64)
        if isinstance(obj, o3d.geometry.TriangleMesh):
            return np.asarray(obj.vertices, dtype=np.float64)
        if isinstance(obj, o3d.t.geometry.PointCloud):
            return obj.point.positions.numpy().astype(np.float64)
        raise PcflowError(f"cannot take points from an Open3D {type(obj).__name__}; expected {_ACCEPTED}")
    return None


def as_points(obj) -> np.ndarray:
    """The points of `obj` as an (N, D) float64 array.

    Args:
        obj: anything `cloud_points` takes, or an (N, D) array-like of numbers.

    Returns:
        (N, D) float64 array (a copy only where a conversion needs one).

    Raises:
        PcflowError: an object of another type, or an array that is not (N, D) numbers.

    Example:
        >>> as_points(trimesh.PointCloud([[0, 0, 0], [1, 2, 3]])).tolist()
        [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]
        >>> as_points({"x": 1})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        pcflow.errors.PcflowError: cannot take points from a 'dict' object; expected a numpy array of shape (N, D), ...
    """
    points = cloud_points(obj)
    if points is not None:
        return points
    if isinstance(obj, (dict, set)) or obj is None:
        raise PcflowError(f"cannot take points from a {type(obj).__name__!r} object; expected {_ACCEPTED}")
    try:
        points = np.asarray(obj, dtype=np.float64)
    except (TypeError, ValueError):
        raise PcflowError(f"cannot take points from a {type(obj).__name__!r} object; expected {_ACCEPTED}") from None
    if points.ndim != 2:
        raise PcflowError(f"points must be an (N, D) array, got shape {points.shape}")
    return points


def _colors_01(colors: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 colours as floats in [0, 1], as Open3D keeps them."""
    return np.asarray(colors[:, :3], dtype=np.float64) / 255.0


def _colors_uint8(colors: np.ndarray) -> np.ndarray:
    """Open3D's (N, 3) float colours in [0, 1] as uint8."""
    return np.clip(np.round(np.asarray(colors) * 255.0), 0, 255).astype(np.uint8)


def _normals_of(cloud: PointCloud) -> np.ndarray | None:
    names = () if cloud.fields is None else cloud.fields.dtype.names
    if all(name in names for name in ("nx", "ny", "nz")):
        return np.stack([cloud.fields[name].astype(np.float64) for name in ("nx", "ny", "nz")], axis=1)
    return None


def _three_d(points: np.ndarray, library: str) -> np.ndarray:
    if points.ndim != 2 or points.shape[1] != 3:
        raise PcflowError(f"{library} needs 3-D points, got an array of shape {points.shape}")
    return points


def _trimesh_vertex_colors(mesh: trimesh.Trimesh) -> np.ndarray | None:
    visual = mesh.visual
    if getattr(visual, "kind", None) == "vertex":
        return np.asarray(visual.vertex_colors)[:, :3]
    return None


def to_open3d(obj):
    """An Open3D geometry holding `obj`.

    Clouds (a pcflow `PointCloud`, a trimesh ``PointCloud``, an (N, 3) array or a path) become an
    ``open3d.geometry.PointCloud`` with their colours (and a pcflow cloud's ``nx``/``ny``/``nz`` normals) where they
    have them; meshes (a `BoundaryMesh`, a ``trimesh.Trimesh``) an ``open3d.geometry.TriangleMesh`` with vertex
    normals (and vertex colours where the mesh has them). Open3D geometries are returned as they are.

    Args:
        obj: the cloud or mesh.

    Returns:
        ``open3d.geometry.PointCloud`` or ``open3d.geometry.TriangleMesh``.

    Raises:
        PcflowError: Open3D is not installed, points are not 3-D, or `obj` is of another type.

    Example:
        >>> mesh = to_open3d(trimesh.creation.icosphere())  # doctest: +SKIP
        >>> mesh.is_watertight(), mesh.has_vertex_normals()  # doctest: +SKIP
        (True, True)
    """
    o3d = _open3d()
    if _is_open3d(obj):
        return obj
    if isinstance(obj, BoundaryMesh):
        obj = obj.mesh
    if isinstance(obj, trimesh.Trimesh):
        mesh = o3d.geometry.TriangleMesh(
            o3d.utility.Vector3dVector(np.array(obj.vertices, dtype=np.float64)),  # copies: trimesh's are read-only
            o3d.utility.Vector3iVector(np.array(obj.faces, dtype=np.int32)),
        )
        mesh.vertex_normals = o3d.utility.Vector3dVector(np.array(obj.vertex_normals, dtype=np.float64))
        colors = _trimesh_vertex_colors(obj)
        if colors is not None:
            mesh.vertex_colors = o3d.utility.Vector3dVector(_colors_01(colors))
        return mesh
    if isinstance(obj, (str, os.PathLike)):
        obj = read_cloud(obj)
    colors = normals = None
    if isinstance(obj, PointCloud):
        points, colors, normals = obj.points, obj.colors, _normals_of(obj)
    elif isinstance(obj, trimesh.PointCloud):
        points = np.asarray(obj.vertices, dtype=np.float64)
        colors = np.asarray(obj.colors) if len(obj.colors) else None
    else:
        points = as_points(obj)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.array(_three_d(points, "Open3D"))))
    if colors is not None:
        cloud.colors = o3d.utility.Vector3dVector(_colors_01(colors))
    if normals is not None:
        cloud.normals = o3d.utility.Vector3dVector(normals)
    return cloud


def to_trimesh(obj):
    """A trimesh geometry holding `obj`.

    Clouds (a pcflow `PointCloud`, an Open3D ``geometry.PointCloud``, an (N, 3) array or a path) become a
    ``trimesh.PointCloud`` with their colours where they have them; meshes (a `BoundaryMesh`, whose own `mesh` is
    returned, or an Open3D ``geometry.TriangleMesh``) a ``trimesh.Trimesh``, vertices and faces in the same order.
    trimesh geometries are returned as they are.

    Args:
        obj: the cloud or mesh.

    Returns:
        ``trimesh.PointCloud`` or ``trimesh.Trimesh``.

    Raises:
        PcflowError: points are not 3-D, or `obj` is of another type.

    Example:
        >>> rgb = np.array([(255, 0, 0)] * 3, dtype=[("red", "u1"), ("green", "u1"), ("blue", "u1")])
        >>> cloud = PointCloud(np.eye(3), rgb)
        >>> to_trimesh(cloud).colors[0].tolist()  # RGBA
        [255, 0, 0, 255]
    """
    if isinstance(obj, (trimesh.PointCloud, trimesh.Trimesh)):
        return obj
    if isinstance(obj, BoundaryMesh):
        return obj.mesh
    if isinstance(obj, (str, os.PathLike)):
        obj = read_cloud(obj)
    colors = None
    if isinstance(obj, PointCloud):
        points, colors = obj.points, obj.colors
    elif _is_open3d(obj):
        o3d = _open3d()
        if isinstance(obj, o3d.geometry.TriangleMesh):
            mesh = trimesh.Trimesh(np.asarray(obj.vertices), np.asarray(obj.triangles), process=False,
                                   vertex_colors=_colors_uint8(obj.vertex_colors) if obj.has_vertex_colors() else None)
            if obj.has_vertex_normals():
                mesh.vertex_normals = np.asarray(obj.vertex_normals)
            return mesh
        points = as_points(obj)
        if isinstance(obj, o3d.geometry.PointCloud) and obj.has_colors():
            colors = _colors_uint8(obj.colors)
    else:
        points = as_points(obj)
    return trimesh.PointCloud(_three_d(points, "trimesh"), colors=colors)


__all__ = ["as_points", "cloud_points", "to_open3d", "to_trimesh"]
