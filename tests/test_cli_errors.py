"""How the command line reports failures of the system rather than of the input: one line, a non-zero exit."""

import errno
import os
import subprocess
import sys

import pytest

from pcflow.cli import info, main


@pytest.mark.parametrize("error, line", [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), f"pcflow: error: {os.strerror(errno.ENOSPC)}"),
    (OSError(errno.EACCES, os.strerror(errno.EACCES), "out/mesh.ply"),
     f"pcflow: error: out/mesh.ply: {os.strerror(errno.EACCES)}"),
])
def test_an_os_error_is_one_line_naming_the_file_where_there_is_one(monkeypatch, capsys, tmp_path, error, line):
    def fail(args):
        raise error

    monkeypatch.setattr(info, "cmd_info", fail)
    assert main(["info", str(tmp_path / "any.ply")]) == 1
    assert capsys.readouterr().err.splitlines() == [line]


def test_a_closed_pipe_ends_the_command_without_a_message(tmp_path):
    source = tmp_path / "cloud.xyz"
    source.write_text("\n".join(f"{i} {i % 7} {i % 5}" for i in range(2000)))
    command = [sys.executable, "-c", "import sys; from pcflow.cli import run; sys.exit(run())", "info", str(source)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        process.stdout.close()  # the reader goes away before the command writes
        stderr = process.stderr.read().decode()
        code = process.wait()
    assert code == 1 and stderr == "", stderr
