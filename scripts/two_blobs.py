"""OneFlow against LL-Flow on the paper's Two Blobs (98% / 2%): coverage, region volume, small-blob rejection, time.

Usage:
    python scripts/two_blobs.py [--n 2000] [--epochs 100] [--seeds 3]
"""

import argparse
import time

import numpy as np

from pcflow import PAPER_2D, LLFlow, OneFlow


def two_blobs(n: int, seed: int) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(seed)
    n_big = int(0.98 * n)
    big = rng.normal(size=(n_big, 2)) * 0.5
    small = rng.normal(size=(n - n_big, 2)) * 0.1 + 4.0
    return np.vstack([big, small]), n_big


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print(f"Two Blobs, n={args.n}, alpha=0.05, paper 2D architecture {PAPER_2D}, epochs<={args.epochs}")
    print("| method | flow | coverage | small blob outside | volume | epochs run | s/epoch |")
    print("|---|---|---|---|---|---|---|")
    for flow in ("nice", "general"):
        for estimator, name in ((OneFlow, "OneFlow"), (LLFlow, "LL-Flow")):
            rows = []
            for seed in range(args.seeds):
                X, n_big = two_blobs(args.n, seed)
                model = estimator(alpha=0.05, flow=flow, epochs=args.epochs, random_state=seed,
                                **PAPER_2D)
                start = time.perf_counter()
                model.fit(X)
                elapsed = time.perf_counter() - start
                labels = model.predict(X)
                rows.append(((labels == 1).mean(), (labels[n_big:] == -1).mean(), model.volume_, model.n_iter_,
                             elapsed / model.n_iter_))
            mean = np.mean(rows, axis=0)
            std = np.std(rows, axis=0)
            print(f"| {name} | {flow} | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} +- {std[2]:.3f} | "
                  f"{mean[3]:.0f} | {mean[4]:.4f} |")


if __name__ == "__main__":
    main()
