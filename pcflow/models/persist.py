"""Model files: the torch archive of plain values a flow detector is saved as, its format version and its checks."""

from __future__ import annotations

import math
import pickle
import re
import struct
import sys
import warnings
from pathlib import Path

import torch

from ..errors import PcflowError

FORMAT = "pcflow.OneFlow"  # the file family, the same for every estimator (format 1 had only OneFlow)
#: 1: one OneFlow class, its kind in ``params["objective"]``; 2: the estimator's class name in ``"model"``.
FORMAT_VERSION = 2
#: The estimator a format-1 file's ``params["objective"]`` stands for.
LEGACY_KINDS = {"volume": "OneFlow", "likelihood": "LLFlow", "surface": "SurfaceFlow"}

# what torch.load raised on 600 truncated, byte-flipped and random model files and on an empty one (UnpicklingError,
# RuntimeError, OSError, UnicodeDecodeError, IndexError, KeyError, EOFError), on a short non-archive file
# (struct.error) and, in scripts/fuzz_readers.py, on a damaged record size (ValueError) and a damaged tensor
# record (TypeError from torch's _rebuild_tensor_v2): a file that is not an archive of plain values; nothing else
# is caught
_UNREADABLE = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, UnicodeDecodeError, KeyError, IndexError,
               struct.error, ValueError, TypeError)


def write_state(path, state: dict) -> None:
    """Writes `state` (tensors and plain values) to `path` atomically, with the format fields and the version of
    pcflow that wrote it first.

    Equal states give the same bytes: torch.save is handed an open file, not the temporary path, since it names
    the archive's records after a path (a random name here) but ``archive/`` for a file object; and the state is
    `_canonical`.
    """
    from .. import __version__
    from ..io import atomic_output

    # through a file object: a full device is then Python's OSError, not torch's RuntimeError
    with atomic_output(path) as tmp, open(tmp, "wb") as file:
        torch.save(_canonical({"format": FORMAT, "format_version": FORMAT_VERSION,
                               "pcflow_version": __version__, **state}), file)


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
        PcflowError: the file is missing, unreadable, not a pcflow model, of a newer format than this version reads,
            or with entries of the wrong kind (`check_state`). No message repeats torch's advice on its refusals.
    """
    path = Path(path)
    if not path.is_file():
        raise PcflowError(f"model file not found: {path}")
    if path.stat().st_size == 0:
        raise PcflowError(f"{path} is not a readable pcflow model: empty file")
    _check_archive(path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # torch's refusal text advises to disable the check: never shown
        raise PcflowError(_refusal(path, str(error))) from None
    except _UNREADABLE as error:
        raise PcflowError(f"{path} is not a readable pcflow model (damaged, truncated or of another kind): "
                          f"{_first_line(error)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise PcflowError(f"{path} is not a pcflow model file")
    version = state.get("format_version")
    if not _is_int(version) or version < 1:
        raise PcflowError(f"{path} is not a valid pcflow model: its format version is {_shown(version)}")
    if version > FORMAT_VERSION:
        from .. import __version__

        writer = state.get("pcflow_version")
        writer = f"pcflow {' '.join(writer.split())[:40]}" if isinstance(writer, str) else "a newer pcflow"
        raise PcflowError(f"{path} was written by {writer} (model format {version}); this pcflow {__version__} reads "
                          f"formats up to {FORMAT_VERSION}")
    check_state(state, path)
    return state


def _check_archive(path: Path) -> None:
    """Raises a PcflowError unless the file is a zip archive (what `torch.save` writes) whose entries fit in it.

    Checked before torch reads it: torch's loader of other files unpickles them as they come, and a length in
    random bytes made it allocate 390 MB for a file of 57 bytes.
    """
    import zipfile

    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as error:
        raise PcflowError(f"{path} is not a readable pcflow model (damaged, truncated or of another kind): not a "
                          f"torch archive ({_first_line(error)})") from None
    for entry in entries:
        if max(entry.file_size, entry.compress_size) > size:
            raise PcflowError(f"{path} is not a readable pcflow model (damaged or truncated): its entry "
                              f"{_shown(entry.filename)} claims {entry.file_size} bytes in a file of {size}")


def _refusal(path: Path, message: str) -> str:
    """Why torch's `weights_only` loader refused a file, without torch's advice to load it unchecked."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found:
        return (f"{path} is not a pcflow model, or is from a newer pcflow: it holds the Python object "
                f"{found.group(1)}, which pcflow never loads")
    return f"{path} is not a readable pcflow model: not a torch file of tensors and plain values"


