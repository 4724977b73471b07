"""The inverse map of a latent template mesh and its adaptive refinement by conforming edge bisection."""

from __future__ import annotations

import numpy as np

from pcflow.errors import PcflowError

from .intersections import _intersecting_pairs
from .primitives import _unique_edges
from .template import Template

#: Default `tolerance` of `sphere_mesh` and `max_offset` of `snap_to_points`, as a share of the mesh's
#: bounding-box diagonal: not a setting of its own, since both take an absolute value that replaces it.
DEFAULT_TOLERANCE_FRACTION = 0.02


def _refine_edges(refiner: _Refiner, tolerance: float, max_faces: int, max_passes: int) -> tuple[int, bool]:
    """Bisect the edges longer than `tolerance` (mapped arc length), pass after pass, within the face budget.

    Returns:
        (passes that split something, hit the face budget).
    """
    hit_budget = False
    n_passes = 0
    while np.isfinite(tolerance) and n_passes < max_passes:
        lengths = refiner.edges()[2]
        wanted = lengths > tolerance
        if not wanted.any():
            break
        split, hit_budget = refiner.split(wanted, max_faces)
        n_passes += split
        if hit_budget:
            break
    return n_passes, hit_budget


def _refine_intersections(refiner: _Refiner, max_faces: int, max_rounds: int,
                         hit_budget: bool) -> tuple[int, int, bool]:
    """Bisect the edges of self-intersecting faces, round after round, while that lowers their number.

    Returns:
        (rounds done, self-intersecting face pairs left, hit the face budget).
    """
    n_rounds = 0
    pairs = _intersecting_pairs(refiner.mapped, refiner.faces)
    while len(pairs) and n_rounds < max_rounds and not hit_budget:
        edges, face_edges, _ = refiner.edges()
        wanted = np.zeros(len(edges), dtype=bool)
        wanted[face_edges[np.unique(pairs)].ravel()] = True
        split, hit_budget = refiner.split(wanted, max_faces)
        if not split:
            break
        n_rounds += 1
        previous, pairs = len(pairs), _intersecting_pairs(refiner.mapped, refiner.faces)
        if len(pairs) >= previous:
            break  # not a discretisation artefact: the map itself overlaps there
    return n_rounds, int(len(pairs)), hit_budget


def _call_inverse(inverse, latent: np.ndarray) -> np.ndarray:
    mapped = np.asarray(inverse(latent.copy()), dtype=np.float64)
    if mapped.shape != latent.shape:
        raise PcflowError(f"inverse returned shape {mapped.shape}; expected {latent.shape}")
    if not np.all(np.isfinite(mapped)):
        raise PcflowError("inverse returned non-finite coordinates; expected finite (M, 3) values")
    return mapped


