"""The compile worker: a second process that turns batches of regions into
host object code while the monitor goes on running the guest.

Building a region's LLVM IR, optimizing it and generating code is most of
the hot tier's cost, and none of it needs the machine: only the blocks' IR
and the host addresses the code is bound to (guest RAM and the native
tables, which are plain numbers; the functions it calls are symbols the
monitor binds when it links the code).  The worker only ever sends back
bytes; the monitor links them into an engine of their own.  With a code
cache, the worker looks each module up there first.
A thread would not do: IR building is Python, and it would hold the GIL the
guest's cold code needs.

Jobs are answered in order.  Results are claimed by job number, so a
result for a machine that has gone away is dropped.
"""

from __future__ import annotations

import itertools
import multiprocessing
import signal
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

from dbt.backend.codecache import CodeCache
from dbt.backend.llvm import (
    COMPILE_TIMES,
    Bindings,
    NativeTarget,
    RegionBlock,
    object_code,
    warm_up,
)


@dataclass
class ModuleJob:
    """One module to compile: regions (head block first) and their names."""

    bindings: Bindings
    regions: list[list[RegionBlock]]
    names: list[str]
    identity_mapped: bool
    cache: str | None = None  # the code cache's directory


@dataclass
class Result:
    number: int
    codes: list[bytes] | None  # each module's object code (None if compiling failed)
    seconds: dict[str, float]  # build, optimize, codegen, cache
    error: str | None = None
    cache_hits: int = 0
    cache_misses: int = 0


class WorkerStopped(RuntimeError):
    """The worker process is gone (killed, out of memory), with any batch it had."""


class CompileWorker:
    """One compile process, shared by every machine of this process."""

    _instance: CompileWorker | None = None

    @classmethod
    def get(cls) -> CompileWorker:
        if cls._instance is None or not cls._instance.process.is_alive():
            cls._instance = cls()
        return cls._instance

    def __init__(self) -> None:
        target = NativeTarget.get()  # initialized before the fork: the child inherits it
        context = multiprocessing.get_context("fork")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, self.connection, target), name="dbt-compile",
                                       daemon=True)
        self.process.start()
        child.close()
        self._numbers = itertools.count(1)
        self._owners: dict[int, Callable[[], object | None]] = {}  # job -> its machine's JIT
        self._done: dict[int, Result] = {}

    def submit(self, owner: object, modules: list[ModuleJob]) -> int:
        """Send a batch; its result is claimed with ``take``.  One batch is
        in the pipe at a time (a job and a result both larger than the
        pipe's buffer would otherwise block each side writing to the other),
        so another machine's batch still compiling is waited for."""
        while self._owners:
            self._receive(True)
        number = next(self._numbers)
        self._owners[number] = weakref.ref(owner)
        self.connection.send((number, modules))
        return number

    def busy(self) -> bool:
        """A batch is still with the worker (results in but not taken do not count)."""
        self._receive(False)
        return bool(self._owners)

    def forget(self, number: int) -> None:
        """Job ``number``'s result is not wanted: drop it when it comes."""
        self._done.pop(number, None)
        if number in self._owners:
            self._owners[number] = _nobody

    def _receive(self, wait: bool) -> None:
        """Take the results the worker has sent (at least one if ``wait``)."""
        try:
            while wait or self.connection.poll():
                wait = False
                result: Result = self.connection.recv()
                owner = self._owners.pop(result.number, None)
                if owner is not None and owner() is not None:
                    self._done[result.number] = result
        except (EOFError, OSError) as error:
            self.process.join(1)
            raise WorkerStopped(f"the compile worker stopped (exit status {self.process.exitcode})") from error

    def take(self, number: int, wait: bool = False) -> Result | None:
        """Job ``number``'s result if it is in (waiting for it if ``wait``)."""
        self._receive(False)
        while wait and number not in self._done:
            self._receive(True)
        return self._done.pop(number, None)


def _serve(connection: Connection, monitor_end: Connection, target: NativeTarget) -> None:
    """The worker's loop: compile each job it is sent, until the pipe closes
    (when the monitor exits, even if it is killed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C is the monitor's to handle
    monitor_end.close()  # the fork's copy: held here, the pipe would never close
    warm_up(target)  # while the guest boots
    caches: dict[str, CodeCache] = {}  # by directory
    while True:
        try:
            number, modules = connection.recv()
        except (EOFError, OSError):
            return
        try:
            codes, seconds = [], dict.fromkeys(COMPILE_TIMES, 0.0)
            hits = misses = 0
            for module in modules:
                cache = None
                if module.cache is not None:
                    cache = caches.get(module.cache)
                    if cache is None:
                        cache = caches[module.cache] = CodeCache(module.cache)
                    hits_before, misses_before = cache.hits, cache.misses
                code, spent = object_code(target, module.bindings, module.regions, module.names,
                                          module.identity_mapped, cache)
                codes.append(code)
                for step, value in spent.items():
                    seconds[step] += value
                if cache is not None:
                    hits += cache.hits - hits_before
                    misses += cache.misses - misses_before
            result = Result(number, codes, seconds, cache_hits=hits, cache_misses=misses)
        except Exception as error:  # noqa: BLE001 (reported to the monitor, which raises it)
            result = Result(number, None, {}, f"{type(error).__name__}: {error}")
        connection.send(result)


def _nobody() -> None:
    return None
