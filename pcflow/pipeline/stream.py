"""Chunked denoising of clouds too large to hold whole: read, sample, fit, score and write in bounded memory."""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import PcflowError
from ..io import (CloudWriter, ChunkLayoutError, PointCloud, coordinates, existing_file, has_fields,
                 iter_cloud_chunks, read_cloud, read_las_header, write_cloud)
from ..io.ply import PLY_TYPES
from .fit import fit_cloud, points_3d, training_rows
from .options import FitOptions
from .timing import Timer

#: Rows read, scored and written at a time.
DEFAULT_CHUNK_SIZE = 1_000_000
#: Clouds with at least this many points (as their header or size suggests) are streamed by `should_stream`...
STREAM_MIN_POINTS = 2_000_000
#: ...and so are smaller ones whose in-memory run (`in_memory_bytes`) would take more than this share of the memory
#: available (`available_memory`).
MEMORY_SHARE = 0.5
_BYTES_PER_POINT = 24  # for files without a count in their header: a binary xyz float64 row, or a short text row
# An in-memory reconstruct's peak, per point: copies of its records (the cloud read, a subset written) and the
# float64 coordinates and scores of the scoring pass. Measured above a 2,000-point run, 1M-point binary PLYs of 15 and
# 104 record bytes took 133 and 416 bytes a point (about 3.2 copies + 85); the estimate takes 4 copies + 100 (160 and
# 516), and `should_stream` only half the memory available.
_RECORD_COPIES = 4
_SCORE_BYTES_PER_POINT = 100
#: ASPRS class that `classified_cloud` gives outliers (LAS "low point (noise)", as PDAL's filters.outlier)...
NOISE_CLASS = 7
#: ...and inliers of a cloud without a classification field ("unclassified").
UNCLASSIFIED = 1
#: The float32 field that `scores=True` adds: minus the model's decision function, > 0 for the outliers.
SCORE_FIELD = "outlier_score"
_LAS_SUFFIXES = (".las", ".laz")


@dataclass
class StreamFit:
    """A model fitted by `fit_file` and what the first pass learned about the file.

    Attributes:
        model: the fitted OneFlow.
        train: (M, 3) float64 array of the training points (a seeded subset, as `pipeline.fit_cloud` draws it).
        n_points: rows in the file.
        n_dropped_nonfinite: rows with a NaN or infinite coordinate.
        bounds: (low, high) arrays of 3 values: the finite points' bounding box.
    """

    model: object
    train: np.ndarray
    n_points: int
    n_dropped_nonfinite: int
    bounds: tuple = ()


def point_count_hint(path) -> int:
    """Points in a cloud file: the header's count for PLY, PCD and LAS/LAZ, else an estimate from the file size."""
    return _size_hint(path)[0]


def _size_hint(path) -> tuple[int, int]:
    """(points, bytes of one point's record) of a cloud file, from its header where it has them, else estimated
    from the file size (24 bytes a point, and the file's bytes per point)."""
    path = existing_file(path)
    suffix = path.suffix.lower()
    if suffix in _LAS_SUFFIXES:
        header = read_las_header(path)
        return int(header.point_count), int(header.point_format.size)
    with open(path, "rb") as f:
        head = f.read(1 << 16).decode("latin-1")
    count, record, in_vertex, pcd = None, 0, False, {}
    for line in head.splitlines():
        words = line.split()
        if words[:1] in (["end_header"], ["DATA"]):
            break
        if suffix == ".ply" and words[:1] == ["element"]:
            in_vertex = words[1:2] == ["vertex"] and len(words) == 3 and words[2].isdigit()
            count = int(words[2]) if in_vertex else count
        elif suffix == ".ply" and in_vertex and words[:1] == ["property"] and len(words) == 3:
            record += np.dtype(PLY_TYPES.get(words[1], "f8")).itemsize
        elif suffix == ".pcd" and words[:1] == ["POINTS"] and len(words) == 2 and words[1].isdigit():
            count = int(words[1])
        elif suffix == ".pcd" and words[:1] in (["SIZE"], ["COUNT"]) and all(w.isdigit() for w in words[1:]):
            pcd[words[0]] = [int(w) for w in words[1:]]
    if "SIZE" in pcd:
        record = sum(size * n for size, n in zip(pcd["SIZE"], pcd.get("COUNT", [1] * len(pcd["SIZE"]))))
    size = path.stat().st_size
    if count is None:
        count = size // _BYTES_PER_POINT
    return count, record or size // max(count, 1)


