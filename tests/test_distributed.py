"""Data-parallel training: two CPU processes with the gloo backend against a single process."""

import faulthandler

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from pcflow import OneFlow, SurfaceFlow
from pcflow.distributed import SingleProcess, group, shard, shutdown

from models.samples import FAST, two_blobs


def _train_rank(rank, world_size, init_file, model_path, estimator, params):
    faulthandler.enable()  # a rank that crashes prints where
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        X, _ = two_blobs()
        parallel = group()
        assert parallel.world_size == world_size and parallel.rank == rank
        model = estimator(**params).fit(shard(X, parallel))
        if rank == 0:
            model.save(model_path)
    finally:
        shutdown()


@pytest.mark.parametrize("flow", ["nice", "general"])
def test_two_gloo_processes_match_single_process_quality(tmp_path, flow):
    X, n_big = two_blobs()
    params = dict(FAST, alpha=0.05, flow=flow, epochs=30)
    mp.spawn(_train_rank, args=(2, str(tmp_path / "init"), str(tmp_path / "model.pt"), OneFlow, params), nprocs=2,
             join=True)
    parallel = OneFlow.load(tmp_path / "model.pt")
    single = OneFlow(**params).fit(X)
    assert parallel.n_samples_fit_ == len(X)  # the radius is the quantile over both shards
    labels = parallel.predict(X)
    assert abs((labels == 1).mean() - 0.95) < 2 / len(X)
    assert (labels[n_big:] == -1).mean() >= 0.9
    assert parallel.volume_ < 1.15 * single.volume_
    # the normalisation is the one of the whole data set
    np.testing.assert_allclose(parallel.center_, single.center_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(parallel.scale_, single.scale_, rtol=1e-12)


def test_two_gloo_processes_fit_a_surface_model(tmp_path):
    X, _ = two_blobs()
    params = dict(FAST, alpha=0.05, flow="general", epochs=5, surface_steps=20, surface_batch_size=256,
                  n_surface_samples=256)
    mp.spawn(_train_rank, args=(2, str(tmp_path / "init"), str(tmp_path / "model.pt"), SurfaceFlow, params),
             nprocs=2, join=True)
    model = OneFlow.load(tmp_path / "model.pt")
    # every rank's points are among the reference points, and the threshold is the quantile over both shards
    assert len(model.reference_points_) == len(X)
    np.testing.assert_allclose(np.sort(model.reference_points_ + model.center_, axis=0), np.sort(X, axis=0),
                               atol=1e-12)
    assert abs((model.predict(X) == -1).mean() - 0.05) < 2 / len(X)
    assert len(model.history_["surface_loss"]) == 1


def _fit_cloud_rank(rank, world_size, init_file, model_path, points, options):
    from pcflow.io import PointCloud
    from pcflow.pipeline import fit_cloud

    faulthandler.enable()
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        model = fit_cloud(PointCloud(points=points, source="scene"), options)
        if rank == 0:
            model.save(model_path)
    finally:
        shutdown()


def test_two_gloo_processes_agree_on_auto_modes_fallback(tmp_path, table_and_wall):
    from pcflow.pipeline import FitOptions

    # every rank measures the same surface gap, gives the surface up at the same step and fits the envelope
    options = FitOptions(epochs=30, surface_steps=150, n_couplings=4, hidden_features=32)
    mp.spawn(_fit_cloud_rank, args=(2, str(tmp_path / "init"), str(tmp_path / "model.pt"), table_and_wall, options),
             nprocs=2, join=True)
    model = OneFlow.load(tmp_path / "model.pt")
    assert model.objective == "volume" and model.n_samples_fit_ == len(table_and_wall)


def test_single_process_group_is_trivial():
    parallel = group()
    assert isinstance(parallel, SingleProcess) and parallel.world_size == 1
    array = np.arange(10.0)
    np.testing.assert_array_equal(shard(array, parallel), array)
    assert parallel.min(3) == 3


def test_shutdown_frees_the_parallel_wrappers_before_leaving_the_group(tmp_path, monkeypatch):
    import gc
    import weakref

    import torch
    from torch import nn

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    destroy, seen = dist.destroy_process_group, []
    monkeypatch.setattr(dist, "destroy_process_group", lambda: (seen.append(alive()), destroy()))
    enabled = gc.isenabled()
    gc.disable()  # only shutdown's own collection may free the wrapper
    try:
        wrapper = nn.parallel.DistributedDataParallel(nn.Linear(3, 2))
        wrapper(torch.ones(4, 3)).sum().backward()
        alive = weakref.ref(wrapper)
        cycle = [wrapper]
        cycle.append(cycle)
        del wrapper, cycle
        assert alive() is not None  # only a reference cycle holds it
        shutdown()
        assert seen == [None] and not dist.is_initialized()  # freed while the group was still alive
    finally:
        if enabled:
            gc.enable()
        if dist.is_initialized():
            destroy()
    shutdown()  # without a group it does nothing
    assert seen == [None]