def _longest_position(face_edges: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per face, 0, 1 or 2: which of its edges is longest (ties broken by edge id, the same for all faces)."""
    rank = np.empty(len(lengths), dtype=np.int64)
    rank[np.lexsort((np.arange(len(lengths)), lengths))] = np.arange(len(lengths))
    return np.argmax(rank[face_edges], axis=1)


def _closure(marked: np.ndarray, face_edges: np.ndarray, longest: np.ndarray) -> np.ndarray:
    """Mark the longest edge of every face that has a marked edge, until nothing changes."""
    marked = marked.copy()
    longest_edge = face_edges[np.arange(len(face_edges)), longest]
    while True:
        touched = marked[face_edges].any(axis=1)
        extra = longest_edge[touched & ~marked[longest_edge]]
        if len(extra) == 0:
            return marked
        marked[extra] = True


def _budgeted_marks(wanted, lengths, face_edges, n_faces, max_faces):
    """Conforming marks for `wanted` edges, cut to the longest ones if the face budget needs it.

    Returns (marked, limited); marked is None when not even one edge fits.
    """
    longest = _longest_position(face_edges, lengths)

    def n_after(marks):
        return n_faces + int(marks[face_edges].sum())

    marked = _closure(wanted, face_edges, longest)
    if n_after(marked) <= max_faces:
        return marked, False
    candidates = np.flatnonzero(wanted)
    candidates = candidates[np.argsort(-lengths[candidates], kind="stable")]
    # Binary search for the largest k whose top-k edges, closed, fit: k = lo fits, k > hi does not.
    lo, hi = 0, len(candidates) - 1
    best = None
    while lo < hi:
        k = (lo + hi + 1) // 2
        trial = np.zeros_like(wanted)
        trial[candidates[:k]] = True
        trial = _closure(trial, face_edges, longest)
        if n_after(trial) <= max_faces:
            lo, best = k, trial
        else:
            hi = k - 1
    return best, True


class _Refiner:
    """A latent template mesh, its image under `inverse`, and conforming longest-edge bisection of it.

    Edge lengths are measured in input space along the image of the edge's latent arc: the mapped
    distance from one end to the image of the latent midpoint (the template's point between the ends,
    on the sphere the chord midpoint projected onto it) and on to the other end. That catches edges whose chord is short but whose arc the map folds or bends. Midpoint
    images are cached by edge, so every latent point goes through `inverse` once.
    """

    def __init__(self, inverse, radius: float, template: Template, subdivisions: int):
        self.inverse, self.radius, self.template = inverse, radius, template
        self.latent, self.faces = template.start(subdivisions, radius)
        self.mapped = _call_inverse(inverse, self.latent)
        self.n_calls = 1
        self._keys = np.empty(0, dtype=np.int64)
        self._mid_latent = np.empty((0, 3))
        self._mid_mapped = np.empty((0, 3))
        self._state = None

    def edges(self):
        """Unique edges (E, 2), per-face edge ids (F, 3), and mapped arc lengths (E,)."""
        if self._state is not None:
            return self._state
        edges, face_edges = _unique_edges(self.faces)
        keys = (edges[:, 0] << 32) | edges[:, 1]
        mid_latent = np.empty((len(edges), 3))
        mid_mapped = np.empty((len(edges), 3))
        where = np.minimum(np.searchsorted(self._keys, keys), max(len(self._keys) - 1, 0))
        known = (self._keys[where] == keys) if len(self._keys) else np.zeros(len(keys), dtype=bool)
        mid_latent[known] = self._mid_latent[where[known]]
        mid_mapped[known] = self._mid_mapped[where[known]]
        fresh = ~known
        if fresh.any():
            ends = self.latent[edges[fresh]]
            points = self.template.midpoints(ends[:, 0], ends[:, 1], self.radius)
            mid_latent[fresh] = points
            mid_mapped[fresh] = _call_inverse(self.inverse, points)
            self.n_calls += 1
        self._keys, self._mid_latent, self._mid_mapped = keys, mid_latent, mid_mapped  # keys come sorted
        lengths = np.linalg.norm(self.mapped[edges[:, 0]] - mid_mapped, axis=1)
        lengths += np.linalg.norm(mid_mapped - self.mapped[edges[:, 1]], axis=1)
        self._state = (edges, face_edges, lengths)
        return self._state

    def split(self, wanted: np.ndarray, max_faces: int) -> tuple[bool, bool]:
        """Bisect the `wanted` edges (and those conformity needs) within the face budget.

        Returns (split anything, hit the face budget).
        """
        edges, face_edges, lengths = self.edges()
        marked, limited = _budgeted_marks(wanted, lengths, face_edges, len(self.faces), max_faces)
        if marked is None:
            return False, True
        longest = _longest_position(face_edges, lengths)
        marked_ids = np.flatnonzero(marked)
        midpoint = np.full(len(edges), -1, dtype=np.int64)
        midpoint[marked_ids] = len(self.latent) + np.arange(len(marked_ids))
        self.latent = np.concatenate([self.latent, self._mid_latent[marked_ids]])
        self.mapped = np.concatenate([self.mapped, self._mid_mapped[marked_ids]])
        self.faces = _bisect_faces(self.faces, face_edges, longest, marked, midpoint)
        self._state = None
        return True, limited


def _bisect_faces(faces, face_edges, longest, marked, midpoint) -> np.ndarray:
    """Split each face with marked edges: first at its longest edge, then the children at the others.

    Marks must be closed (a face with any marked edge has its longest edge marked), so the result conforms.
    """
    rows = np.arange(len(faces))
    # Rotate each face to (a, b, c) with its longest edge b-c; the cyclic order, so orientation, is kept.
    order = np.stack([(longest + 2) % 3, longest, (longest + 1) % 3], axis=1)
    a, b, c = (faces[rows, order[:, i]] for i in range(3))
    e_ab, e_bc, e_ca = (face_edges[rows, order[:, i]] for i in range(3))
    split = marked[e_bc]
    keep = faces[~split]
    a, b, c = a[split], b[split], c[split]
    m = midpoint[e_bc[split]]
    m_ab, m_ca = midpoint[e_ab[split]], midpoint[e_ca[split]]
    ab, ca = m_ab >= 0, m_ca >= 0
    pieces = [
        keep,
        np.column_stack([a, b, m])[~ab],
        np.column_stack([m, a, m_ab])[ab],
        np.column_stack([m, m_ab, b])[ab],
        np.column_stack([a, m, c])[~ca],
        np.column_stack([m, c, m_ca])[ca],
        np.column_stack([m, m_ca, a])[ca],
    ]
    return np.concatenate(pieces).astype(np.int64)
