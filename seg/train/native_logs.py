"""Keeping TensorFlow's C++ log lines off the terminal.

TensorFlow's C++ side logs through absl before absl logging is initialised, straight to file descriptor 2, so
``TF_CPP_MIN_LOG_LEVEL`` does not silence lines such as::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1795334679.315429    4325 port.cc:153] oneDNN custom operations are on. ...
    E0000 00:00:1795334688.733627    4325 node_def_util.cc:682] NodeDef mentions attribute use_unbounded_threadpool ...

:func:`filter_native_logs` points fd 2 at a pipe and gives Python a ``sys.stderr`` of its own on a duplicate of the
real stderr, so that Python's writes (messages, tracebacks, progress bars) reach the terminal directly and
``sys.stderr.isatty()`` still tells the truth. What native code (and child processes) write to fd 2 goes through the
pipe to a small forwarding process (this file run as a script, standard library only) that writes every line to the
real stderr except native log lines below the threshold. A process rather than a thread, because native code logs a
fatal ``F`` line and then aborts: a thread would die with the process before forwarding the one line that explains
the crash, while the forwarder reads it, then end-of-file, and exits. As Python's writes do not go through the
forwarder, a Python line may come out before a native line written a moment earlier.

``SEG_NATIVE_LOGS`` chooses the lowest severity shown: ``fatal`` (the default), ``error``, ``warning``, or ``all``
(filters nothing: fd 2 is left alone, for debugging). Fatal lines are always shown.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import re
import select
import subprocess
import sys
import threading
import time

ENV_VAR = "SEG_NATIVE_LOGS"

#: ``SEG_NATIVE_LOGS`` value -> the severities of native log lines that are dropped.
LEVELS: dict[str, frozenset[str]] = {
    "all": frozenset(),
    "warning": frozenset("I"),
    "error": frozenset("IW"),
    "fatal": frozenset("IWE"),
}
DEFAULT_LEVEL = "fatal"

#: A glog/absl log line: severity, MMDD, time (before absl is initialised the seconds are the whole Unix time), thread
#: id, file:line].
_HEADER = re.compile(rb"([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\]")
#: absl's one-line notice that precedes the first native log line (counted as an info line).
_ABSL_NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
#: The second line of cpu_feature_guard.cc's two-line info message (``This TensorFlow binary is optimized ...``).
_CPU_GUARD_TAIL = re.compile(
    rb"To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler"
)

PARTIAL_LINE_SECONDS = 0.2  # a line whose newline has not come is forwarded (or dropped) after this long
_EXIT_WAIT_SECONDS = 2.0  # at exit, how long to wait for the forwarder to write what is left
_READ_SIZE = 65536

_forwarder: subprocess.Popen | None = None
_install_lock = threading.Lock()


def dropped_severities(value: str | None) -> frozenset[str]:
    """The native log severities dropped for a ``SEG_NATIVE_LOGS`` value (unset or unknown: the default, ``fatal``)."""
    return LEVELS.get((value or DEFAULT_LEVEL).strip().lower(), LEVELS[DEFAULT_LEVEL])


def line_severity(line: bytes) -> str | None:
    """The severity (``I``, ``W``, ``E``, ``F``) of a native log line, ``None`` for any other line.

    absl's "All log messages before absl::InitializeLog()" notice and the second line of TensorFlow's CPU-feature
    message count as ``I``.
    """
    match = _HEADER.match(line)
    if match:
        return match.group(1).decode()
    if line.startswith(_ABSL_NOTICE) or _CPU_GUARD_TAIL.match(line):
        return "I"
    return None


def filter_native_logs() -> None:
    """Drop TensorFlow's native log lines from fd 2 for the rest of the process; call before importing Keras.

    Does nothing when ``sys.stderr`` is not the process's fd 2 (click's ``CliRunner``, pytest's capture), when
    ``SEG_NATIVE_LOGS=all``, on Windows, when the forwarding process cannot start, or when already done. At
    interpreter exit fd 2 is restored and the forwarder is given a moment to write what is left.
    """
    global _forwarder
    with _install_lock:
        if _forwarder is not None or sys.platform == "win32" or not sys.executable or not os.path.isfile(__file__):
            return
        dropped = dropped_severities(os.environ.get(ENV_VAR))
        if not dropped or not _is_real_stderr(sys.stderr):
            return
        sys.stderr.flush()
        saved = os.dup(2)  # the real stderr; like os.pipe()'s ends, not inherited by child processes
        read_end, write_end = os.pipe()
        try:
            forwarder = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), "".join(sorted(dropped))],
                stdin=read_end,
                stdout=saved,
                stderr=saved,
                start_new_session=True,  # Ctrl-C and Ctrl-Z go to seg, not to its forwarder
            )
        except OSError:
            for fd in (saved, read_end, write_end):
                os.close(fd)
            return
        os.close(read_end)
        old = sys.stderr
        sys.stderr = io.TextIOWrapper(
            io.FileIO(saved, "w", closefd=False),
            encoding=old.encoding,
            errors=old.errors,
            line_buffering=True,
            write_through=True,
        )
        os.dup2(write_end, 2)  # fd 2 stays inheritable: child processes' stderr is filtered too
        os.close(write_end)
        _forwarder = forwarder
        atexit.register(_restore, saved, forwarder)


def _is_real_stderr(stream: object) -> bool:
    try:
        return stream.fileno() == 2  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        return False


def _restore(saved: int, forwarder: subprocess.Popen) -> None:
    """Point fd 2 back at the real stderr (closing the pipe) and let the forwarder write what is left."""
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os.dup2(saved, 2)
    with contextlib.suppress(subprocess.TimeoutExpired):  # a child process may still hold the pipe: it goes on
        forwarder.wait(_EXIT_WAIT_SECONDS)


class LineFilter:
    """Splits a byte stream into lines and keeps those that are not native log lines of a dropped severity.

    Args:
        dropped: the severities dropped (see :data:`LEVELS`).
    """

    def __init__(self, dropped: frozenset[str]) -> None:
        self.dropped = dropped
        self.pending = b""  # the start of a line whose newline has not come yet
        self.keep_rest: bool | None = None  # the verdict on a line whose start was already forwarded or dropped

    def feed(self, chunk: bytes) -> bytes:
        """The complete lines of ``pending + chunk`` that are kept; the incomplete end waits in ``pending``."""
        *lines, self.pending = (self.pending + chunk).split(b"\n")
        return b"".join(line + b"\n" for line in lines if self._keep(line))

    def flush(self) -> bytes:
        """The incomplete line now (empty when it is dropped); the rest of that line will share its verdict."""
        pending, self.pending = self.pending, b""
        if not pending:
            return b""
        if self.keep_rest is None:
            self.keep_rest = line_severity(pending) not in self.dropped
        return pending if self.keep_rest else b""

    def _keep(self, line: bytes) -> bool:
        if self.keep_rest is not None:  # the end of a line flushed early
            keep, self.keep_rest = self.keep_rest, None
            return keep
        return line_severity(line) not in self.dropped


def forward(read_fd: int, write_fd: int, dropped: frozenset[str]) -> None:
    """Copy ``read_fd`` to ``write_fd`` through a :class:`LineFilter` until end-of-file.

    An incomplete line is written once it has waited :data:`PARTIAL_LINE_SECONDS`. When ``write_fd`` fails (a closed
    pipe), reading goes on so that writers never block.
    """
    lines = LineFilter(dropped)
    poller = select.poll()
    poller.register(read_fd, select.POLLIN)
    waiting_since = 0.0  # when the incomplete line in lines.pending started
    writable = True
    while True:
        timeout = None if not lines.pending else max(0.0, waiting_since + PARTIAL_LINE_SECONDS - time.monotonic())
        out = b""
        if poller.poll(None if timeout is None else timeout * 1000):
            chunk = os.read(read_fd, _READ_SIZE)
            if not chunk:
                writable = writable and _write_all(write_fd, lines.flush())
                return
            new_line = not lines.pending or b"\n" in chunk
            out = lines.feed(chunk)
            if new_line:
                waiting_since = time.monotonic()
        if lines.pending and time.monotonic() >= waiting_since + PARTIAL_LINE_SECONDS:
            out += lines.flush()
        writable = writable and _write_all(write_fd, out)


def _write_all(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except InterruptedError:
            continue
        except OSError:
            return False
    return True


if __name__ == "__main__":  # the forwarder: ``python -I -S native_logs.py IWE`` reads stdin, writes stdout
    with contextlib.suppress(KeyboardInterrupt):
        forward(0, 1, frozenset(sys.argv[1]))