def in_memory_bytes(path) -> int:
    """Bytes a reconstruct of the cloud file read whole would hold at its peak, estimated from its header (or size):
    four copies of every point's record and 100 bytes a point for scoring (measured: 3.2 copies and 85 bytes)."""
    count, record = _size_hint(path)
    return count * (_RECORD_COPIES * record + _SCORE_BYTES_PER_POINT)


def available_memory() -> int | None:
    """Bytes of memory a new allocation can take: the kernel's MemAvailable (/proc/meminfo; else the free pages of
    `os.sysconf`), lowered to what a cgroup memory limit (a container's; v2 or v1) leaves. None where unknown."""
    figures = []
    try:
        with open("/proc/meminfo") as f:
            figures += [int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        pass
    if not figures:
        try:
            figures.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):  # not on every platform
            pass
    left = _cgroup_left()
    if left is not None:
        figures.append(left)
    return min(figures) if figures else None


def _cgroup_left() -> int | None:
    """Bytes a cgroup memory limit leaves (limit - usage, reclaimable file cache not counted), None without one."""
    root = Path("/sys/fs/cgroup")
    for limit_file, usage_file, stat_key in (("memory.max", "memory.current", "inactive_file"),
                                             ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes",
                                              "total_inactive_file")):
        try:
            limit = (root / limit_file).read_text().strip()
            if limit == "max" or int(limit) >= 1 << 60:  # no limit (v1 writes a huge number)
                return None
            usage = int((root / usage_file).read_text())
            stats = (root / limit_file).with_name("memory.stat").read_text().split()
        except (OSError, ValueError):
            continue
        cache = dict(zip(stats[::2], stats[1::2])).get(stat_key, "0")
        return max(0, int(limit) - usage + int(cache))
    return None


def should_stream(path, min_points: int = STREAM_MIN_POINTS, *, available: int | None = None) -> bool:
    """Whether to stream a cloud file rather than read it whole: when it has at least `min_points` points (see
    `point_count_hint`), or when a run in memory (`in_memory_bytes`) would need more than `MEMORY_SHARE` of the
    memory available.

    Args:
        path: a cloud file.
        min_points: stream from this many points on, whatever the memory.
        available: bytes of memory available; None measures them (`available_memory`; where that is unknown, only
            the point count decides).
    """
    if point_count_hint(path) >= min_points:
        return True
    available = available_memory() if available is None else available
    return available is not None and in_memory_bytes(path) > MEMORY_SHARE * available


def fit_file(path, options: FitOptions = FitOptions(), *, chunk_size: int = DEFAULT_CHUNK_SIZE,
             timer: Timer | None = None) -> StreamFit:
    """Fits OneFlow to a cloud file without holding it whole: the same model `pipeline.fit_cloud(read_cloud(path))`
    gives.

    One pass writes the finite coordinates to a temporary file (24 bytes a point, outside memory); the seeded
    subset of at most `options.max_train_points` rows is then read from it and fitted.

    Args:
        path: a cloud file (any suffix `pcflow.io.read_cloud` knows; see `pcflow.io.iter_cloud_chunks`).
        options: model settings.
        chunk_size: most rows in memory at a time.
        timer: collects the `read` and `fit` stage times.

    Raises:
        PcflowError: unreadable file, no (finite) points, not 3-D, too few points to fit.
    """
    timer = timer or Timer()
    n_points = n_finite = 0
    low, high = np.inf, -np.inf
    with tempfile.TemporaryFile(prefix="pcflow-coords-") as scratch:
        with timer("read"):
            for records in iter_cloud_chunks(path, chunk_size):
                _, points = coordinates(records, path)
                finite = np.isfinite(points).all(axis=1)
                scratch.write(np.ascontiguousarray(points[finite]).tobytes())
                if finite.any():
                    low, high = np.fmin(low, points[finite].min(axis=0)), np.fmax(high, points[finite].max(axis=0))
                n_points += len(points)
                n_finite += int(finite.sum())
                width = points.shape[1]
        _check_counts(path, n_points, n_finite)
        if width != 3:
            raise PcflowError(f"{path}: expected 3-D points, got {width} coordinates per point")
        scratch.flush()
        coords = np.memmap(scratch, dtype=np.float64, mode="r", shape=(n_finite, 3))
        train = np.array(coords[training_rows(n_finite, options)])
        del coords
    model = fit_cloud(PointCloud(train, source=str(path)), replace(options, max_train_points=None), timer)
    return StreamFit(model, train, n_points, n_points - n_finite, (low, high))


