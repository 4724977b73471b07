"""Fuzzes every reader: mutated, truncated and random versions of small valid files, each read once with bounds.

Each case must give a well-formed cloud (or model) or pcflow's own one-line error (`PcflowError`), within a time
limit and with a peak of traced memory (tracemalloc, which also sees numpy's buffers) proportional to the file's size,
and without growing the process's peak resident memory (what native code such as lazrs or torch touches) by more;
anything else is counted as "other" and printed. Usage:

    python scripts/fuzz_readers.py --cases 2000 --seed 0            # every format
    python scripts/fuzz_readers.py --cases 200 --formats PLY-ascii PCD-binary
"""

from __future__ import annotations

import argparse
import io
import resource
import signal
import struct
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

#: Seconds one case may take.
TIME_LIMIT = 10.0
#: Peak traced memory of one case: this much, plus MEMORY_PER_BYTE times the file's size.
MEMORY_BASE = 16 << 20
MEMORY_PER_BYTE = 400
#: Header numbers swapped in: edges of the integer types and counts far beyond any small file.
NUMBERS = (0, 1, 2, 3, 7, 255, 256, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32 + 1, 10 ** 6, 10 ** 9, 10 ** 12,
           2 ** 63 - 1, 10 ** 19)
TEXT_NUMBERS = tuple(str(n) for n in NUMBERS) + ("-1", "-1000000000000", "1e12", "nan", "0x10", "", "4.5")


#: The formats `make_seeds` makes valid files of, in the table's order.
FORMATS = ("PLY-ascii", "PLY-binary-le", "PLY-binary-be", "PCD-ascii", "PCD-binary", "PCD-binary_compressed", "XYZ",
           "TXT", "CSV", "PTS", "LAS", "LAZ", "OBJ", "STL", "OFF", "GLB", "model")


class CaseTimeout(Exception):
    """A case ran past `TIME_LIMIT`."""


# ------------------------------------------------------------------------------------------------------------------
# seeds: small valid files of each format


def _cloud(n=40, seed=0):
    from pcflow.io import PointCloud

    rng = np.random.default_rng(seed)
    fields = np.empty(n, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"),
                                ("blue", "u1"), ("intensity", "u2")])
    points = rng.normal(size=(n, 3)).astype(np.float32)
    for k, axis in enumerate("xyz"):
        fields[axis] = points[:, k]
    for name in ("red", "green", "blue"):
        fields[name] = rng.integers(0, 256, n)
    fields["intensity"] = rng.integers(0, 65536, n)
    return PointCloud(points.astype(np.float64), fields)


