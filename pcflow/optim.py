"""Adam and a cosine learning-rate schedule for the flow fits, without torch.optim's start-up cost.

Kept over torch.optim because its first optimizer imports torch._dynamo (torch 2.13, one thread: 1.45 s a process).

`Adam` calls the kernel torch.optim.Adam(fused=True) calls, with the same state, so its updates are the same floats
(one kernel over all of a flow's few dozen parameter tensors: about a fifth of the time of torch's per-tensor update);
`CosineSchedule` replays torch.optim.lr_scheduler.CosineAnnealingLR's recursion, so its learning rates are the same
floats too (tests/test_detector.py checks both against torch.optim step by step). A seeded OneFlow(flow='general',
epochs=3) fit of 2000 points takes 0.9-1.0 s with them and 3.7-4.1 s with torch.optim, with bit-identical scores.
Where torch has no fused Adam kernel for the parameters, `adam` returns torch.optim.Adam itself.
"""

from __future__ import annotations

import math

import torch

#: devices whose tensors torch's fused Adam kernel takes
FUSED_DEVICES = ("cpu", "cuda")


class Adam:
    """Adam (Kingma and Ba) over one device's floating-point parameters, one parameter group, no weight decay.

    torch's fused Adam kernel (`torch._fused_adam_`), called as torch.optim.Adam(fused=True) calls it; `adam` checks
    that it runs for the parameters' device and dtype. The interface the fits use of a torch optimizer:
    `param_groups` (set ``param_groups[0]["lr"]`` to change the learning rate), `zero_grad` and `step`. Parameters
    without a gradient are left alone in a step, as torch.optim does.
    """

    def __init__(self, parameters, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        params = list(parameters)
        if not params:
            raise ValueError("Adam got no parameters")
        self.param_groups = [{"params": params, "lr": lr}]
        self.betas, self.eps = betas, eps
        self._exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        self._exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        self._steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in params]

    def zero_grad(self) -> None:
        for p in self.param_groups[0]["params"]:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        rows = [i for i, p in enumerate(group["params"]) if p.grad is not None]
        if not rows:
            return
        _fused_update([group["params"][i] for i in rows], [group["params"][i].grad for i in rows],
                      [self._exp_avg[i] for i in rows], [self._exp_avg_sq[i] for i in rows],
                      [self._steps[i] for i in rows], lr=group["lr"], betas=self.betas, eps=self.eps)


def _fused_update(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr: float, betas: tuple[float, float],
                  eps: float) -> None:
    """One Adam update in place, as torch.optim.Adam(fused=True) makes it: the step counts first, then the kernel."""
    torch._foreach_add_(steps, 1)
    torch._fused_adam_(
        params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=lr, beta1=betas[0], beta2=betas[1],
        weight_decay=0.0, eps=eps, maximize=False, grad_scale=None, found_inf=None,
    )


def adam(parameters, lr: float):
    """`Adam` where torch has its fused kernel for the parameters (all on one CPU or CUDA device, one floating-point
    dtype, and a torch whose kernel runs there: CPU from torch 2.4), else torch.optim.Adam."""
    params = list(parameters)
    kinds = {(p.device, p.dtype) for p in params}
    if len(kinds) == 1 and _fused_kernel_runs(*kinds.pop()):
        return Adam(params, lr)
    return torch.optim.Adam(params, lr=lr)


def _fused_kernel_runs(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether torch's fused Adam kernel takes tensors of this device and dtype (one update of a tiny tensor)."""
    if device.type not in FUSED_DEVICES or not dtype.is_floating_point or not hasattr(torch, "_fused_adam_"):
        return False
    key = (str(device), dtype)
    if key not in _FUSED_CHECKED:
        param, grad, exp_avg, exp_avg_sq = (torch.zeros(1, device=device, dtype=dtype) for _ in range(4))
        try:
            with torch.no_grad():
                _fused_update([param], [grad], [exp_avg], [exp_avg_sq], [torch.zeros((), device=device)], lr=0.1,
                              betas=(0.9, 0.999), eps=1e-8)
            _FUSED_CHECKED[key] = True
        except (RuntimeError, NotImplementedError, TypeError):  # no kernel for this device or dtype in this torch
            _FUSED_CHECKED[key] = False
    return _FUSED_CHECKED[key]


_FUSED_CHECKED: dict = {}


class CosineSchedule:
    """Cosine annealing of an optimizer's learning rate from its initial value to `eta_min` over `t_max` calls of
    `step`: torch.optim.lr_scheduler.CosineAnnealingLR's values, from the same recursion.

    Args:
        optimizer: anything with torch's `param_groups` (one or more groups, each with an ``"lr"``).
        t_max: calls of `step` that bring the rate down to `eta_min`.
        eta_min: lowest learning rate.
    """

    def __init__(self, optimizer, t_max: int, eta_min: float = 0.0):
        self.optimizer, self.t_max, self.eta_min = optimizer, t_max, eta_min
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0

    def step(self) -> None:
        self.last_epoch += 1
        epoch, t_max, eta_min = self.last_epoch, self.t_max, self.eta_min
        for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups):
            if (epoch - 1 - t_max) % (2 * t_max) == 0:
                group["lr"] = group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
            else:
                group["lr"] = ((1 + math.cos(math.pi * epoch / t_max)) / (1 + math.cos(math.pi * (epoch - 1) / t_max))
                               * (group["lr"] - eta_min) + eta_min)
