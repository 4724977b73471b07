"""Progress on a terminal, nothing when piped or quiet, and `--verbose` stage logs with their times."""

import json
import logging
import re
import sys

import numpy as np
import pytest

from pcflow.cli import main
from pcflow.io import PointCloud, write_cloud
from pcflow.pipeline import RECONSTRUCT_STAGES

TINY = ["--epochs", "2", "--surface-steps", "10", "--couplings", "2", "--hidden", "8", "--mode", "surface"]
#: a `--verbose` line: `pcflow: <stage>: <seconds> s`, or `pcflow: <fit stage>: <count> <unit>, <seconds> s`
LOG_LINE = re.compile(r"^pcflow: (?P<stage>[a-z_ ]+): (?:(?P<count>\d+) (?:epochs|steps), )?(?P<seconds>\d+\.\d\d) s$")


@pytest.fixture(scope="module")
def cloud_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    direction = rng.normal(size=(1000, 3))
    surface = direction / np.linalg.norm(direction, axis=1, keepdims=True) * [1.0, 0.6, 0.4]
    points = np.vstack([surface + rng.normal(scale=0.01, size=surface.shape), rng.uniform(-2, 2, size=(40, 3))])
    path = tmp_path_factory.mktemp("in") / "cloud.ply"
    write_cloud(path, PointCloud(points))
    return path


def stage_lines(stderr: str) -> list[tuple[str, int | None, float]]:
    """(stage, count or None, seconds) of each `--verbose` stage line, in order; fails on any other line."""
    found = []
    for line in stderr.splitlines():
        match = LOG_LINE.match(line)
        assert match, f"not a stage log line: {line!r}"
        count = match["count"]
        found.append((match["stage"], None if count is None else int(count), float(match["seconds"])))
    return found


def as_terminal(monkeypatch) -> None:
    """Makes the captured stderr pass for a terminal (call it in the test: capsys swaps stderr in after set-up)."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)


def test_verbose_reconstruct_logs_each_stage_with_its_report_time(cloud_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reconstruct", str(cloud_file), "-o", str(out), *TINY, "--no-preview", "-v"]) == 0
    lines = stage_lines(capsys.readouterr().err)
    stages = [stage for stage, count, _ in lines if count is None]
    # --mode surface: one object, so no search for a scene's planes and objects
    assert stages == [stage for stage in RECONSTRUCT_STAGES if stage not in ("preview", "segment")]
    fits = {stage: (count, seconds) for stage, count, seconds in lines if count is not None}
    assert fits["envelope fit"][0] == 2 and fits["surface fit"][0] == 10
    timings = json.loads((out / "report.json").read_text())["timings"]
    logged = {stage: seconds for stage, count, seconds in lines if count is None}
    for stage, seconds in logged.items():
        assert seconds == pytest.approx(timings[stage], abs=0.006), stage  # logged to 0.01 s, reported to 1e-4 s
    assert fits["envelope fit"][1] + fits["surface fit"][1] <= logged["fit"] + 0.01  # both run inside the fit stage


def test_verbose_fit_and_denoise(cloud_file, tmp_path, capsys):
    assert main(["fit", str(cloud_file), "-o", str(tmp_path / "model.pt"), *TINY, "--verbose"]) == 0
    captured = capsys.readouterr()
    assert [stage for stage, _, _ in stage_lines(captured.err)] == ["read", "envelope fit", "surface fit", "fit"]
    assert captured.out.startswith("fitted ")
    assert main(["denoise", str(cloud_file), "-o", str(tmp_path / "clean.ply"), "--model", str(tmp_path / "model.pt"),
                 "-v"]) == 0
    assert {stage for stage, _, _ in stage_lines(capsys.readouterr().err)} == {"read", "score", "write_clouds"}


def test_verbose_leaves_no_handler_behind(cloud_file, tmp_path, capsys):
    logger = logging.getLogger("pcflow")
    handlers, level = list(logger.handlers), logger.level
    assert main(["fit", str(cloud_file), "-o", str(tmp_path / "model.pt"), *TINY, "-v"]) == 0
    assert logger.handlers == handlers and logger.level == level
    capsys.readouterr()
    assert main(["fit", str(cloud_file), "-o", str(tmp_path / "again.pt"), *TINY]) == 0
    assert capsys.readouterr().err == ""  # not verbose: no stage lines from the earlier run's set-up


def test_quiet_and_verbose_exclude_each_other(cloud_file, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["fit", str(cloud_file), "-o", str(tmp_path / "model.pt"), "-q", "-v"])
    assert done.value.code == 2
    assert "--quiet and --verbose exclude each other" in capsys.readouterr().err


def test_piped_output_has_no_progress(cloud_file, tmp_path, capsys):
    assert not sys.stderr.isatty()
    assert main(["reconstruct", str(cloud_file), "-o", str(tmp_path / "out"), *TINY, "--no-preview"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "\r" not in captured.out and "time:" in captured.out


def test_terminal_shows_the_stages_and_the_fit(cloud_file, tmp_path, monkeypatch, capsys):
    as_terminal(monkeypatch)
    assert main(["reconstruct", str(cloud_file), "-o", str(tmp_path / "out"), *TINY, "--no-preview"]) == 0
    captured = capsys.readouterr()
    frames = captured.err.split("\r")
    shown = {re.match(r"pcflow: stage (\d)/8: (.+?) \[", frame).groups()
             for frame in frames if frame.startswith("pcflow: stage")}
    assert shown == {("1", "reading"), ("2", "fitting"), ("3", "scoring"), ("4", "writing the clouds"),
                     ("5", "meshing"), ("6", "checking the mesh"), ("7", "estimating the genus"),
                     ("8", "writing the meshes and model")}
    assert any(frame.startswith("envelope fit:") for frame in frames)
    assert any(frame.startswith("surface fit:") for frame in frames)
    assert "\r" not in captured.out  # the summary on stdout stays clean


def test_quiet_terminal_shows_nothing(cloud_file, tmp_path, monkeypatch, capsys):
    as_terminal(monkeypatch)
    assert main(["reconstruct", str(cloud_file), "-o", str(tmp_path / "out"), *TINY, "--no-preview", "-q"]) == 0
    assert capsys.readouterr() == ("", "")
