"""The subcommands other packages add to ``rnnlab`` (cli.EXTENSIONS), run through the real entry point."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rnnlab.cli import EXTENSIONS, main


def test_every_extension_is_registered_once():
    assert len(set(EXTENSIONS)) == len(EXTENSIONS)
    assert {"rnnlab.explain", "rnnlab.export"} <= set(EXTENSIONS)


def test_shapes_takes_key_value_pairs_after_an_option(capsys):
    assert main(["shapes", "GRU", "input_size=5", "--input", "4,2,5", "hidden_size=6"]) == 0
    out = capsys.readouterr().out
    assert "output          (T=4, B=2, D*H=6)" in out
    assert "h_n             (D*L=1, B=2, H=6)" in out


def test_shapes_wrong_h0_is_one_line_and_exit_2(capsys):
    code = main(["shapes", "LSTM", "input_size=5", "hidden_size=6", "num_layers=2", "--input", "3,1,5",
                 "--h0", "1,1,6"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("rnnlab: error: h0 has 1 in dimension 0") and err.count("\n") == 1


def test_export_is_a_subcommand_and_refuses_a_missing_run(tmp_path, capsys):
    code = main(["export", str(tmp_path / "nope"), "-o", str(tmp_path / "m.onnx")])
    assert code == 2
    assert "rnnlab: error:" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly():
    """``rnnlab ... | head -1``: no BrokenPipeError traceback when the reader leaves early."""
    # A command that writes far more than a pipe's buffer, so the write after the reader left must fail.
    script = (
        "import sys, rnnlab.cli as cli, rnnlab.cli.commands as commands\n"
        "def flood(args):\n"
        "    for i in range(200000):\n"
        "        print('line', i)\n"
        "    return 0\n"
        "commands.run_tasks = flood\n"
        "sys.exit(cli.main(['tasks']))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"line 0\n"
    proc.stdout.close()  # the reader leaves after one line
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err


@pytest.mark.parametrize("command", ["shapes", "explain", "export"])
def test_each_extension_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert command in capsys.readouterr().out
