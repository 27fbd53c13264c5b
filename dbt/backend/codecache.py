"""The code cache: object code of compiled region modules, kept on disk
across runs (``--jit-cache DIR``).

Compiling a module costs LLVM milliseconds to tens of milliseconds (most
of a short run's compiling); loading its object code from a file costs
about a millisecond.  A module's LLVM IR text says everything its code
depends on: the guest code and the monitor's rules, lowered; the host
addresses of RAM and the native tables, which the machine's arena keeps
the same from run to run (``dbt.memory.arena``); and, by name only, the
functions it calls, which the loader binds.  So the key of an entry is a
digest of that text, salted with what else shapes the code: the LLVM
version, the host triple, and the source of dbt's backend (the pass list,
the target options).  A run that lays memory out differently, or a changed
backend, finds nothing and compiles as before.

An entry is written whole under a temporary name and renamed, so runs
sharing a directory never see half of one; it carries a digest of its
code, checked on every load (a damaged entry is a miss, and is replaced).
The directory holds at most ``MAX_ENTRIES`` entries: past that, the least
recently used go.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

MAGIC = b"dbt code cache 1\n"
MAX_ENTRIES = 4096
SUFFIX = ".o"


class CodeCacheError(ValueError):
    """The cache directory cannot be used."""


@functools.lru_cache(maxsize=1)
def _salt() -> bytes:
    """What besides a module's text shapes its object code."""
    import llvmlite
    import llvmlite.binding as llvm

    backend = Path(__file__).parent
    digest = hashlib.sha256(MAGIC)
    digest.update(f"{llvmlite.__version__} {llvm.llvm_version_info} {llvm.get_process_triple()}\n".encode())
    for name in ("llvm.py", "irtext.py", "codecache.py"):
        digest.update((backend / name).read_bytes())
    return digest.digest()


class CodeCache:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise CodeCacheError(f"cannot use {str(directory)!r} as the code cache: not a directory")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CodeCacheError(f"cannot use {str(directory)!r} as the code cache: {error.strerror or error}") from None
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise CodeCacheError(f"cannot use {str(directory)!r} as the code cache: not writable")
        self.hits = 0
        self.misses = 0
        self._entries: int | None = None  # counted on the first store

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(_salt() + text.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}{SUFFIX}"

    def load(self, key: str) -> bytes | None:
        """The object code stored under ``key``, or None (counted as a miss)."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            self.misses += 1
            return None
        header = len(MAGIC) + 32
        code = data[header:]
        if data[:len(MAGIC)] != MAGIC or data[len(MAGIC):header] != hashlib.sha256(code).digest():
            self.misses += 1  # damaged (or from another format): compiled again and replaced
            return None
        try:
            os.utime(path)  # recently used
        except OSError:
            pass
        self.hits += 1
        return code

    def store(self, key: str, code: bytes) -> None:
        """Keep ``code`` under ``key`` (best effort: a full disk loses the entry, not the run)."""
        try:
            handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".entry-")
            with os.fdopen(handle, "wb") as file:
                file.write(MAGIC + hashlib.sha256(code).digest() + code)
            os.replace(temporary, self._path(key))
        except OSError:
            return
        if self._entries is None:
            self._entries = sum(1 for name in os.listdir(self.directory) if name.endswith(SUFFIX))
        else:
            self._entries += 1
        if self._entries > MAX_ENTRIES:
            self._entries = self._trim()

    def _trim(self) -> int:
        """Remove the least recently used entries past ``MAX_ENTRIES``; how many stay."""
        entries = []
        with os.scandir(self.directory) as listing:
            for entry in listing:
                if entry.name.endswith(SUFFIX):
                    try:
                        entries.append((entry.stat().st_mtime, entry.path))
                    except OSError:
                        continue
        if len(entries) <= MAX_ENTRIES:
            return len(entries)
        entries.sort()
        for _, path in entries[:len(entries) - MAX_ENTRIES]:
            try:
                os.unlink(path)
            except OSError:
                pass
        return MAX_ENTRIES
