"""Per-point records as structured arrays: coordinate fields, dtypes the formats can hold, colours."""

from __future__ import annotations

import re

import numpy as np

from pcflow.errors import PcflowError


def coordinates(records: np.ndarray, path) -> tuple[tuple[str, ...], np.ndarray]:
    """The coordinate field names (x, y, z in any case; x, y for two-column text) and (N, 3) float64 points.

    Raises:
        PcflowError: the records have no x/y/z fields (`path` names the file in the message).
    """
    names = records.dtype.names or ()
    lower = {name.lower(): name for name in names}
    if all(axis in lower for axis in "xyz"):
        coords = tuple(lower[axis] for axis in "xyz")
    elif names == ("x", "y"):
        coords = names
    else:
        raise PcflowError(f"{path}: no x/y/z fields (found: {', '.join(names) or 'none'})")
    return coords, np.stack([records[name].astype(np.float64) for name in coords], axis=1)


def has_fields(records: np.ndarray, coords: tuple[str, ...]) -> bool:
    """Whether `records` hold more than `PointCloud.points` can: other fields, or coordinates not in float64."""
    return len(records.dtype.names) > len(coords) or any(records.dtype[name] != np.float64 for name in coords)


def records_of(cloud, *, wide_ints: bool = False) -> np.ndarray:
    """The cloud (a `PointCloud`) as one structured array: coordinates from `points`, other fields from `fields`,
    in dtypes `storable` allows (8-byte integers too with `wide_ints`)."""
    axes = "xyz"[:cloud.points.shape[1]]
    fields = cloud.fields
    if fields is None:
        fields = np.empty(len(cloud.points), dtype=[(axis, np.float64) for axis in axes])
    lower = {name.lower(): name for name in fields.dtype.names}
    coords = {lower.get(axis, axis): k for k, axis in enumerate(axes)}
    names = [name for name in coords if name not in fields.dtype.names] + list(fields.dtype.names)
    dtypes = []
    for name in names:
        if name in coords:
            column = cloud.points[:, coords[name]]
            kind = fields.dtype[name] if name in fields.dtype.names else np.dtype(np.float64)
            exact = kind.kind == "f" and np.array_equal(column.astype(kind), column, equal_nan=True)
            dtypes.append((safe_name(name), kind if exact else np.float64))
        else:
            dtypes.append((safe_name(name), storable(fields[name], wide_ints=wide_ints)))
    out = np.empty(len(cloud.points), dtype=dtypes)
    for name, (safe, _) in zip(names, dtypes):
        out[safe] = cloud.points[:, coords[name]] if name in coords else fields[name]
    return out


def safe_name(name: str) -> str:
    """The name with every non-word character replaced by `_` ("field" for an empty name)."""
    return re.sub(r"\W", "_", name) or "field"


def storable(values: np.ndarray, *, wide_ints: bool = False) -> np.dtype:
    """A dtype that PLY can hold (1 to 4 byte integers, 4 or 8 byte floats; PCD and LAS also 8-byte integers, with
    `wide_ints`) and that keeps the values."""
    kind = values.dtype
    if kind == np.bool_:
        return np.dtype(np.uint8)
    if kind.kind == "f":
        return np.dtype(np.float64) if kind.itemsize > 4 else np.dtype(np.float32)
    if kind.kind in "iu" and (kind.itemsize <= 4 or wide_ints):
        return kind.newbyteorder("=")
    if kind.kind in "iu":
        for small in (np.int32, np.uint32):
            info = np.iinfo(small)
            if len(values) == 0 or (values.min() >= info.min and values.max() <= info.max):
                return np.dtype(small)
        return np.dtype(np.float64)
    raise PcflowError(f"field of dtype {kind} cannot be written; expected numbers")


def native(records: np.ndarray) -> np.ndarray:
    """Copy in native byte order, without padding and without non-numeric (list) properties."""
    keep = [(name, records.dtype[name].newbyteorder("=")) for name in records.dtype.names
            if records.dtype[name].kind in "biuf" and records.dtype[name].shape == ()]
    out = np.empty(len(records), dtype=keep)
    for name, _ in keep:
        out[name] = records[name]
    return out


def colors_of(fields: np.ndarray) -> np.ndarray | None:
    """(N, 3) uint8 colours from red/green/blue (or r/g/b, diffuse_*) or a packed PCD rgb/rgba field, else None."""
    names = fields.dtype.names
    for trio in (("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue")):
        if all(name in names for name in trio):
            return np.stack([_to_uint8(fields[name]) for name in trio], axis=1)
    for packed in ("rgb", "rgba"):
        if packed in names:
            values = np.ascontiguousarray(fields[packed])
            bits = values.view(np.uint32) if values.dtype.itemsize == 4 else values.astype(np.uint32)
            return np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], axis=1).astype(np.uint8)
    return None


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Colour channel to uint8: floats in [0, 1] are scaled by 255, 16-bit values (LAS) keep their high byte (so
    that both `v << 8` and `v * 257` give back `v`)."""
    if values.dtype == np.uint8:
        return values.copy()
    values = values.astype(np.float64)
    top = values.max(initial=0.0)
    if top <= 1.0 and np.any(values % 1 != 0):
        values = values * 255.0
    elif top > 255:
        values = np.floor(values / 256.0)
    return np.clip(np.round(values), 0, 255).astype(np.uint8)
