"""Chunked denoising of clouds too large to hold whole: read, sample, fit, score and write in bounded memory."""

from __future__ import annotations

import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .errors import PcflowError
from .io import (CloudWriter, ChunkLayoutError, PointCloud, _coordinates, _existing_file, iter_cloud_chunks,
                 read_cloud, write_cloud)
from .pipeline import FitOptions, Timer, fit_cloud, points_3d, training_rows

#: Rows read, scored and written at a time.
DEFAULT_CHUNK_SIZE = 1_000_000
#: Clouds with at least this many points (as their header or size suggests) are streamed by `should_stream`.
STREAM_MIN_POINTS = 2_000_000
_BYTES_PER_POINT = 24  # for files without a count in their header: a binary xyz float64 row, or a short text row


@dataclass
class StreamFit:
    """A model fitted by `fit_file` and what the first pass learned about the file.

    Attributes:
        model: the fitted OneFlow.
        train: (M, 3) float64 array of the training points (a seeded subset, as `pipeline.fit_cloud` draws it).
        n_points: rows in the file.
        n_dropped_nonfinite: rows with a NaN or infinite coordinate.
    """

    model: object
    train: np.ndarray
    n_points: int
    n_dropped_nonfinite: int


def point_count_hint(path) -> int:
    """Points in a cloud file: the header's count for PLY and PCD, else an estimate from the file size."""
    path = _existing_file(path)
    suffix = path.suffix.lower()
    with open(path, "rb") as f:
        head = f.read(1 << 16).decode("latin-1")
    for line in head.splitlines():
        words = line.split()
        if suffix == ".ply" and words[:2] == ["element", "vertex"] and len(words) == 3 and words[2].isdigit():
            return int(words[2])
        if suffix == ".pcd" and words[:1] == ["POINTS"] and len(words) == 2 and words[1].isdigit():
            return int(words[1])
    return path.stat().st_size // _BYTES_PER_POINT


def should_stream(path, min_points: int = STREAM_MIN_POINTS) -> bool:
    """Whether a cloud is large enough (at least `min_points`, see `point_count_hint`) to be streamed."""
    return point_count_hint(path) >= min_points


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
    with tempfile.TemporaryFile(prefix="pcflow-coords-") as scratch:
        with timer("read"):
            for records in iter_cloud_chunks(path, chunk_size):
                _, points = _coordinates(records, path)
                finite = np.isfinite(points).all(axis=1)
                scratch.write(np.ascontiguousarray(points[finite]).tobytes())
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
    return StreamFit(model, train, n_points, n_points - n_finite)


def split_file(path, model, inliers_path, outliers_path=None, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
               ascii: bool = False, timer: Timer | None = None) -> dict:
    """Scores a cloud file chunk by chunk and writes its inliers (and outliers) with every vertex property.

    Rows come out in file order with the fields and dtypes `pcflow.io.write_cloud` writes, so the outputs equal
    those of the whole-file path. Outputs are atomic: on any error no output file appears. Should a later chunk need
    other field dtypes than the first (`pcflow.io.ChunkLayoutError`), the file is read whole instead.

    Args:
        path: a cloud file.
        model: a fitted 3-D OneFlow (or any object with `predict(X) -> +1 / -1`).
        inliers_path: where the points inside the region go (.ply, .pcd, .xyz, .txt, .csv).
        outliers_path: where the removed points go, or None.
        chunk_size: most rows in memory at a time.
        ascii: text PLY/PCD instead of binary.
        timer: collects the `read`, `score` and `write_clouds` stage times.

    Returns:
        dict with `n_points`, `n_dropped_nonfinite`, `n_finite`, `n_inliers`, `n_outliers`, `streamed`.
    """
    timer = timer or Timer()
    outputs = [Path(p) for p in (inliers_path, outliers_path) if p is not None]
    try:
        return _split_chunks(path, model, outputs, chunk_size, ascii, timer)
    except ChunkLayoutError:
        return _split_whole(path, model, outputs, ascii, timer)


