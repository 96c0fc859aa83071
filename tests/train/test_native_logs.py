"""Native log filtering: TensorFlow's C++ lines are dropped from fd 2, everything else reaches the real stderr."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from seg.train import native_logs
from seg.train.native_logs import LineFilter, dropped_severities, filter_native_logs, line_severity

NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
INFO = b"I0000 00:00:1795334679.315429    4325 port.cc:153] oneDNN custom operations are on. You may see ...\n"
CPU_GUARD = (
    b"I0000 00:00:1795334925.288703    6683 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    b"available CPU instructions in performance-critical operations.\n"
    b"To enable the following instructions: AVX2 AVX512F AVX512_VNNI FMA, in other operations, rebuild TensorFlow "
    b"with the appropriate compiler flags.\n"
)
WARNING = b"W0102 03:04:05.678901   12 some_file.cc:7] a native warning\n"
ERROR = b"E0000 00:00:1795334688.733627    4325 node_def_util.cc:682] NodeDef mentions attribute use_unbounded_...\n"
FATAL = b"F0000 00:00:1795334688.902211    4325 util.cc:131] Check failed: boom\n"
NOISE = NOTICE + INFO + CPU_GUARD + WARNING + ERROR

PRELUDE = "import os, sys, time\nfrom seg.train.native_logs import filter_native_logs\nfilter_native_logs()\n"


def run_child(code: str, *, level: str | None = None, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """Run PRELUDE + code in a fresh interpreter whose stderr is a pipe (its fd 2, so the filter is installed)."""
    environ = {key: value for key, value in os.environ.items() if key != native_logs.ENV_VAR} | env
    if level is not None:
        environ[native_logs.ENV_VAR] = level
    script = PRELUDE + code
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, env=environ, timeout=timeout, check=False
    )


def write_lines(*lines: bytes) -> str:
    return "".join(f"os.write(2, {line!r})\n" for line in lines)


# --- the line classification and splitting, in process --------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "severity"),
    [
        (NOTICE, "I"),
        (INFO, "I"),
        (CPU_GUARD.split(b"\n")[1], "I"),
        (WARNING, "W"),
        (ERROR, "E"),
        (FATAL, "F"),
        (b"plain\n", None),
        (b"Epoch 1/2\n", None),
        (b"I said something at 00:00:01.5\n", None),
        (b"WARNING: something else\n", None),
        (b"  I0000 00:00:1.5 1 a.cc:1] indented, so not a log line\n", None),
    ],
)
def test_line_severity(line, severity):
    assert line_severity(line) == severity


@pytest.mark.parametrize(
    ("value", "dropped"),
    [(None, "IWE"), ("", "IWE"), ("fatal", "IWE"), ("ERROR", "IW"), ("warning", "I"), (" all ", ""), ("nope", "IWE")],
)
def test_dropped_severities(value, dropped):
    assert dropped_severities(value) == frozenset(dropped)


def test_line_filter_keeps_the_lines_that_are_not_dropped_native_logs():
    lines = LineFilter(frozenset("IWE"))
    assert lines.feed(NOTICE + b"plain\n" + INFO[:20]) == b"plain\n"
    assert lines.feed(INFO[20:] + ERROR + FATAL + b"tail") == FATAL
    assert lines.pending == b"tail"
    assert lines.flush() == b"tail"


def test_line_filter_gives_the_end_of_a_flushed_line_the_verdict_of_its_start():
    lines = LineFilter(frozenset("IWE"))
    assert lines.feed(INFO[:60]) == b""
    assert lines.flush() == b""  # dropped: a native info line
    assert lines.feed(INFO[60:] + b"next\n") == b"next\n"  # its end dropped too, the next line not
    assert lines.feed(b"progress 1") == b""
    assert lines.flush() == b"progress 1"
    assert lines.feed(b"0% done\n" + INFO) == b"0% done\n"


# --- the filter in a child process ----------------------------------------------------------------------------------


def test_native_log_lines_are_dropped_and_everything_else_kept():
    done = run_child(
        write_lines(NOISE[:100], NOISE[100:], b"plain\n")
        + "print('from python', file=sys.stderr)\n"
        + "print('to stdout')\n"
        + "sys.stderr.write('python again\\n')\n"
    )
    assert done.returncode == 0, done.stderr
    # Python's writes go straight to stderr, native ones through the forwarder: their order may differ
    assert sorted(done.stderr.splitlines()) == [b"from python", b"plain", b"python again"]
    assert done.stdout == b"to stdout\n"


def test_python_keeps_a_stderr_on_the_real_one():
    done = run_child(
        "print(sys.stderr.fileno() != 2, sys.stderr.encoding, sys.stderr.errors, os.isatty(2) is False)\n"
        "raise SystemExit('bye')\n"
    )
    assert done.returncode == 1
    assert done.stdout.decode().split() == ["True", "utf-8", "backslashreplace", "True"]
    assert done.stderr == b"bye\n"


def test_a_traceback_still_reaches_stderr():
    done = run_child(write_lines(ERROR) + "1 / 0\n")
    assert done.returncode == 1
    assert b"ZeroDivisionError" in done.stderr
    assert b"node_def_util" not in done.stderr


def test_a_fatal_line_is_kept_even_when_the_process_aborts_right_after():
    done = run_child(write_lines(INFO, FATAL) + "os.abort()\n")
    assert done.returncode != 0
    assert done.stderr == FATAL


@pytest.mark.parametrize(
    ("level", "kept"), [("all", NOISE + FATAL), ("warning", WARNING + ERROR + FATAL), ("error", ERROR + FATAL)]
)
def test_seg_native_logs_chooses_what_is_kept(level, kept):
    done = run_child(write_lines(NOISE, FATAL), level=level)
    assert done.stderr == kept


def test_an_incomplete_line_is_written_after_a_short_wait():
    # The line without its newline reaches stderr before Python's own write, which goes there directly.
    done = run_child(write_lines(b"50% ") + "time.sleep(1)\nprint('python', file=sys.stderr)\n")
    assert done.stderr == b"50% python\n"


@pytest.mark.parametrize(("last", "kept"), [(b"last words", b"last words"), (INFO[:60], b"")])
def test_an_incomplete_line_is_judged_at_exit(last, kept):
    done = run_child(write_lines(b"kept\n", last))
    assert done.stderr == b"kept\n" + kept


def test_an_incomplete_native_line_is_dropped_with_its_end():
    done = run_child(write_lines(INFO[:60]) + "time.sleep(1)\n" + write_lines(INFO[60:], b"after\n"))
    assert done.stderr == b"after\n"


def test_child_processes_stderr_is_filtered_too():
    child_input = INFO + b"child\n"
    done = run_child(f"import subprocess\nsubprocess.run(['sh', '-c', 'cat >&2'], input={child_input!r}, check=True)\n")
    assert done.stderr == b"child\n"


def test_a_megabyte_burst_gets_through():
    # 1.2 MB written faster than it is forwarded: the writer must never block for good (a full pipe), nothing is lost.
    code = (
        "line = b'x' * 1000 + b'\\n'\n"
        "os.write(2, (line + " + repr(INFO) + ") * 1024)\n"
        "os.write(2, b'y' * 100_000)\n"
        "print('end', file=sys.stderr)\n"
    )
    done = run_child(code, timeout=60)
    assert done.returncode == 0
    lines = done.stderr.split(b"\n")
    assert lines.count(b"x" * 1000) == 1024
    assert b"end" in lines
    assert b"port.cc" not in done.stderr
    assert done.stderr.count(b"y") == 100_000


def test_calling_it_twice_installs_it_once():
    done = run_child(
        "from seg.train import native_logs\n"
        "first = (sys.stderr, native_logs._forwarder, os.fstat(2).st_ino)\n"
        "filter_native_logs()\n"
        "print(first == (sys.stderr, native_logs._forwarder, os.fstat(2).st_ino))\n" + write_lines(INFO, b"once\n")
    )
    assert done.stdout == b"True\n"
    assert done.stderr == b"once\n"


def test_sys_stderr_stays_a_terminal_on_a_terminal():
    # progress bars ask sys.stderr.isatty(); native lines written to the terminal's fd 2 are still filtered
    script = PRELUDE + "print('isatty', sys.stderr.isatty(), file=sys.stderr)\n" + write_lines(INFO, b"kept\n")
    parent, child = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-c", script], stderr=child, stdout=subprocess.DEVNULL)
    finally:
        os.close(child)
    output = b""
    try:
        while data := os.read(parent, 4096):
            output += data
    except OSError:  # EIO: every writer of the terminal is gone
        pass
    finally:
        os.close(parent)
    assert proc.wait(timeout=60) == 0
    assert output.replace(b"\r\n", b"\n") == b"isatty True\nkept\n"


def test_import_tensorflow_leaves_stderr_empty():
    pytest.importorskip("tensorflow")
    code = "import tensorflow\nprint('imported', file=sys.stderr)\n"
    env = {"TF_CPP_MIN_LOG_LEVEL": "2"}  # what seg.train.keras_env sets
    unfiltered = run_child(code, level="all", timeout=300, **env)
    assert unfiltered.returncode == 0, unfiltered.stderr
    # the control: TensorFlow does write native lines here, so the filtered run below can fail
    assert any(line_severity(line) for line in unfiltered.stderr.split(b"\n")), unfiltered.stderr
    filtered = run_child(code, timeout=300, **env)
    assert filtered.returncode == 0
    assert filtered.stderr == b"imported\n"


# --- in process ----------------------------------------------------------------------------------------------------


def test_it_does_nothing_under_click_s_cli_runner():
    @click.command()
    def command():
        filter_native_logs()
        click.echo(f"fd2 {os.fstat(2).st_ino}", err=True)

    before = (sys.stderr, os.fstat(2).st_ino, native_logs._forwarder)
    result = CliRunner().invoke(command)
    assert result.exit_code == 0, result.output
    assert f"fd2 {before[1]}" in result.output
    assert (sys.stderr, os.fstat(2).st_ino, native_logs._forwarder) == before
    assert native_logs._forwarder is None
