"""Tests of the shared base of the flow detectors: chunked passes, the fits' optimiser and start-up."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from pcflow import PcflowError


def test_results_do_not_depend_on_the_rows_per_pass(fitted, blobs, monkeypatch):
    """Scoring and mapping run in passes of a few thousand rows on the CPU; the split leaves no trace."""
    import pcflow.models.base as base

    X, _ = blobs
    model = fitted["general", "volume"]
    radii, latent = model.latent_radius(X), model.transform(X)
    monkeypatch.setattr(base, "_CPU_CHUNK", 7)
    np.testing.assert_allclose(model.latent_radius(X), radii, rtol=1e-5)
    np.testing.assert_allclose(model.transform(X), latent, rtol=1e-5, atol=1e-6)


def test_chunks_side_by_side_give_the_sequential_results(fitted, blobs, monkeypatch):
    """With several torch threads the CPU passes run chunk by chunk in as many Python threads (torch single-threaded
    meanwhile): the same values as one chunk after another, and torch's thread count comes back."""
    import pcflow.models.base as base

    X, _ = blobs
    model = fitted["general", "volume"]
    monkeypatch.setattr(base, "_CPU_CHUNK", 50)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # one thread: the chunks run one after another
        radii, latent = model.latent_radius(X), model.transform(X)
        torch.set_num_threads(2)
        counts = []
        real = torch.set_num_threads
        monkeypatch.setattr(torch, "set_num_threads", lambda n: counts.append(n) or real(n))
        np.testing.assert_allclose(model.latent_radius(X), radii, rtol=1e-6)
        np.testing.assert_allclose(model.transform(X), latent, rtol=1e-6, atol=1e-7)
        assert counts == [1, 2, 1, 2]  # the side-by-side path was taken, and restored the count each time
        assert torch.get_num_threads() == 2

        def fail(start):
            raise PcflowError(f"chunk at {start}")

        with pytest.raises(PcflowError, match="chunk at"):
            base._each_chunk(fail, range(0, 200, 50), cpu=True)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_adam_and_its_cosine_schedule_give_torch_optims_fused_adam_and_cosine_annealing_floats():
    from pcflow.optim import Adam, CosineSchedule, adam

    generator = torch.Generator().manual_seed(0)
    start = [torch.randn(4, 3, generator=generator), torch.randn(5, generator=generator)]
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    theirs = [torch.nn.Parameter(t.clone()) for t in start]
    optimizer = adam(ours, 0.1)
    assert isinstance(optimizer, Adam)
    reference = torch.optim.Adam(theirs, lr=0.1, fused=True)
    schedule = CosineSchedule(optimizer, 10, eta_min=0.01)
    reference_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(reference, T_max=10, eta_min=0.01)
    for step in range(25):  # past T_max, where the schedule turns back up
        for params in (ours, theirs):
            params[0].grad = params[0].detach() ** 2 - 1.0 + 0.1 * step
            params[1].grad = None if step % 3 == 0 else torch.cos(params[1].detach())  # no gradient: left alone
        optimizer.step()
        reference.step()
        schedule.step()
        reference_schedule.step()
        assert optimizer.param_groups[0]["lr"] == reference.param_groups[0]["lr"]
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
        optimizer.zero_grad()
        assert all(p.grad is None for p in ours)
    assert (ours[0] - start[0]).abs().min() > 0.01  # every weight moved


def test_adam_is_torch_optims_where_torch_has_no_fused_kernel_for_the_parameters(monkeypatch):
    import pcflow.optim as optim

    mixed = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))]
    assert isinstance(optim.adam(mixed, 0.1), torch.optim.Adam)
    assert isinstance(optim.adam([torch.nn.Parameter(torch.zeros(3))], 0.1), optim.Adam)

    def no_cpu_kernel(*args, **kwargs):  # what torch before 2.4 does with CPU tensors
        raise NotImplementedError("Could not run 'aten::_fused_adam_' with arguments from the 'CPU' backend")

    monkeypatch.setattr(torch, "_fused_adam_", no_cpu_kernel)
    monkeypatch.setattr(optim, "_FUSED_CHECKED", {})
    assert isinstance(optim.adam([torch.nn.Parameter(torch.zeros(3))], 0.1), torch.optim.Adam)


def test_fitting_does_not_import_torch_dynamo():
    """torch.optim's optimizers import torch._dynamo (seconds of start-up); the fits' own Adam does not."""
    code = (
        "import sys, numpy as np\n"
        "from pcflow.models import SurfaceFlow\n"
        "X = np.random.default_rng(0).normal(size=(500, 3))\n"
        "SurfaceFlow(flow='general', epochs=2, surface_steps=3, n_couplings=2, hidden_features=8,\n"
        "            n_surface_samples=64, surface_batch_size=64, random_state=0).fit(X)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False"]