def _split_chunks(path, model, outputs, chunk_size, ascii, timer) -> dict:
    n_points = n_finite = n_inliers = 0
    with CloudWriter(outputs[0], ascii=ascii, inputs=(path,)) as inliers:
        outliers = CloudWriter(outputs[1], ascii=ascii, inputs=(path,)) if len(outputs) > 1 else None
        with outliers or nullcontext():
            chunks = iter_cloud_chunks(path, chunk_size)
            while True:
                with timer("read"):
                    records = next(chunks, None)
                if records is None:
                    break
                coords, points = _coordinates(records, path)
                if points.shape[1] != 3:
                    raise PcflowError(f"{path}: expected 3-D points, got {points.shape[1]} coordinates per point")
                finite = np.isfinite(points).all(axis=1)
                fields = records[finite] if len(records.dtype.names) > len(coords) else None
                cloud = PointCloud(points[finite], fields, source=str(path))
                with timer("score"):
                    inside = model.predict(cloud.points) == 1 if len(cloud) else np.zeros(0, dtype=bool)
                with timer("write_clouds"):
                    inliers.write(cloud.subset(inside))
                    if outliers is not None:
                        outliers.write(cloud.subset(~inside))
                n_points += len(points)
                n_finite += len(cloud)
                n_inliers += int(inside.sum())
            _check_counts(path, n_points, n_finite)
    return _counts(n_points, n_finite, n_inliers, streamed=True)


def _split_whole(path, model, outputs, ascii, timer) -> dict:
    with timer("read"):
        cloud = read_cloud(path)
    return split_cloud(cloud, model, outputs, ascii=ascii, inputs=(path,), timer=timer)[0]


def split_cloud(cloud, model, outputs, *, ascii: bool = False, inputs=(), timer: Timer | None = None
                ) -> tuple[dict, np.ndarray]:
    """Scores a cloud held in memory and writes its inliers (and outliers, when `outputs` has two paths).

    Returns:
        (counts as `split_file` returns them, with `streamed` False; (N,) bool array, True for the inliers).
    """
    timer = timer or Timer()
    points = points_3d(cloud)
    with timer("score"):
        inside = model.predict(points) == 1
    with timer("write_clouds"):
        for output, keep in zip(outputs, (inside, ~inside)):
            write_cloud(output, cloud.subset(keep), ascii=ascii, inputs=inputs)
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
                 ascii: bool = False, timer: Timer | None = None) -> dict:
    """Removes outliers from a cloud file in bounded memory: fits (unless `model` is given), scores, writes.

    Peak memory grows with `chunk_size` and `fit_options.max_train_points`, not with the file; time grows linearly.
    The result equals `pcflow denoise` on the whole cloud: same model, same rows, same fields.

    Args:
        input_path: a cloud file (see `pcflow.io.iter_cloud_chunks` for which formats stream).
        inliers_path: the cleaned cloud (.ply, .pcd, .xyz, .txt, .csv).
        outliers_path: also write the removed points here.
        model: a fitted 3-D OneFlow; None fits one with `fit_options`.
        fit_options: model settings when fitting.
        chunk_size: most rows in memory at a time.
        ascii: text PLY/PCD instead of binary.
        timer: collects the stage times and shows their progress; None: a new `Timer`.

    Returns:
        dict with `n_points`, `n_dropped_nonfinite`, `n_finite`, `n_train` (None with a given model),
        `n_inliers`, `n_outliers`, `streamed` (False when the file had to be read whole), `model` and `timings`
        (seconds per stage and `total`).
    """
    start = time.perf_counter()
    timer = timer or Timer()
    n_train = None
    if model is None:
        fitted = fit_file(input_path, fit_options, chunk_size=chunk_size, timer=timer)
        model, n_train = fitted.model, len(fitted.train)
    result = split_file(input_path, model, inliers_path, outliers_path, chunk_size=chunk_size, ascii=ascii,
                        timer=timer)
    result.update(n_train=n_train, model=model)
    result["timings"] = {name: round(seconds, 4) for name, seconds in timer.stages.items()}
    result["timings"]["total"] = round(time.perf_counter() - start, 4)
    return result
