"""Fuzzing of every reader (scripts/fuzz_readers.py): mutated files read correctly or raise one-line PcflowErrors."""

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pcflow.errors import PcflowError

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fuzz_readers.py"
#: Mutated files per format in the suite; the script runs more (docs/benchmarks/fuzz.md).
CASES = 200


def _load_script():
    spec = importlib.util.spec_from_file_location("fuzz_readers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fuzz_readers = _load_script()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return fuzz_readers.make_seeds(tmp_path_factory.mktemp("seeds"))


@pytest.mark.parametrize("name", fuzz_readers.FORMATS)
def test_mutated_files_read_correctly_or_raise_one_line_errors(seeds, name, tmp_path):
    suffix, files = seeds[name]
    row = fuzz_readers.fuzz_format(name, suffix, files, CASES, 0, tmp_path)  # checks that the valid files read
    assert row["other"] == 0, "\n".join(row["findings"])
    assert row["cases"] == row["read"] + row["error"] == CASES
    assert row["error"] > 0 and set(row["kinds"]) >= set(fuzz_readers.MUTATIONS) - {"empty"}


def _raising(error):
    def reader(path):
        raise error

    return reader


def test_the_harness_counts_every_other_outcome(tmp_path, monkeypatch):
    path = tmp_path / "x.ply"
    path.write_bytes(b"ply\n")
    assert fuzz_readers.run_case(path, lambda p: (True, "fine")) == ("read", "fine")
    assert fuzz_readers.run_case(path, _raising(PcflowError("x.ply: bad"))) == ("error", "x.ply: bad")
    for error in (KeyError("k"), MemoryError(), PcflowError("two\nlines"), PcflowError("set weights_only=False")):
        assert fuzz_readers.run_case(path, _raising(error))[0] == "other", error
    assert fuzz_readers.run_case(path, lambda p: (False, "3 points"))[0] == "other"
    outcome, detail = fuzz_readers.run_case(path, lambda p: (np.ones(4 << 20).sum() > 0, "32 MiB for 4 bytes"))
    assert outcome == "other" and "memory" in detail
    monkeypatch.setattr(fuzz_readers, "TIME_LIMIT", 0.2)

    def spin(p):
        start = time.perf_counter()
        while time.perf_counter() - start < 5:
            pass

    start = time.perf_counter()
    outcome, detail = fuzz_readers.run_case(path, spin)
    assert outcome == "other" and detail.startswith("hang") and time.perf_counter() - start < 2


def test_the_script_prints_a_row_per_format_and_exits_0(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SCRIPT.parents[1]), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(SCRIPT), "--cases", "6", "--seed", "1"], capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {match[0]: [int(v) for v in match[1:]] for match in
            re.findall(r"^\| (\S+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|", result.stdout, flags=re.M)}
    for name in fuzz_readers.FORMATS:
        cases, read, error, other = rows[name]
        assert cases == 6 == read + error and other == 0
    assert rows["all"][0] == 6 * len(fuzz_readers.FORMATS)
