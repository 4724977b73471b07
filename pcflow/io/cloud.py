"""The in-memory point cloud: coordinates plus every per-point property a file held."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcflow.errors import PcflowError

from .records import colors_of, records_of


@dataclass(eq=False)
class PointCloud:
    """Points read from a file, with every per-point property the file held.

    Attributes:
        points: (N, 3) float64 array of coordinates ((N, 2) for two-column text files), all finite.
        fields: (N,) structured array of all per-point properties of the input, coordinates included, with
            their original names and dtypes (`red`/`green`/`blue` uint8, `nx`/`ny`/`nz`, `intensity`, a packed
            PCD `rgb`/`rgba`, float32 `x`/`y`/`z`...); None when the file held float64 coordinates only.
        n_dropped_nonfinite: rows dropped on reading because a coordinate was NaN or infinite.
        source: the path read, for reports ("" for clouds made in memory).
        las_header: the `laspy.LasHeader` of a LAS/LAZ source, else None; LAS/LAZ output then keeps its version,
            point format, scales, offsets, VLRs and EVLRs.

    Example:
        >>> cloud = PointCloud(np.zeros((4, 3)))
        >>> cloud.subset([0, 2]).points.shape, cloud.has_colors
        ((2, 3), False)
    """

    points: np.ndarray
    fields: np.ndarray | None = None
    n_dropped_nonfinite: int = 0
    source: str = ""
    las_header: object | None = None

    def __post_init__(self):
        self.points = np.asarray(self.points, dtype=np.float64)
        if self.points.ndim != 2 or self.points.shape[1] not in (2, 3):
            raise PcflowError(f"points has shape {self.points.shape}; expected (N, 3) or (N, 2)")
        if self.fields is not None and len(self.fields) != len(self.points):
            raise PcflowError(f"fields has {len(self.fields)} rows but points has {len(self.points)}")

    def __len__(self) -> int:
        return len(self.points)

    def subset(self, mask_or_index) -> PointCloud:
        """Returns the cloud of the selected rows (boolean (N,) mask or integer indices), fields kept."""
        index = np.asarray(mask_or_index)
        fields = None if self.fields is None else self.fields[index]
        return PointCloud(self.points[index], fields, self.n_dropped_nonfinite, self.source, self.las_header)

    def with_fields(self, columns: dict) -> PointCloud:
        """Returns the cloud with per-point fields set: an existing field (matched without regard to case) keeps its
        dtype, a new one is appended with the dtype of its (N,) array.

        Example:
            >>> cloud = PointCloud(np.zeros((2, 3))).with_fields({"classification": np.array([1, 7], np.uint8)})
            >>> cloud.fields.dtype.names, cloud.fields["classification"].tolist()
            (('x', 'y', 'z', 'classification'), [1, 7])
        """
        fields = records_of(self) if self.fields is None else self.fields
        lower = {name.lower(): name for name in fields.dtype.names}
        columns = {lower.get(name.lower(), name): np.asarray(values) for name, values in columns.items()}
        for name, values in columns.items():
            if values.shape != (len(self),):
                raise PcflowError(f"field {name!r} has shape {values.shape}; expected ({len(self)},)")
        added = [(name, values.dtype) for name, values in columns.items() if name not in fields.dtype.names]
        out = np.empty(len(self), dtype=[(name, fields.dtype[name]) for name in fields.dtype.names] + added)
        for name in fields.dtype.names:
            out[name] = fields[name]
        for name, values in columns.items():
            out[name] = values
        return PointCloud(self.points, out, self.n_dropped_nonfinite, self.source, self.las_header)

    @property
    def has_colors(self) -> bool:
        """Whether the fields hold colours (red/green/blue or a packed rgb/rgba)."""
        return self.colors is not None

    @property
    def colors(self) -> np.ndarray | None:
        """(N, 3) uint8 array of colours, or None when the cloud has none."""
        return None if self.fields is None else colors_of(self.fields)
