"""A real Label Studio server on 127.0.0.1 for the annotate tests.

The server lives in its own virtualenv (``.venv-ls``, made by ``make test``). Without it these tests are skipped, but
they fail when ``CI`` is set: CI must never skip them silently.

Start-up costs 45-50 s on a fresh data folder (database migrations) and about 5 s on a copy of a migrated one, so a
template folder is migrated once per test run, shared by the xdist workers under a file lock, and each worker that runs
server tests starts one server on its own copy: at most two starts under ``-n 2``, where a server per module would
start up to six (xdist's load distribution splits a module's tests between workers; ``--dist loadgroup`` would keep
them together but does not group anything with pytest 9.2 and xdist 3.8 here). Tests share the server through
distinct project titles and folders.

A server is started directly (no shell) in its own session, watched by its PID, and stopped with its children at
teardown; every wait is bounded and fails with the server's log tail.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
LS_BINARY = REPO / ".venv-ls" / "bin" / "label-studio"
USER = "test@example.com"
PASSWORD = "seg-test-password"
#: The legacy API token the template's user gets (40 hex digits).
API_KEY = "5e9a0c1d2b3f4e5a6b7c8d9e0f1a2b3c4d5e6f70"
TEMPLATE_TIMEOUT = 300.0
START_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0
LISTENING = re.compile(r"Starting development server at https?://[^:/\s]+:(\d+)/")


def free_port() -> int:
    """A TCP port nothing listens on right now (the server may still lose it to a race: its log says)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabelStudioServer:
    """A running server: where it answers, its key, its document root for local files, and its process."""

    url: str
    api_key: str
    document_root: Path
    data_dir: Path
    log: Path
    process: subprocess.Popen

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log, lines)

    def stop(self) -> None:
        _stop(self.process)


def _tail(log: Path, lines: int) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _stop(process: subprocess.Popen) -> None:
    """Terminate the server and everything it started (it leads its own process group), then reap it."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)


def _environment(data_dir: Path, home: Path, document_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "HEARTEX_"))}
    env.update(
        HOME=str(home),
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true",
        LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(document_root),
        # no calls out of the machine: version check, analytics, error reporting
        LABEL_STUDIO_LATEST_VERSION_CHECK="false",
        LABEL_STUDIO_COLLECT_ANALYTICS="false",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        PYTHONUNBUFFERED="1",
    )
    return env


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_server(
    data_dir: Path, document_root: Path, *, fresh: bool, timeout: float = START_TIMEOUT
) -> LabelStudioServer:
    """Start Label Studio on ``data_dir`` and wait until it answers ``/health`` on the port its log names."""
    home = data_dir.parent / f"{data_dir.name}-home"
    home.mkdir(parents=True, exist_ok=True)
    document_root.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"{data_dir.name}.log"
    port = free_port()
    args = [str(LS_BINARY), "start", "--internal-host", "127.0.0.1", "--port", str(port), "--no-browser"]
    if fresh:
        args += ["--username", USER, "--password", PASSWORD, "--user-token", API_KEY, "--enable-legacy-api-token"]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_environment(data_dir, home, document_root),
            cwd=home,
            start_new_session=True,
        )
    server = LabelStudioServer("", API_KEY, document_root, data_dir, log, process)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"Label Studio exited with {process.returncode} while starting; log tail:\n{_tail(log, 40)}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"Label Studio did not answer within {timeout:g} s; log tail:\n{_tail(log, 40)}")
            if not server.url:
                match = LISTENING.search(log.read_text(errors="replace"))
                if match:  # the port it really took (it moves to port+1 when the port is busy)
                    server.url = f"http://127.0.0.1:{match.group(1)}"
            if server.url and _healthy(server.url):
                return server
            time.sleep(0.25)
    except BaseException:
        _stop(process)
        raise


def _shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder all xdist workers of this run share (this run's own when not under xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def label_studio_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated data folder with the test user and token, made once per run whatever the number of workers."""
    if not LS_BINARY.exists():
        message = f"Label Studio server not installed at {LS_BINARY} (run `make test` to build .venv-ls)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    root = _shared_root(tmp_path_factory)
    template = root / "label-studio-template"
    with open(root / "label-studio-template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (template / ".ready").exists():
            return template
        building = root / "label-studio-template.building"
        shutil.rmtree(building, ignore_errors=True)
        data = building / "data"
        started = time.monotonic()
        server = start_server(data, building / "docroot", fresh=True, timeout=TEMPLATE_TIMEOUT)
        server.stop()
        print(f"Label Studio template migrated in {time.monotonic() - started:.1f} s")
        shutil.rmtree(template, ignore_errors=True)
        os.replace(data, template)
        (template / ".ready").touch()
        shutil.rmtree(building, ignore_errors=True)
    return template


@pytest.fixture(scope="session")
def label_studio(label_studio_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    """This worker's server, on its own copy of the template; ``document_root`` takes local images."""
    base = tmp_path_factory.mktemp("label-studio")
    data = base / "data"
    shutil.copytree(label_studio_template, data, ignore=shutil.ignore_patterns(".ready"))
    server = start_server(data, base / "docroot", fresh=False)
    try:
        yield server
    finally:
        server.stop()
