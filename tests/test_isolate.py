"""`isolate.Worker`: an item that hangs, eats memory, crashes or raises gives a one-line error and the
next item runs in a fresh worker; the state is built once per worker."""
from __future__ import annotations

import os
import signal
import time
from functools import partial

import pytest

from synclipmae.isolate import Crashed, Failed, Limits, OutOfMemory, SetupError, Timeout, Worker


def make_state(value: int) -> dict:
    return {"value": value, "pid": os.getpid()}


def job(state: dict, item: str):
    if item == "hang":
        time.sleep(60)
    if item == "eat":
        hog = bytearray(1)
        for _ in range(200):  # up to 2 GB, 10 MB at a time, each page touched
            hog += b"x" * (10 * 2**20)
            time.sleep(0.01)
    if item == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if item == "raise":
        raise ValueError("bad\nitem")
    return state["value"], state["pid"]


def broken_setup():
    raise RuntimeError("cannot load the model")


def test_limits_hit_give_one_line_errors_and_the_worker_restarts():
    with Worker(partial(make_state, 7), max_memory=300 * 2**20, poll_s=0.02) as w:
        value, pid = w.run(job, "ok", timeout=30)
        assert value == 7 and pid != os.getpid()
        assert w.run(job, "ok", timeout=30)[1] == pid          # one worker serves many items

        started = time.monotonic()
        with pytest.raises(Timeout, match=r"^timeout: no result after 1 s$"):
            w.run(job, "hang", timeout=1)
        assert time.monotonic() - started < 5
        value, pid2 = w.run(job, "ok", timeout=30)               # a fresh worker, its state rebuilt
        assert value == 7 and pid2 != pid

        with pytest.raises(OutOfMemory, match=r"^memory: over the limit of 0.29 GB"):
            w.run(job, "eat", timeout=30)
        with pytest.raises(Crashed, match=r"^crashed: the worker died \(SIGSEGV\)"):
            w.run(job, "segfault", timeout=30)
        with pytest.raises(Failed, match=r"^ValueError: bad item$"):
            w.run(job, "raise", timeout=30)
        pid3 = w.run(job, "ok", timeout=30)[1]                    # a raising item keeps the worker
        assert w.starts == 4 and pid3 not in (pid, pid2)


def test_setup_failure_is_one_line():
    with Worker(broken_setup) as w, pytest.raises(SetupError, match="^cannot load the model$"):
        w.run(job, "ok")


def test_default_limits():
    limits = Limits()
    assert limits.seconds(None) == limits.base_s and limits.seconds(10) == limits.base_s + 10 * limits.per_second
    assert Limits(memory_gb=0).memory() is None and Limits(memory_gb=1).memory() == 2**30
    assert Limits().memory() is None or Limits().memory() > 2**29