def _first_line(error: Exception) -> str:
    """The first sentence of torch's message (its advice on corrupted checkpoints left out)."""
    lines = str(error).strip().splitlines()
    line = re.split(r"(?<=\.)\s", lines[0])[0].rstrip(".") if lines else type(error).__name__
    return "not a file of tensors and plain values" if "weights_only" in line else line


def _shown(value) -> str:
    """A file's value in a message: its repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_state(state: dict, path) -> None:
    """Checks that a model file's entries have the kinds and sizes `restore` needs, before anything is built.

    The flow's settings that size its layers (`n_couplings`, `hidden_features`, `n_hidden_layers`) and the number of
    features may not exceed what the file's own tensors hold, so that no setting of a damaged file makes `restore`
    allocate (or loop) beyond the file's size.

    Raises:
        PcflowError: a missing entry or one of the wrong kind, named.
    """
    def bad(what: str) -> PcflowError:
        return PcflowError(f"{path} is not a valid pcflow model: {what}")

    kinds = {"params": dict, "flow_state": dict, "center": torch.Tensor, "scale": torch.Tensor,
             "coverage_grid": torch.Tensor, "radius_grid": torch.Tensor, "history": (dict, list)}
    for key, kind in kinds.items():
        if not isinstance(state.get(key), kind):
            raise bad(f"entry {key!r} is {'missing' if key not in state else 'a ' + type(state[key]).__name__}")
    for key in ("radius", "volume", "volume_stderr", *(("offset",) if "offset" in state else ())):
        if not _is_number(state.get(key)):
            raise bad(f"entry {key!r} is {_shown(state.get(key, 'missing'))}, not a number")
    for key in ("n_iter", "n_samples_fit", "seed", "n_features_in"):
        if not _is_int(state.get(key)) or state[key] < 0:
            raise bad(f"entry {key!r} is {_shown(state.get(key, 'missing'))}, not a count")
    if state["format_version"] >= 2 and not isinstance(state.get("model"), str):
        raise bad(f"entry 'model' is {_shown(state.get('model', 'missing'))}, not a class name")
    if not all(isinstance(k, str) for k in state["params"]):
        raise bad("its settings have names that are not strings")
    tensors = state["flow_state"]
    if not tensors or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()):
        raise bad("its flow's state is not a table of named tensors")
    dim, numel = state["n_features_in"], sum(t.numel() for t in tensors.values())
    if dim < 2 or state["center"].shape != (dim,) or state["scale"].shape != (dim,):
        raise bad(f"{dim} features, but center and scale of shapes {tuple(state['center'].shape)} and "
                  f"{tuple(state['scale'].shape)}")
    if state["coverage_grid"].ndim != 1 or state["coverage_grid"].shape != state["radius_grid"].shape:
        raise bad("its coverage and radius grids differ in shape")
    sizes = {name: state["params"].get(name, 1) for name in ("n_couplings", "hidden_features", "n_hidden_layers")}
    for name, value in sizes.items():
        if not _is_int(value) or not 0 <= value <= numel:
            raise bad(f"setting {name}={_shown(value)} does not fit its flow's {numel} values")
    # the weights of the hidden layers alone (`pcflow.flows.networks.mlp`), a lower bound of the flow's size
    couplings, width, depth = sizes["n_couplings"], sizes["hidden_features"], sizes["n_hidden_layers"]
    least = couplings * (width * min(depth, 1) + max(depth - 1, 0) * width ** 2)
    if least > numel:
        raise bad(f"its settings (n_couplings={couplings}, hidden_features={width}, n_hidden_layers={depth}) need at "
                  f"least {least} weights, its flow holds {numel}")


def kind(state: dict) -> str:
    """The class name of the estimator a file holds: its ``model`` entry, or a format-1 file's objective's."""
    if state["format_version"] >= 2:
        return " ".join(state["model"].split())[:60]
    objective = state["params"].get("objective", "volume")
    return LEGACY_KINDS.get(objective, _shown(objective)) if isinstance(objective, str) else _shown(objective)


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


def rebuilt(target: type, params: dict, state: dict, device: str, where: torch.device, path):
    """An estimator of class `target` with `params` (on `device`, resolved as `where`) and the fitted state of a
    model file's checked `state`; any inconsistency of the file is a one-line PcflowError naming `path`."""
    try:  # the entries' kinds are checked (`check_state`); what is left is their values' consistency
        model = target(**{**params, "device": device})
        model._check_params()
        restore(model, state, where)
        model._load_extra(state)
    except PcflowError as error:
        raise PcflowError(f"{path} is not a valid pcflow model: {error}") from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RuntimeError) as error:
        raise PcflowError(f"{path} is not a valid pcflow model: {' '.join(str(error).split())}") from None
    return model


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
