"""Model files: the torch archive of plain values a flow detector is saved as, its format version and its checks."""

from __future__ import annotations

import pickle
import struct
import sys
from pathlib import Path

import torch

from ..errors import PcflowError

FORMAT = "pcflow.OneFlow"  # the file family, the same for every estimator (format 1 had only OneFlow)
#: 1: one OneFlow class, its kind in ``params["objective"]``; 2: the estimator's class name in ``"model"``.
FORMAT_VERSION = 2
#: The estimator a format-1 file's ``params["objective"]`` stands for.
LEGACY_KINDS = {"volume": "OneFlow", "likelihood": "LLFlow", "surface": "SurfaceFlow"}

# what torch.load raised on 600 truncated, byte-flipped and random model files and on an empty one (UnpicklingError,
# RuntimeError, OSError, UnicodeDecodeError, IndexError, KeyError, EOFError) and on a short non-archive file
# (struct.error): a file that is not an archive of plain values; nothing else is caught
_UNREADABLE = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, UnicodeDecodeError, KeyError, IndexError,
               struct.error)


def write_state(path, state: dict) -> None:
    """Writes `state` (tensors and plain values) to `path` atomically, with the format fields first.

    Equal states give the same bytes: torch.save is handed an open file, not the temporary path, since it names
    the archive's records after a path (a random name here) but ``archive/`` for a file object; and the state is
    `_canonical`.
    """
    from ..io import atomic_output

    # through a file object: a full device is then Python's OSError, not torch's RuntimeError
    with atomic_output(path) as tmp, open(tmp, "wb") as file:
        torch.save(_canonical({"format": FORMAT, "format_version": FORMAT_VERSION, **state}), file)


def _canonical(value):
    """`value` with its strings interned and its dicts, lists and tuples rebuilt, so that equal values share objects
    alike: pickle writes a reference for an object it has written before, so a string equal to another but not the
    same object (one a worker process unpickled, say) would change the bytes."""
    if isinstance(value, str):
        return sys.intern(str(value))
    if isinstance(value, dict):
        return type(value)((_canonical(k), _canonical(v)) for k, v in value.items())
    if type(value) in (list, tuple):
        return type(value)(map(_canonical, value))
    return value


def read_state(path) -> dict:
    """The checked contents of a model file (torch's `weights_only` loading: no code is unpickled).

    Raises:
        PcflowError: the file is missing, unreadable, not a pcflow model, or of a newer format than this version reads.
    """
    path = Path(path)
    if not path.is_file():
        raise PcflowError(f"model file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except _UNREADABLE as error:
        raise PcflowError(f"{path} is not a readable pcflow model: {str(error).splitlines()[0]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise PcflowError(f"{path} is not a pcflow model file")
    if state["format_version"] > FORMAT_VERSION:
        raise PcflowError(f"{path} was written by a newer pcflow (model format {state['format_version']}; this version "
                          f"reads formats up to {FORMAT_VERSION})")
    return state


def kind(state: dict) -> str:
    """The class name of the estimator a file holds: its ``model`` entry, or a format-1 file's objective's."""
    if state["format_version"] >= 2:
        return state["model"]
    return LEGACY_KINDS[state["params"].get("objective", "volume")]


def fitted_state(model) -> dict:
    """The parameters and fitted state every flow detector saves, as tensors and plain values."""
    return {
        "params": model.get_params(),
        "flow_state": {k: v.detach().cpu() for k, v in model.flow_.state_dict().items()},
        "center": torch.as_tensor(model.center_),
        "scale": torch.as_tensor(model.scale_),
        "radius": model.radius_,
        "offset": model.offset_,
        "coverage_grid": torch.as_tensor(model._coverage_grid),
        "radius_grid": torch.as_tensor(model._radius_grid),
        "volume": model.volume_,
        "volume_stderr": model.volume_stderr_,
        "history": model.history_,
        "n_iter": model.n_iter_,
        "n_features_in": model.n_features_in_,
        "n_samples_fit": model.n_samples_fit_,
        "seed": model.seed_,
    }


def restore(model, state: dict, device: torch.device) -> None:
    """Sets the fitted state `fitted_state` saved on an unfitted `model` of the file's parameters, its flow on
    `device`."""
    dim = int(state["n_features_in"])
    flow = model._build_flow(dim)
    flow.load_state_dict(state["flow_state"])
    model.flow_ = flow.to(device=device, dtype=model._torch_dtype).eval()
    model.center_ = state["center"].numpy()
    model.scale_ = state["scale"].numpy()
    model.radius_ = float(state["radius"])
    model.offset_ = float(state.get("offset", -model.radius_))
    model._coverage_grid = state["coverage_grid"].numpy()
    model._radius_grid = state["radius_grid"].numpy()
    model.volume_, model.volume_stderr_ = float(state["volume"]), float(state["volume_stderr"])
    model.history_ = state["history"]
    model.n_iter_ = int(state["n_iter"])
    model.n_features_in_ = dim
    model.n_samples_fit_ = int(state["n_samples_fit"])
    model.seed_ = int(state["seed"])
    model.constant_jacobian_ = flow.constant_jacobian
