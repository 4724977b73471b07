"""LL-Flow, the paper's baseline: the same flow trained by maximum likelihood, its region a latent ball's preimage."""

from __future__ import annotations

from .base import FlowDetector


class LLFlow(FlowDetector):
    """Maximum-likelihood flow detector (the LL-Flow baseline of Maziarka et al.).

    The flow f is trained by maximum likelihood under a standard normal latent; the region is then, as for
    `OneFlow`, the preimage of the latent ball B(0, R) whose radius R is the (1 - alpha) quantile of the training
    points' latent radii, and a point's score is minus its latent radius. The region holds the same share of the data
    as OneFlow's, but is not fitted for a small volume.

    Args:
        alpha: share of the training data left outside the region, 0 < alpha < 1.
        flow: ``'nice'`` (additive couplings, constant Jacobian) or ``'general'`` (affine couplings).
        n_couplings, hidden_features, n_hidden_layers: the flow's architecture, as for `OneFlow`.
        epochs, batch_size, lr, patience: the fit, as for `OneFlow`.
        tol: least improvement of the epoch loss that counts, in nats per point.
        normalize, dtype, device, random_state, progress: as for `OneFlow`.

    Attributes:
        The same as `OneFlow`'s; ``history_["radius"]`` holds NaN (the likelihood fit has no Bernstein radius).

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(500, 2))
        >>> model = LLFlow(alpha=0.1, epochs=5, random_state=0).fit(X)
        >>> print(f"{(model.predict(X) == 1).mean():.2f}")
        0.90
    """

    _fit_loss = "likelihood"
    _stage = "likelihood fit"

    def __init__(
        self,
        alpha: float = 0.05,
        *,
        flow: str = "nice",
        n_couplings: int = 6,
        hidden_features: int = 64,
        n_hidden_layers: int = 2,
        epochs: int = 100,
        batch_size: int = 1000,
        lr: float = 1e-3,
        patience: int | None = 10,
        tol: float = 1e-3,
        normalize: str = "standard",
        dtype: str = "float32",
        device: str = "cpu",
        random_state: int | None = None,
        progress: bool = False,
    ):
        self.alpha = alpha
        self.flow = flow
        self.n_couplings = n_couplings
        self.hidden_features = hidden_features
        self.n_hidden_layers = n_hidden_layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.tol = tol
        self.normalize = normalize
        self.dtype = dtype
        self.device = device
        self.random_state = random_state
        self.progress = progress
