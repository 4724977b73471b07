"""Keeps the old import path `pcflow.stream` for one version: the module is now `pcflow.pipeline.stream`."""

from .pipeline.stream import (DEFAULT_CHUNK_SIZE, NOISE_CLASS, SCORE_FIELD, STREAM_MIN_POINTS, UNCLASSIFIED,
                              StreamFit, classified_cloud, denoise_file, fit_file, judge, point_count_hint,
                              should_stream, split_cloud, split_file)

__all__ = [
    "DEFAULT_CHUNK_SIZE", "NOISE_CLASS", "SCORE_FIELD", "STREAM_MIN_POINTS", "UNCLASSIFIED", "StreamFit",
    "classified_cloud", "denoise_file", "fit_file", "judge", "point_count_hint", "should_stream", "split_cloud",
    "split_file",
]