def _pcd_compressed(records: np.ndarray) -> bytes:
    """A binary_compressed PCD of x y z float: fields one after the other, LZF literal runs and a back-reference."""
    raw = b"".join(np.ascontiguousarray(records[name], dtype="<f4").tobytes() for name in "xyz")
    body = raw + raw[:8]  # the first 8 bytes again: one back-reference, so the seed covers both LZF codes
    compressed = b"".join(bytes([len(raw[i:i + 32]) - 1]) + raw[i:i + 32] for i in range(0, len(raw), 32))
    compressed += bytes([(6 << 5) | ((len(raw) - 1) >> 8), (len(raw) - 1) & 255])  # copy 8 from len(raw) back
    n = len(records)
    header = (f"# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH {n}\nHEIGHT 1\n"
              f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary_compressed\n").encode()
    # the copy adds 8 bytes past the n points' data, which the reader leaves
    return header + struct.pack("<II", len(compressed), len(body)) + compressed


def make_seeds(folder: Path) -> dict[str, tuple[str, list[bytes]]]:
    """Format name -> (suffix, valid files' bytes) for every reader; model seeds fit two tiny models."""
    from plyfile import PlyData, PlyElement

    from pcflow.io import read_mesh, write_cloud, write_mesh
    from pcflow.io.records import records_of

    folder.mkdir(parents=True, exist_ok=True)
    clouds = [_cloud(40, 0), _cloud(7, 1)]

    def written(suffix, cloud, **options):
        path = folder / f"seed{suffix}"
        path.unlink(missing_ok=True)
        write_cloud(path, cloud, **options)
        return path.read_bytes()

    def big_endian_ply(cloud):
        out = io.BytesIO()
        PlyData([PlyElement.describe(records_of(cloud), "vertex")], byte_order=">").write(out)
        return out.getvalue()

    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=1)
    meshes = {}
    for suffix in (".obj", ".stl", ".off", ".glb", ".ply"):
        path = folder / f"mesh{suffix}"
        path.unlink(missing_ok=True)
        write_mesh(path, sphere)
        meshes[suffix] = path.read_bytes()
        read_mesh(path)
    seeds = {
        "PLY-ascii": (".ply", [written(".ply", c, ascii=True) for c in clouds]),
        "PLY-binary-le": (".ply", [written(".ply", c) for c in clouds] + [meshes[".ply"]]),
        "PLY-binary-be": (".ply", [big_endian_ply(c) for c in clouds]),
        "PCD-ascii": (".pcd", [written(".pcd", c, ascii=True) for c in clouds]),
        "PCD-binary": (".pcd", [written(".pcd", c) for c in clouds]),
        "PCD-binary_compressed": (".pcd", [_pcd_compressed(c.fields) for c in clouds]),
        "XYZ": (".xyz", [written(".xyz", c) for c in clouds]),
        "TXT": (".txt", [b"1 2 3\n4 5 6\n7 8 9.5\n", written(".txt", clouds[1])]),
        "CSV": (".csv", [written(".csv", c) for c in clouds]),
        "PTS": (".pts", [b"3\n1 2 3 10 255 0 0\n4 5 6 20 0 255 0\n7 8 9 30 0 0 255\n", b"2\n1 2 3 4\n5 6 7 8\n"]),
        "LAS": (".las", [written(".las", c) for c in clouds]),
        "LAZ": (".laz", [written(".laz", c) for c in clouds]),
        "OBJ": (".obj", [meshes[".obj"], b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"]),
        "STL": (".stl", [meshes[".stl"], sphere.export(file_type="stl_ascii").encode()]),
        "OFF": (".off", [meshes[".off"]]),
        "GLB": (".glb", [meshes[".glb"]]),
        "model": (".pt", _model_seeds(folder)),
    }
    if tuple(seeds) != FORMATS:
        raise RuntimeError(f"FORMATS {FORMATS} does not list the seeds {tuple(seeds)}")
    return seeds


def _model_seeds(folder: Path) -> list[bytes]:
    from pcflow import LLFlow, OneFlow

    rng = np.random.default_rng(0)
    seeds = []
    for cls, dim in ((OneFlow, 3), (LLFlow, 2)):
        model = cls(flow="general" if dim == 3 else "nice", n_couplings=2, hidden_features=4, epochs=2,
                    normalize="isotropic", random_state=0).fit(rng.normal(size=(60, dim)))
        path = folder / f"model{dim}.pt"
        path.unlink(missing_ok=True)
        model.save(path)
        seeds.append(path.read_bytes())
    return seeds


# ------------------------------------------------------------------------------------------------------------------
# mutations

def _header_end(data: bytes) -> int:
    for marker in (b"end_header\n", b"\nDATA ", b"\n\n"):
        at = data.find(marker)
        if at >= 0:
            return min(at + len(marker) + 40, len(data))
    return min(len(data), 512)


def _text_number(data: bytes, rng) -> bytes:
    """A number in the header (or the first 512 bytes) replaced by an edge or huge value."""
    import re

    numbers = list(re.finditer(rb"-?\d+(\.\d+)?", data[:_header_end(data)]))
    if not numbers:
        return _binary_number(data, rng)
    match = numbers[rng.integers(len(numbers))]
    value = TEXT_NUMBERS[rng.integers(len(TEXT_NUMBERS))].encode()
    return data[:match.start()] + value + data[match.end():]


def _binary_number(data: bytes, rng) -> bytes:
    """A 1, 2, 4 or 8 byte integer in the first 400 bytes overwritten (either byte order) by an edge value."""
    size = (1, 2, 4, 8)[rng.integers(4)]
    at = int(rng.integers(0, max(1, min(len(data), 400) - size + 1)))
    value = NUMBERS[rng.integers(len(NUMBERS))] % (1 << (8 * size))
    word = value.to_bytes(size, "little" if rng.random() < 0.5 else "big")
    return data[:at] + word + data[at + size:]


def _word(data: bytes, rng) -> bytes:
    """A header word (a type or keyword) swapped for another of the formats' vocabulary."""
    words = [b"float", b"double", b"uchar", b"int", b"list", b"char", b"uint64", b"vertex", b"face", b"ascii",
             b"binary", b"binary_big_endian", b"binary_compressed", b"F", b"U", b"I", b"property", b"element",
             b"end_header", b"DATA", b"POINTS", b"COUNT", b"solid", b"facet", b"OFF", b"v", b"f", b"glTF", b"x"]
    import re

    tokens = list(re.finditer(rb"[A-Za-z_]+", data[:_header_end(data)]))
    if not tokens:
        return _flip(data, rng)
    match = tokens[rng.integers(len(tokens))]
    return data[:match.start()] + words[rng.integers(len(words))] + data[match.end():]


def _flip(data: bytes, rng) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        at = int(rng.integers(len(out)))
        out[at] ^= 1 << int(rng.integers(8)) if rng.random() < 0.7 else int(rng.integers(1, 256))
    return bytes(out)


def _truncate(data: bytes, rng) -> bytes:
    return data[:int(rng.integers(1, len(data)))]


def _cut(data: bytes, rng) -> bytes:
    start = int(rng.integers(len(data)))
    stop = start + int(rng.integers(1, max(2, len(data) // 3)))
    return data[:start] + data[stop:]


def _duplicate(data: bytes, rng) -> bytes:
    start = int(rng.integers(len(data)))
    piece = data[start:start + int(rng.integers(1, 200))]
    at = int(rng.integers(len(data)))
    return data[:at] + piece + data[at:]


def _garbage(data: bytes, rng) -> bytes:
    at = int(rng.integers(len(data)))
    return data[:at] + rng.bytes(int(rng.integers(1, 64))) + data[at:]


def _random(data: bytes, rng) -> bytes:
    return rng.bytes(int(rng.integers(1, 2 * len(data))))


def _header_only(data: bytes, rng) -> bytes:
    return data[:_header_end(data)]


MUTATIONS = {"flip": _flip, "text number": _text_number, "binary number": _binary_number, "header word": _word,
             "truncate": _truncate, "cut section": _cut, "duplicate section": _duplicate, "garbage": _garbage,
             "header only": _header_only, "random": _random}


def mutate(data: bytes, rng) -> tuple[str, bytes]:
    """(kind, mutated bytes): one of `MUTATIONS`, or "empty" now and then."""
    if rng.random() < 0.01:
        return "empty", b""
    names = list(MUTATIONS)
    kind = names[rng.integers(len(names))]
    return kind, MUTATIONS[kind](data, rng)


def model_state_mutation(data: bytes, rng) -> tuple[str, bytes]:
    """A model file re-saved with one entry changed: a version, a count, a setting, a tensor's shape, a key gone."""
    import torch

    state = torch.load(io.BytesIO(data), weights_only=True)
    key = list(state)[rng.integers(len(state))]
    choice = rng.integers(8)
    if choice == 0:
        del state[key]
    elif choice == 1 and key != "params":
        state[key] = [0, -1, 10 ** 12, 2 ** 63 - 1, 1.5, "x", None, [], {}][rng.integers(9)]
    elif choice == 2:
        name = list(state["params"])[rng.integers(len(state["params"]))]
        state["params"][name] = [0, -1, 10 ** 12, 1.5, "x", None][rng.integers(6)]
    elif choice == 3:
        name = list(state["flow_state"])[rng.integers(len(state["flow_state"]))]
        state["flow_state"][name] = torch.zeros(int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    elif choice == 4:
        state["n_features_in"] = [0, 1, 2, 3, 4, 10 ** 12, -3][rng.integers(7)]
    elif choice == 5:
        state["format_version"] = [0, 1, 2, 3, 10 ** 12, -1, "2", None][rng.integers(8)]
    elif choice == 6:
        state["params"]["unknown\nsetting" * int(rng.integers(1, 50))] = 1
    else:
        state["model"] = ["Evil\nClass", "", "OneFlow", "LLFlow", "SurfaceFlow", 7][rng.integers(6)]
    out = io.BytesIO()
    torch.save(state, out)
    return "model entry", out.getvalue()


# ------------------------------------------------------------------------------------------------------------------
# one case

def _on_alarm(signum, frame):
    raise CaseTimeout(f"ran past {TIME_LIMIT} s")


def _read_cloud(path: Path):
    from pcflow.io import PointCloud, read_cloud

    cloud = read_cloud(path)
    n = len(cloud.points)
    well_formed = (isinstance(cloud, PointCloud) and cloud.points.ndim == 2 and cloud.points.shape[1] in (2, 3)
                   and n >= 1 and np.isfinite(cloud.points).all() and (cloud.fields is None or len(cloud.fields) == n)
                   and (cloud.points.shape[1] == 3 or path.suffix in (".xyz", ".txt", ".csv", ".pts")))
    return well_formed, f"{n} points"


def _read_model(path: Path):
    from pcflow.models import FlowDetector, load

    model = load(path)
    dim = model.n_features_in_
    scores = model.score_samples(np.random.default_rng(0).normal(size=(5, dim)))
    return isinstance(model, FlowDetector) and dim >= 2 and np.shape(scores) == (5,), f"{type(model).__name__} {dim}-D"


def run_case(path: Path, reader=None) -> tuple[str, str]:
    """('read' | 'error' | 'other', detail) of reading `path` once, within the time and memory bounds.

    `reader(path) -> (well formed, detail)`; by default pcflow's model loader for .pt files, else `read_cloud`.
    """
    from pcflow.errors import PcflowError

    reader = reader or (_read_model if path.suffix == ".pt" else _read_cloud)
    size = path.stat().st_size
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # the native libraries' memory, once touched
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
    tracemalloc.start()
    try:
        well_formed, detail = reader(path)
        outcome = "read" if well_formed else "other"
        detail = detail if well_formed else f"malformed read: {detail}"
    except PcflowError as error:
        message = str(error)
        outcome, detail = ("error", message) if "\n" not in message and "weights_only" not in message else (
            "other", f"bad message: {message!r}")
    except CaseTimeout as error:
        outcome, detail = "other", f"hang: {error}"
    except Exception as error:  # the point of fuzzing: anything else is a finding
        outcome, detail = "other", f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    bound = MEMORY_BASE + MEMORY_PER_BYTE * size
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - max_rss) * 1024  # KiB on Linux
    if peak > bound:
        outcome, detail = "other", f"peak memory {peak} bytes > {bound} for {size} bytes ({detail})"
    elif grown > MEMORY_BASE + bound:
        outcome, detail = "other", f"peak resident memory grew by {grown} bytes for {size} bytes ({detail})"
    return outcome, detail


def fuzz_format(name: str, suffix: str, files: list[bytes], cases: int, seed: int, folder: Path) -> dict:
    """Reads `cases` mutations of `files` (valid files of format `name`, checked first) once each.

    Returns:
        dict: `format`, `cases`, `read`, `error`, `other` (counts), `kinds` (the counts per mutation kind),
        `findings` (a line per other outcome; the file is kept in `folder`) and `seconds`.
    """
    import logging
    import warnings

    logging.getLogger("trimesh").setLevel(logging.CRITICAL)  # its loaders log the tracebacks of what they retry
    rng = np.random.default_rng([seed, sum(name.encode())])
    reader = _read_model if suffix == ".pt" else _read_cloud
    for k, data in enumerate(files):
        path = folder / f"valid{k}{suffix}"
        path.write_bytes(data)
        reader(path)  # once untraced: imports and caches are not the cases' memory
        outcome, detail = run_case(path)
        if outcome != "read":
            raise RuntimeError(f"the valid {name} file {k} does not read: {detail}")
    row = {"format": name, "cases": 0, "read": 0, "error": 0, "other": 0, "findings": [], "kinds": {}}
    start = time.perf_counter()
    for case in range(cases):
        data = files[case % len(files)]
        if suffix == ".pt" and rng.random() < 0.3:
            kind, data = model_state_mutation(data, rng)
        else:
            kind, data = mutate(data, rng)
        path = folder / f"case{suffix}"
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome, detail = run_case(path)
        row["cases"] += 1
        row[outcome] += 1
        counts = row["kinds"].setdefault(kind, {"read": 0, "error": 0, "other": 0})
        counts[outcome] += 1
        if outcome == "other":
            keep = folder / f"finding{len(row['findings'])}_{name}{suffix}"
            keep.write_bytes(data)
            row["findings"].append(f"case {case} ({kind}, kept as {keep.name}): {detail}")
    row["seconds"] = time.perf_counter() - start
    return row


def fuzz(formats=None, cases: int = 200, seed: int = 0, folder: Path | None = None) -> list[dict]:
    """`fuzz_format` of every format (or those named in `formats`); files of other outcomes are kept in `folder`."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(folder or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        seeds = make_seeds(folder / "seeds")
        unknown = set(formats or ()) - set(seeds)
        if unknown:
            raise SystemExit(f"unknown formats {sorted(unknown)}; known: {', '.join(seeds)}")
        return [fuzz_format(name, suffix, files, cases, seed, folder) for name, (suffix, files) in seeds.items()
                if not formats or name in formats]


def table(rows: list[dict]) -> str:
    """The markdown table of the rows: format, cases, correct reads, one-line errors, other outcomes."""
    lines = ["| format | cases | correct reads | one-line errors | other outcomes | seconds |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['format']} | {row['cases']} | {row['read']} | {row['error']} | {row['other']} | "
                     f"{row['seconds']:.1f} |")
    total = {key: sum(row[key] for row in rows) for key in ("cases", "read", "error", "other", "seconds")}
    lines.append(f"| all | {total['cases']} | {total['read']} | {total['error']} | {total['other']} | "
                 f"{total['seconds']:.1f} |")
    return "\n".join(lines)


def kinds_table(rows: list[dict]) -> str:
    """Per mutation kind over every format: cases, correct reads, errors, others."""
    merged: dict[str, dict] = {}
    for row in rows:
        for kind, counts in row["kinds"].items():
            total = merged.setdefault(kind, {"read": 0, "error": 0, "other": 0})
            for key, value in counts.items():
                total[key] += value
    lines = ["| mutation | cases | correct reads | one-line errors | other outcomes |", "|---|---|---|---|---|"]
    for kind, counts in sorted(merged.items()):
        lines.append(f"| {kind} | {sum(counts.values())} | {counts['read']} | {counts['error']} | {counts['other']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000, help="mutated files per format (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--formats", nargs="*", default=None, help="only these formats (the table's names)")
    parser.add_argument("--keep", default=None, help="folder to keep the files of other outcomes in")
    args = parser.parse_args(argv)
    rows = fuzz(args.formats, args.cases, args.seed, Path(args.keep) if args.keep else None)
    print(table(rows))
    print()
    print(kinds_table(rows))
    for row in rows:
        for finding in row["findings"][:20]:
            print(f"{row['format']}: {finding}")
    return 1 if any(row["other"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
