"""Keeps the old import path `pcflow.batch` for one version: the module is now `pcflow.pipeline.batch`."""

from .pipeline.batch import BATCH_REPORT, expand_inputs, is_batch, output_names, run_batch

__all__ = ["BATCH_REPORT", "expand_inputs", "is_batch", "output_names", "run_batch"]
