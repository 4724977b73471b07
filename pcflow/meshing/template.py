"""Template surfaces in the latent space that the inverse flow maps: the interface and the icosphere."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from .implicit import level_set_mesh, project_onto
from .primitives import _signed_volume


class Template(ABC):
    """A closed latent surface of a given size, meshed, with a chart; what the mesh construction needs of it.

    The boundary mesh is a template's mesh mapped through the inverse flow and refined by bisecting edges at
    the template point between their ends, so a template gives its starting mesh, those edge midpoints and its
    chart. A torus (`Torus`) and tori joined side by side (`Tori`) are the other subclasses.

    Attributes:
        genus: genus of the surface (0 for the sphere); its meshes have Euler characteristic 2 - 2 genus.
        max_subdivisions: highest subdivision level `start` accepts.
    """

    genus: int = 0
    max_subdivisions: int = 7

    @abstractmethod
    def start(self, subdivisions: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """Starting mesh on the template of size `radius`.

        Returns:
            (V, 3) float64 latent vertices on the surface and (F, 3) int64 faces, wound outward.
        """

    @abstractmethod
    def midpoints(self, first: np.ndarray, second: np.ndarray, radius: float) -> np.ndarray:
        """(M, 3) points of the surface of size `radius` between the (M, 3) latent points `first` and `second`."""

    @abstractmethod
    def uv(self, latent: np.ndarray) -> np.ndarray:
        """(V, 2) chart coordinates in [0, 1] of (V, 3) latent points on the surface."""

    @abstractmethod
    def face_uv(self, latent: np.ndarray, uv: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """(F, 3, 2) chart coordinates of each face corner, continuous across the chart's seams."""