def judge(model, points: np.ndarray, *, scores: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Which points are inliers, and on request their outlier scores.

    Args:
        model: a fitted OneFlow (or, without `scores`, any object with `predict(X) -> +1 / -1`).
        points: (N, 3) float array.
        scores: also return the outlier scores: minus `model.decision_function` (`offset_ - score_samples`), as
            float32; inliers are then the points whose score is at most 0 (where `predict` says +1).

    Returns:
        ((N,) bool array, True for inliers; (N,) float32 array of scores or None).
    """
    if len(points) == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=np.float32) if scores else None
    if not scores:
        return model.predict(points) == 1, None
    decision = np.asarray(model.decision_function(points), dtype=np.float64)
    return decision >= 0, (-decision).astype(np.float32)


def classified_cloud(cloud: PointCloud, inside: np.ndarray) -> PointCloud:
    """The cloud with its outliers marked as noise, as PDAL's filters.outlier does: every point kept, the
    `classification` field (added as uint8 `UNCLASSIFIED` when the cloud has none) set to `NOISE_CLASS` where
    `inside` is False, other classes kept.

    Example:
        >>> cloud = classified_cloud(PointCloud(np.zeros((3, 3))), np.array([True, False, True]))
        >>> cloud.fields["classification"].tolist()
        [1, 7, 1]
    """
    names = {name.lower(): name for name in (cloud.fields.dtype.names if cloud.fields is not None else ())}
    if "classification" in names:
        classes = cloud.fields[names["classification"]].copy()
    else:
        classes = np.full(len(cloud), UNCLASSIFIED, dtype=np.uint8)
    classes[~np.asarray(inside, dtype=bool)] = NOISE_CLASS
    return cloud.with_fields({"classification": classes})


def _outputs(cloud: PointCloud, inside: np.ndarray, score, wanted) -> list:
    """[inliers, outliers, classified] clouds of a scored cloud (None where `wanted` has None), with the scores
    when they are given."""
    if score is not None:
        cloud = cloud.with_fields({SCORE_FIELD: score})
    parts = (lambda: cloud.subset(inside), lambda: cloud.subset(~inside), lambda: classified_cloud(cloud, inside))
    return [None if want is None else part() for want, part in zip(wanted, parts)]


def _bounds(path, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of a cloud file's finite points, in one chunked pass over its coordinates."""
    low, high = np.full(3, np.inf), np.full(3, -np.inf)
    for records in iter_cloud_chunks(path, chunk_size):
        points = coordinates(records, path)[1]
        points = points[np.isfinite(points).all(axis=1)]
        if len(points) and points.shape[1] == 3:
            low, high = np.fmin(low, points.min(axis=0)), np.fmax(high, points.max(axis=0))
    return low, high


def split_file(path, model, inliers_path, outliers_path=None, *, classified_path=None, scores: bool = False,
               chunk_size: int = DEFAULT_CHUNK_SIZE, ascii: bool = False, bounds=None,
               timer: Timer | None = None) -> dict:
    """Scores a cloud file chunk by chunk and writes its inliers (and outliers, and every point classified) with
    every vertex property.

    Rows come out in file order with the fields and dtypes `pcflow.io.write_cloud` writes, so the outputs equal
    those of the whole-file path. Outputs are atomic: on any error no output file appears. Should a later chunk need
    other field dtypes than the first (`pcflow.io.ChunkLayoutError`), the file is read whole instead. LAS/LAZ
    outputs of a LAS/LAZ input keep its header (`pcflow.io.write_cloud`).

    Args:
        path: a cloud file.
        model: a fitted 3-D OneFlow (or, without `scores`, any object with `predict(X) -> +1 / -1`).
        inliers_path: where the points inside the region go (.ply, .pcd, .xyz, .txt, .csv, .las, .laz), or None.
        outliers_path: where the removed points go, or None.
        classified_path: where every point goes, outliers marked as noise (`classified_cloud`), or None.
        scores: add the float32 field `outlier_score` (`judge`) to every output.
        chunk_size: most rows in memory at a time.
        ascii: text PLY/PCD instead of binary.
        bounds: (low, high) of the finite points, for LAS/LAZ outputs of another format's input (their scales and
            offsets); None reads them in an extra pass over the coordinates when such an output is asked for.
        timer: collects the `read`, `score` and `write_clouds` stage times.

    Returns:
        dict with `n_points`, `n_dropped_nonfinite`, `n_finite`, `n_inliers`, `n_outliers`, `streamed`.
    """
    timer = timer or Timer()
    outputs = [None if p is None else Path(p) for p in (inliers_path, outliers_path, classified_path)]
    if all(output is None for output in outputs):
        raise PcflowError("split_file needs at least one output path")
    try:
        return _split_chunks(path, model, outputs, scores, chunk_size, ascii, bounds, timer)
    except ChunkLayoutError:
        return _split_whole(path, model, outputs, scores, ascii, timer)


def _split_chunks(path, model, outputs, scores, chunk_size, ascii, bounds, timer) -> dict:
    n_points = n_finite = n_inliers = 0
    header = read_las_header(path)
    las_out = any(output is not None and output.suffix.lower() in _LAS_SUFFIXES for output in outputs)
    if las_out and header is None and bounds is None:
        with timer("read"):
            bounds = _bounds(path, chunk_size)
    with ExitStack() as stack:
        writers = [None if output is None else
                   stack.enter_context(CloudWriter(output, ascii=ascii, inputs=(path,), bounds=bounds))
                   for output in outputs]
        chunks = iter_cloud_chunks(path, chunk_size)
        while True:
            with timer("read"):
                records = next(chunks, None)
            if records is None:
                break
            coords, points = coordinates(records, path)
            if points.shape[1] != 3:
                raise PcflowError(f"{path}: expected 3-D points, got {points.shape[1]} coordinates per point")
            finite = np.isfinite(points).all(axis=1)
            fields = records[finite] if has_fields(records, coords) else None
            cloud = PointCloud(points[finite], fields, source=str(path), las_header=header)
            with timer("score"):
                inside, score = judge(model, cloud.points, scores=scores)
            with timer("write_clouds"):
                for writer, part in zip(writers, _outputs(cloud, inside, score, writers)):
                    if writer is not None:
                        writer.write(part)
            n_points += len(points)
            n_finite += len(cloud)
            n_inliers += int(inside.sum())
        _check_counts(path, n_points, n_finite)
    return _counts(n_points, n_finite, n_inliers, streamed=True)


def _split_whole(path, model, outputs, scores, ascii, timer) -> dict:
    with timer("read"):
        cloud = read_cloud(path)
    return split_cloud(cloud, model, outputs[:2], classified=outputs[2], scores=scores, ascii=ascii, inputs=(path,),
                       timer=timer)[0]


def split_cloud(cloud, model, outputs, *, classified=None, scores: bool = False, ascii: bool = False, inputs=(),
                timer: Timer | None = None) -> tuple[dict, np.ndarray]:
    """Scores a cloud held in memory and writes its inliers (and outliers, and every point classified).

    Args:
        cloud: the cloud.
        model: as `split_file` takes it.
        outputs: [inliers path] or [inliers path, outliers path]; either may be None.
        classified: where every point goes, outliers marked as noise (`classified_cloud`), or None.
        scores: add the float32 field `outlier_score` (`judge`) to every output.
        ascii: text PLY/PCD instead of binary.
        inputs: paths that must not be overwritten.
        timer: collects the `score` and `write_clouds` stage times.

    Returns:
        (counts as `split_file` returns them, with `streamed` False; (N,) bool array, True for the inliers).
    """
    timer = timer or Timer()
    points = points_3d(cloud)
    with timer("score"):
        inside, score = judge(model, points, scores=scores)
    paths = (list(outputs) + [None, None])[:2] + [classified]
    with timer("write_clouds"):
        for output, part in zip(paths, _outputs(cloud, inside, score, paths)):
            if output is not None:
                write_cloud(output, part, ascii=ascii, inputs=inputs)
    n_points = len(points) + cloud.n_dropped_nonfinite
    return _counts(n_points, len(points), int(inside.sum()), streamed=False), inside


def _counts(n_points: int, n_finite: int, n_inliers: int, *, streamed: bool) -> dict:
    return {"n_points": n_points, "n_dropped_nonfinite": n_points - n_finite, "n_finite": n_finite,
            "n_inliers": n_inliers, "n_outliers": n_finite - n_inliers, "streamed": streamed}


def _check_counts(path, n_points: int, n_finite: int) -> None:
    """The errors `pcflow.io.read_cloud` raises for a file without points or without finite points."""
    if n_points == 0:
        raise PcflowError(f"{path}: the file holds no points")
    if n_finite == 0:
        raise PcflowError(f"{path}: no finite points left (all {n_points} rows have NaN or infinite coordinates)")


def denoise_file(input_path, inliers_path, outliers_path=None, *, model=None,
                 fit_options: FitOptions = FitOptions(), chunk_size: int = DEFAULT_CHUNK_SIZE,
                 ascii: bool = False, classify: bool = False, scores: bool = False,
                 timer: Timer | None = None) -> dict:
    """Removes outliers from a cloud file in bounded memory: fits (unless `model` is given), scores, writes.

    Peak memory grows with `chunk_size` and `fit_options.max_train_points`, not with the file; time grows linearly.
    The result equals `pcflow denoise` on the whole cloud: same model, same rows, same fields.

    Args:
        input_path: a cloud file (see `pcflow.io.iter_cloud_chunks` for which formats stream).
        inliers_path: the cleaned cloud (.ply, .pcd, .xyz, .txt, .csv, .las, .laz).
        outliers_path: also write the removed points here.
        model: a fitted 3-D OneFlow; None fits one with `fit_options`.
        fit_options: model settings when fitting.
        chunk_size: most rows in memory at a time.
        ascii: text PLY/PCD instead of binary.
        classify: write every point to `inliers_path` instead, the outliers marked as noise (`classified_cloud`).
        scores: add the float32 field `outlier_score` (`judge`: > 0 for outliers) to the outputs.
        timer: collects the stage times and shows their progress; None: a new `Timer`.

    Returns:
        dict with `n_points`, `n_dropped_nonfinite`, `n_finite`, `n_train` (None with a given model),
        `n_inliers`, `n_outliers`, `streamed` (False when the file had to be read whole), `model` and `timings`
        (seconds per stage and `total`).
    """
    start = time.perf_counter()
    timer = timer or Timer()
    n_train, bounds = None, None
    if model is None:
        fitted = fit_file(input_path, fit_options, chunk_size=chunk_size, timer=timer)
        model, n_train, bounds = fitted.model, len(fitted.train), fitted.bounds
    targets = (None, outliers_path, inliers_path) if classify else (inliers_path, outliers_path, None)
    result = split_file(input_path, model, *targets[:2], classified_path=targets[2], scores=scores,
                        chunk_size=chunk_size, ascii=ascii, bounds=bounds, timer=timer)
    result.update(n_train=n_train, model=model)
    result["timings"] = {name: round(seconds, 4) for name, seconds in timer.stages.items()}
    result["timings"]["total"] = round(time.perf_counter() - start, 4)
    return result
