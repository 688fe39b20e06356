"""Run a function per item in a separate, restartable worker process, under a time and a memory limit.

A batch over thousands of files must survive the one file that hangs the demuxer, eats the memory or
crashes the decoder. `Worker` keeps one child process (spawned, so it shares no state with the
parent) that builds its state once (`setup()`, e.g. loading a model) and then runs `fn(state, item)`
for each item the parent sends over a pipe. The parent waits for the answer, and:

- past `timeout` seconds it kills the child and raises `Timeout`;
- when the child's resident memory (VmRSS in /proc, polled every `poll_s`) passes `max_memory`
  bytes it kills the child and raises `OutOfMemory`;
- when the child dies by itself (a segfault, the kernel's OOM killer) it raises `Crashed`;
- when `fn` raises, the child survives and the parent raises `Failed` with the one-line reason.

Each is a `WorkerError` whose message is one line ("timeout: ...", "memory: ...", "crashed: ...").
After a kill or a death the next `run` starts a fresh child, so the items after it go on.

Why poll the resident memory instead of `resource.setrlimit(RLIMIT_AS)`: the address-space limit
counts virtual memory, and a process that has imported torch and PyAV reserves several GB of it that
it never touches (allocator arenas, thread stacks, mapped libraries), so a limit near the memory we
mean to allow kills healthy work, and when it does hit, the failed allocation surfaces as a random
error or crash inside C code instead of one clear reason. RSS is what the machine runs out of. The
price: a spike shorter than `poll_s` can pass unseen, and the bound works where /proc exists (Linux);
elsewhere only the time limit holds.
"""
from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from synclipmae.errors import one_line


class WorkerError(Exception):
    """An item the worker could not finish, in one line; the batch goes on."""


class Timeout(WorkerError):
    pass


class OutOfMemory(WorkerError):
    pass


class Crashed(WorkerError):
    pass


class Failed(WorkerError):
    """`fn` raised in the worker: its exception type and message, in one line."""


class SetupError(Exception):
    """`setup()` raised or the worker died while starting: nothing can run."""


def ram_bytes() -> int | None:
    """The machine's physical memory, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def rss_bytes(pid: int) -> int | None:
    """Resident memory of process `pid` (VmRSS), or None without /proc or once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass
class Limits:
    """What one item may take: `seconds(duration)` of wall time and `memory` bytes of RSS."""
    base_s: float = 60.0            # default: a file's fixed cost (open, probe, detector start) with room for a busy machine
    per_second: float = 3.0         # default: 3 s per second of media, 12x the 4x real time `sync` runs at on 2 cores
    memory_gb: float | None = None  # None = half the RAM (default: room for the system and other jobs; 0 = no bound)

    def seconds(self, duration_s: float | None) -> float:
        return self.base_s + self.per_second * max(duration_s or 0.0, 0.0)

    def memory(self) -> int | None:
        """The RSS bound in bytes (None: no bound)."""
        if self.memory_gb is None:
            ram = ram_bytes()
            return ram // 2 if ram else None
        return int(self.memory_gb * 2**30) if self.memory_gb > 0 else None


def _signal_name(code: int | None) -> str:
    if code is None or code >= 0:
        return f"exit code {code}"
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies (a killed batch leaves no orphan)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _serve(conn, setup) -> None:
    """The worker's main loop: build the state, then answer ("ok", result) or ("failed", reason) per item."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: no traceback from here
    _die_with_parent()
    try:
        state = setup()
    except BaseException as err:  # noqa: BLE001 - reported to the parent in one line
        conn.send(("setup_failed", one_line(err)))
        return
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return  # the parent has gone
        if job is None:
            return
        fn, item = job
        try:
            answer = ("ok", fn(state, item))
        except BaseException as err:  # noqa: BLE001 - a failed item never ends the worker
            answer = ("failed", f"{type(err).__name__}: {one_line(err)}")
        try:
            conn.send(answer)
        except (EOFError, OSError):
            return
        except Exception as err:  # noqa: BLE001 - an answer that cannot be pickled
            conn.send(("failed", f"cannot send the result back: {one_line(err)}"))


class Worker:
    """A child process that runs `fn(state, item)` per item with `state = setup()` built once.

    setup, fn: picklable (module-level functions or `functools.partial` of them), since the child is
        spawned; `fn`'s result must be picklable too.
    max_memory: RSS bound in bytes while an item runs (None: no bound).
    The child starts at the first `run` and again after each kill or death. Use as a context manager,
    or call `close()`."""

    def __init__(self, setup: Callable[[], Any], max_memory: int | None = None, poll_s: float = 0.05):
        self.setup, self.max_memory, self.poll_s = setup, max_memory, poll_s
        self.proc = self.conn = None
        self.starts = 0  # children started so far (1 + restarts)

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, self.setup), daemon=True, name="synclipmae-worker")
        self.proc.start()
        child.close()
        self.starts += 1
        while not self.conn.poll(self.poll_s) and self.proc.is_alive():
            pass
        try:
            kind, message = self.conn.recv()
        except (EOFError, OSError):  # it died before answering
            self.proc.join(1)
            kind, message = "died", f"the worker died while starting ({_signal_name(self.proc.exitcode)})"
        if kind != "ready":
            self._stop()
            raise SetupError(message)

    def _stop(self) -> None:
        """Kill the child now (SIGKILL: a hung decoder does not answer anything gentler)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()
            self.conn.close()
        self.proc = self.conn = None

    def run(self, fn: Callable[[Any, Any], Any], item: Any, timeout: float | None = None) -> Any:
        """`fn(state, item)` in the child; raises a `WorkerError` (one line) when the item hits a limit,
        kills the child or raises, and `SetupError` when the child cannot start."""
        if self.proc is None:
            self._start()
        try:
            self.conn.send((fn, item))
        except OSError:
            pass  # the child has died since its last item: found out below
        started, peak = time.monotonic(), 0
        while True:
            if self.conn.poll(self.poll_s):
                try:
                    kind, value = self.conn.recv()
                except (EOFError, OSError):  # the child closed its end: it is dying
                    self.proc.join(1)
                else:
                    if kind == "ok":
                        return value
                    raise Failed(value)
            took = time.monotonic() - started
            if not self.proc.is_alive():
                code = self.proc.exitcode
                self._stop()
                raise Crashed(f"crashed: the worker died ({_signal_name(code)}) after {took:.1f} s"
                              + (f", {peak / 2**30:.2f} GB resident when last seen" if peak else ""))
            rss = rss_bytes(self.proc.pid) or 0
            peak = max(peak, rss)
            if self.max_memory is not None and rss > self.max_memory:
                self._stop()
                raise OutOfMemory(f"memory: over the limit of {self.max_memory / 2**30:.2f} GB "
                                  f"({rss / 2**30:.2f} GB resident after {took:.1f} s)")
            if timeout is not None and took > timeout:
                self._stop()
                raise Timeout(f"timeout: no result after {round(timeout, 1):g} s")

    def close(self) -> None:
        """Ask the child to finish, and kill it if it has not within a second (it is busy: Ctrl-C)."""
        if self.proc is None:
            return
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.proc.join(1)
        self._stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