@dataclass(frozen=True)
class IcoSphere(Template):
    """The sphere, meshed as an icosphere (20 * 4**subdivisions faces), with the azimuth / polar-angle chart.

    Example:
        >>> latent, faces = IcoSphere().start(1, 2.0)
        >>> latent.shape, faces.shape, bool(np.allclose(np.linalg.norm(latent, axis=1), 2.0))
        ((42, 3), (80, 3), True)
    """

    def start(self, subdivisions: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """Icosphere of `subdivisions` levels on the sphere of radius `radius` (see `Template.start`)."""
        import trimesh

        ico = trimesh.creation.icosphere(subdivisions=int(subdivisions), radius=1.0)
        directions = np.asarray(ico.vertices, dtype=np.float64)
        latent = radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)
        return latent, np.asarray(ico.faces, np.int64)

    def midpoints(self, first: np.ndarray, second: np.ndarray, radius: float) -> np.ndarray:
        """The chord midpoints projected radially onto the sphere of radius `radius`."""
        points = first + second
        points *= radius / np.linalg.norm(points, axis=1, keepdims=True)
        return points

    def uv(self, latent: np.ndarray) -> np.ndarray:
        """u = azimuth / (2 pi), v = polar angle / pi of each latent direction."""
        norms = np.linalg.norm(latent, axis=1)
        u = np.mod(np.arctan2(latent[:, 1], latent[:, 0]) / (2 * np.pi), 1.0)
        v = np.arccos(np.clip(latent[:, 2] / norms, -1.0, 1.0)) / np.pi
        return np.column_stack([np.minimum(u, 1.0), v])

    def face_uv(self, latent: np.ndarray, uv: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Per-corner `uv`, unbroken across the seam at azimuth 0 and at the poles.

        A face that crosses azimuth 0 has its corners on the low side moved up by 1 (u up to 1.5, for a texture
        that repeats), so that no face stretches back across the whole chart; a corner at a pole, where the azimuth
        is undefined, takes the mean u of its face's other corners. v is `uv`'s.
        """
        corners = uv[faces].copy()
        u = corners[..., 0]
        pole = (np.hypot(latent[:, 0], latent[:, 1]) <= 1e-12 * np.linalg.norm(latent, axis=1))[faces]
        span = np.where(pole, -np.inf, u).max(axis=1) - np.where(pole, np.inf, u).min(axis=1)
        u[(span > 0.5)[:, None] & (u < 0.5) & ~pole] += 1.0
        mean_other = np.where(pole, 0.0, u).sum(axis=1) / np.maximum((~pole).sum(axis=1), 1)
        u[pole] = np.broadcast_to(mean_other[:, None], u.shape)[pole]
        return corners


#: The default template: the sphere, the boundary of the latent ball of OneFlow's models.
SPHERE = IcoSphere()


@dataclass(frozen=True)
class Torus(Template):
    """A latent torus (`pcflow.latent.LatentTorus`), meshed as a grid over its ring and tube angles, with the chart
    u = ring angle / (2 pi), v = tube angle / (2 pi).

    At subdivision level s the grid has about as many faces as the icosphere's 20 * 4**s, shared between the ring
    and the tube in proportion to their lengths.

    Example:
        >>> from pcflow.latent import LatentTorus
        >>> latent, faces = Torus(LatentTorus((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), 2.0)).start(2, 0.5)
        >>> import trimesh; trimesh.Trimesh(latent, faces).euler_number
        0
    """

    torus: object  # a pcflow.latent.LatentTorus
    genus = 1
    max_subdivisions = 6

    def start(self, subdivisions: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """The grid on the torus's surface of size `radius` (see `Template.start`); from size `major` on, where the
        tube closes the hole and the grid would fold, the surface meshed by marching cubes of the level instead
        (`pcflow.meshing.implicit.level_set_mesh`: genus 0 there)."""
        if self._closed(radius):
            spacing = _implicit_spacing(self.torus.area(radius), radius * min(1.0, self.torus.stretch), subdivisions)
            return level_set_mesh(self.torus.level, self.torus.bounds(radius), radius, spacing)
        stretch = self.torus.stretch
        # the tube's perimeter (Ramanujan's ellipse) against the ring's
        tube = np.pi * radius * (3 * (1 + stretch) - np.sqrt((3 + stretch) * (1 + 3 * stretch)))
        ratio = 2 * np.pi * self.torus.major / tube
        n_tube = max(6, int(round(2**subdivisions * np.sqrt(10.0 / ratio))))
        n_ring = max(8, int(round(n_tube * ratio)))
        ring, around = (index.ravel() for index in np.meshgrid(np.arange(n_ring), np.arange(n_tube), indexing="ij"))
        latent = self.torus.point(2 * np.pi * ring / n_ring, 2 * np.pi * around / n_tube, radius)

        def vertex(i, j):
            return (i % n_ring) * n_tube + j % n_tube

        corners = vertex(ring, around), vertex(ring + 1, around), vertex(ring + 1, around + 1), vertex(ring, around + 1)
        faces = np.concatenate([np.stack(corners[:3], axis=1), np.stack([corners[0], corners[2], corners[3]], axis=1)])
        if _signed_volume(latent, faces) < 0:
            faces = faces[:, ::-1].copy()
        return latent, faces.astype(np.int64)

    def _closed(self, radius: float) -> bool:
        """Whether the surface of size `radius` has no hole (the tube reaches the axis)."""
        return radius >= self.torus.major

    def midpoints(self, first: np.ndarray, second: np.ndarray, radius: float) -> np.ndarray:
        """The points of the surface of size `radius` at the mean ring and tube angles, each taken the short way
        (where the hole has closed, the chord midpoints moved onto the surface, `pcflow.meshing.implicit.project_onto`)."""
        if self._closed(radius):
            return project_onto(self.torus.level, 0.5 * (first + second), radius)
        u1, v1 = self.torus.angles(first)
        u2, v2 = self.torus.angles(second)
        return self.torus.point(u1 + 0.5 * _turn(u2 - u1), v1 + 0.5 * _turn(v2 - v1), radius)

    def uv(self, latent: np.ndarray) -> np.ndarray:
        """u = ring angle / (2 pi), v = tube angle / (2 pi), both in [0, 1)."""
        chart = np.mod(np.column_stack(self.torus.angles(latent)) / (2 * np.pi), 1.0)
        chart[chart >= 1.0] = 0.0  # the share of a tiny negative angle rounds up to 1
        return chart

    def face_uv(self, latent: np.ndarray, uv: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Per-corner `uv`, unbroken across both seams: a face that spans more than half of u or v has its corners
        on the low side moved up by 1 (for a texture that repeats)."""
        return _unwrapped(uv[faces].copy())


#: The marching-cubes grid spacing of `Tori.start` (and of `Torus.start` where the hole has closed) is
#: sqrt(this * area / faces wanted), for about 20 * 4**s faces, and
#: at most `_TUBE_CELLS` times the tube's least half-extent (so that the grid resolves the tube at any level).
_CELLS_PER_FACE = 2.6
_TUBE_CELLS = 0.7


def _implicit_spacing(area: float, thinnest: float, subdivisions: int) -> float:
    """The marching-cubes grid spacing for a surface of `area` whose tube's least half-extent is `thinnest`: about
    20 * 4**subdivisions faces, finer where the tube needs it."""
    return min(float(np.sqrt(_CELLS_PER_FACE * area / (20 * 4 ** int(subdivisions)))), _TUBE_CELLS * thinnest)


@dataclass(frozen=True)
class Tori(Template):
    """Latent tori joined side by side (`pcflow.latent.LatentTori`), meshed by marching cubes of their level
    function with the vertices moved onto the surface (`pcflow.latent.LatentTori.mesh`); chart: each torus's ring
    and tube angles (`Torus`), the tori side by side in u.

    Example:
        >>> from pcflow.latent import LatentTori, LatentTorus
        >>> pair = LatentTori((LatentTorus((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0), 0.8),
        ...                    LatentTorus((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), 0.8)), 0.15)
        >>> latent, faces = Tori(pair).start(2, 0.3)
        >>> import trimesh; trimesh.Trimesh(latent, faces).euler_number
        -2
    """

    tori: object  # a pcflow.latent.LatentTori
    max_subdivisions = 6

    @property
    def genus(self) -> int:
        return self.tori.genus

    def start(self, subdivisions: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """The surface of size `radius` meshed with about 20 * 4**subdivisions faces, or more where the grid needs
        them to resolve the tube (see `Template.start`)."""
        area = sum(torus.area(radius) for torus in self.tori.tori)
        return self.tori.mesh(radius, _implicit_spacing(area, self.tori.thinnest(radius), subdivisions))

    def midpoints(self, first: np.ndarray, second: np.ndarray, radius: float) -> np.ndarray:
        """The chord midpoints moved onto the surface of size `radius` (`pcflow.latent.LatentTori.project`)."""
        return self.tori.project(0.5 * (first + second), radius)

    def _local_uv(self, latent: np.ndarray, piece: np.ndarray) -> np.ndarray:
        """(V, 2) ring and tube angle shares in [0, 1) of latent points, each on the torus `piece` names."""
        chart = np.empty((len(latent), 2))
        for j, torus in enumerate(self.tori.tori):
            on = piece == j
            chart[on] = Torus(torus).uv(latent[on])
        return chart

    def uv(self, latent: np.ndarray) -> np.ndarray:
        """u = (torus index + its ring angle share) / genus, v = the tube angle share, of the torus each point is
        on (the one of least level)."""
        piece = self.tori.nearest_torus(latent)
        chart = self._local_uv(latent, piece)
        chart[:, 0] = (piece + chart[:, 0]) / self.genus
        return chart

    def face_uv(self, latent: np.ndarray, uv: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Per-corner chart coordinates of each face on the torus of its centroid, unbroken across that torus's
        seams (a corner on the low side of a seam is moved up by one torus's share of u, or by 1 in v); faces
        on the rounded join of two tori take all their corners from one torus's chart."""
        piece = self.tori.nearest_torus(latent[faces].mean(axis=1))
        corners = _unwrapped(self._local_uv(latent[faces].reshape(-1, 3), np.repeat(piece, 3)).reshape(-1, 3, 2))
        corners[..., 0] = (piece[:, None] + corners[..., 0]) / self.genus
        return corners


@dataclass(frozen=True)
class Shaped(Template):
    """A latent surface shaped like the data (`pcflow.shaped.LatentGrid`, of its genus), meshed at its grid's spacing
    by marching cubes of its level function with the vertices moved onto the surface; chart: the sphere's
    (`IcoSphere.uv`) of the direction from the grid's centre, which is one-to-one only where every such direction
    meets the surface once (never with handles).
    """

    grid: object  # a pcflow.shaped.LatentGrid
    max_subdivisions = 6

    @property
    def genus(self) -> int:
        return self.grid.genus

    def start(self, subdivisions: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """The surface of size `radius` meshed at the grid's spacing (the same mesh at every subdivision level: the
        refinement splits its edges where they map long)."""
        return self.grid.surface_mesh(radius)

    def midpoints(self, first: np.ndarray, second: np.ndarray, radius: float) -> np.ndarray:
        """The chord midpoints moved onto the surface of size `radius` (`pcflow.latent.ImplicitSurface.project`)."""
        return self.grid.project(0.5 * (first + second), radius)

    def uv(self, latent: np.ndarray) -> np.ndarray:
        return SPHERE.uv(latent - self.grid.centre())

    def face_uv(self, latent: np.ndarray, uv: np.ndarray, faces: np.ndarray) -> np.ndarray:
        return SPHERE.face_uv(latent - self.grid.centre(), uv, faces)


def _unwrapped(corners: np.ndarray) -> np.ndarray:
    """(F, 3, 2) per-corner chart coordinates in [0, 1), changed in place and returned: in each coordinate, a face that
    spans more than half the chart has its corners on the low side moved up by 1 (both of a torus's seams)."""
    for k in range(2):
        values = corners[..., k]
        span = values.max(axis=1) - values.min(axis=1)
        values[(span > 0.5)[:, None] & (values < 0.5)] += 1.0
    return corners


def _turn(angle: np.ndarray) -> np.ndarray:
    """Angle differences wrapped into [-pi, pi)."""
    return np.mod(angle + np.pi, 2 * np.pi) - np.pi


def model_template(model) -> Template:
    """The latent template of a fitted model's surface: its torus, tori or shaped surface (`template_`) where it has
    them, else `SPHERE`."""
    latent = getattr(model, "template_", None)
    if latent is None:
        return SPHERE
    return {"shaped": Shaped, "torus": Torus, "tori": Tori}[latent.kind](latent)


def _sphere_uv(latent: np.ndarray) -> np.ndarray:
    """Sphere-chart coordinates of latent points (`IcoSphere.uv`)."""
    return SPHERE.uv(latent)
