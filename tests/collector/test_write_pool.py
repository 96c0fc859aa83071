from __future__ import annotations

import threading
import time

import pytest

from seg.collector.write_pool import WritePool


def test_every_job_runs_and_pending_jobs_stay_bounded() -> None:
    done: list[int] = []
    running = 0
    peak = 0
    lock = threading.Lock()

    def job(i: int) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.002)
        with lock:
            running -= 1
            done.append(i)

    with WritePool(workers=2, depth=3) as pool:
        for i in range(40):
            pool.submit(job, i)
            assert len(pool._pending) <= 3
    assert sorted(done) == list(range(40)) and peak <= 2


def test_first_failure_is_raised_and_later_jobs_are_dropped() -> None:
    done: list[int] = []

    def job(i: int) -> None:
        if i == 3:
            raise OSError("disk full")
        done.append(i)

    with pytest.raises(OSError, match="disk full"), WritePool(workers=1, depth=2) as pool:
        for i in range(100):
            pool.submit(job, i)
    assert 3 not in done and len(done) < 99


def test_drain_raises_before_the_caller_goes_on() -> None:
    pool = WritePool(workers=1)
    pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        pool.drain()
    pool.__exit__(None, None, None)
