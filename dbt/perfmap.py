"""``dbt run --perf-map``: name the hot tier's compiled code for ``perf``.

Linux ``perf`` reads ``/tmp/perf-PID.map`` to symbolize samples in code a
JIT generated: one line per region, ``START SIZE symbolname``, START and
SIZE in hexadecimal without prefix.  Each region here is a compiled guest
block, named by the machine (``guest_0x00101a40``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def perf_map_path(pid: int | None = None, directory: Path = Path("/tmp")) -> Path:
    return directory / f"perf-{os.getpid() if pid is None else pid}.map"


def perf_map_lines(symbols: Iterable[tuple[int, int, str]]) -> str:
    """The map's text for (host address, size in bytes, name) triples, by address."""
    lines = []
    for start, size_bytes, name in sorted(symbols):
        # perf takes the rest of the line as the name; a newline would split it.
        clean = " ".join(name.split()) or f"code_{start:x}"
        lines.append(f"{start:x} {size_bytes:x} {clean}\n")
    return "".join(lines)


def write_perf_map(symbols: Iterable[tuple[int, int, str]], path: Path | None = None) -> Path:
    """Write the map (empty when nothing was compiled) and return where."""
    path = path or perf_map_path()
    path.write_text(perf_map_lines(symbols))
    return path


def perf_map_message(path: Path, count: int) -> str:
    if count == 0:
        return (f"dbt: perf map written to {path} (empty: the hot tier compiled no guest code "
                "in this run)")
    return f"dbt: perf map written to {path} ({count:,} compiled regions)"
