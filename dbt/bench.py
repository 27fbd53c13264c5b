"""The benchmark harness: ``make bench`` (``python -m dbt.bench``).

Everything is measured side by side in one session, medians of several runs:

* the ``compute`` guest (CRC32, sieve, matrix multiply, heapsort) with paging
  off and on, under dbt with the hot tier on and off, and under
  ``qemu-system-i386`` (TCG) when it is installed: guest instructions, wall
  time, MIPS and the ratios to QEMU and to dbt's cold tier.  The hot tier
  runs with no code cache (every region compiled in the run), and again
  with one a previous run filled (``--jit-cache``);
* the virtualization microbenchmarks (``syscall``, ``in``, ``cli-sti``,
  ``cr3``, ``callret``, ``pgfault``, ``divzero``, ``ptemod``) under native,
  bt and trap, hot tier on and off: time per iteration (the difference of
  two runs with different iteration counts, so boot and set-up cancel; the
  larger count grows until the runs differ by a quarter second) and the
  ratio trap/bt;
* the ``multitask`` kernel under each mode, hot tier on and off.

It prints the tables, writes them as JSON and draws them into a PNG chart.
Speed is only ever measured here, never asserted by a test.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dbt.guests import find_guest
from dbt.session import RunOptions, run_guest

MICROBENCHMARKS = ("syscall", "in", "cli-sti", "cr3", "callret", "pgfault", "divzero", "ptemod")
MODES = ("native", "bt", "trap")


@dataclass
class Measurement:
    """One configuration of one guest: instructions and wall-time samples."""

    guest: str
    config: str
    insns: int = 0
    seconds: list[float] = field(default_factory=list)
    status: int = 0
    splits: list[dict[str, float]] = field(default_factory=list)  # each run's time split

    def add(self, seconds: float, insns: int, status: int, split: dict[str, float]) -> None:
        self.seconds.append(seconds)
        self.insns, self.status = insns, status
        self.splits.append(split)

    @property
    def median_split(self) -> dict[str, float]:
        """The median run's own time split (with an even count, the upper
        middle run's), so that the split printed adds up to its time."""
        if not self.splits:
            return {}
        middle = sorted(range(len(self.seconds)), key=self.seconds.__getitem__)[len(self.seconds) // 2]
        return self.splits[middle]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else 0.0

    @property
    def mips(self) -> float:
        return self.insns / self.median / 1e6 if self.median else 0.0


def dbt_run(guest: str, cmdline: str, **options) -> tuple[float, int, int, dict[str, float]]:
    """(wall seconds, instructions, status, time split) of one dbt run."""
    # The last run's machine is let go first, so that this one's memory
    # takes the first fixed place again and the code cache's entries fit.
    gc.collect()
    result = run_guest(guest, RunOptions(serial_sink=lambda data: None, cmdline=cmdline, **options))
    machine = result.machine
    split = {"wall": result.wall_seconds, "translate": machine.translate_seconds, "compile": machine.compile_seconds}
    split["execute"] = max(result.wall_seconds - split["translate"] - split["compile"], 0.0)
    if machine.jit is not None:
        jit = machine.jit
        split["native_share"] = jit.native_insns / result.insns if result.insns else 0.0
        split["stayed_native"] = jit.stayed_native
        split["worker"] = jit.worker_seconds  # beside the run, in the compile worker
        if jit.code_cache is not None:
            split["cache_hits"], split["cache_misses"] = jit.code_cache.hits, jit.code_cache.misses
    return result.wall_seconds, result.insns, result.status, split


def qemu_run(guest: str, cmdline: str) -> tuple[float, int] | None:
    """(wall seconds, exit status) of the guest under qemu-system-i386, or None."""
    qemu = shutil.which("qemu-system-i386")
    shipped = find_guest(guest)
    if qemu is None or shipped is None:
        return None
    command = [qemu, "-kernel", str(shipped.image), "-m", "64", "-display", "none", "-serial", "null",
               "-monitor", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-no-reboot",
               "-append", cmdline]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, timeout=900, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started, completed.returncode


# -- compute --------------------------------------------------------------------------------
FOREGROUND = "dbt hot, fg"  # the hot tier compiling in the monitor (--jit-compile foreground)
WARM = "dbt hot, cached"  # the hot tier with a code cache a run before filled (--jit-cache)

def compute_table(repeat: int, hot_scale: int, cold_scale: int) -> list[Measurement]:
    rows = []
    for paging in (0, 1):
        suffix = " paging" if paging else ""
        hot = Measurement("compute" + suffix, "dbt hot tier")
        foreground = Measurement("compute" + suffix, FOREGROUND)
        warm = Measurement("compute" + suffix, WARM)
        cold = Measurement("compute" + suffix, "dbt cold tier")
        qemu = Measurement("compute" + suffix, "qemu tcg")
        hot_cmdline = f"scale={hot_scale} paging={paging}"
        with tempfile.TemporaryDirectory(prefix="dbt-bench-cache-") as cache:
            dbt_run("compute", hot_cmdline, jit="on", mode="native", jit_cache=cache)  # fills it (not measured)
            for _ in range(repeat):  # interleaved: all see the machine's load alike
                for row, compile_in, cached in ((hot, "background", None), (foreground, "foreground", None),
                                                (warm, "background", cache)):
                    seconds, insns, status, split = dbt_run("compute", hot_cmdline, jit="on", mode="native",
                                                            jit_compile=compile_in, jit_cache=cached)
                    row.add(seconds, insns, status, split)
        for _ in range(repeat):
            seconds, insns, status, split = dbt_run("compute", f"scale={cold_scale} paging={paging}",
                                                    jit="off", mode="native")
            cold.add(seconds, insns, status, split)
        for _ in range(repeat):
            measured = qemu_run("compute", hot_cmdline)
            if measured is None:
                break
            qemu.seconds.append(measured[0])
            qemu.status = measured[1]
        qemu.insns = hot.insns  # the same deterministic guest and command line
        rows += [hot, foreground, warm, cold] + ([qemu] if qemu.seconds else [])
    return rows


def compute_report(rows: list[Measurement]) -> str:
    lines = ["compute guest (native mode)",
             f"  {'guest':<16}{'configuration':<16}{'instructions':>15}{'seconds':>10}{'MIPS':>10}"
             f"{'/ cold':>9}{'/ qemu':>9}"]
    for row in rows:
        peers = {r.config: r for r in rows if r.guest == row.guest}
        cold, qemu = peers.get("dbt cold tier"), peers.get("qemu tcg")
        vs_cold = f"{row.mips / cold.mips:.1f}x" if cold and cold.mips else "-"
        vs_qemu = f"{row.mips / qemu.mips:.2f}x" if qemu and qemu.mips else "-"
        lines.append(f"  {row.guest:<16}{row.config:<16}{row.insns:>15,}{row.median:>10.3f}"
                     f"{row.mips:>10.1f}{vs_cold:>9}{vs_qemu:>9}")
    for row in rows:
        if row.config in ("dbt hot tier", FOREGROUND, WARM):
            split = row.median_split
            wall = split["wall"]
            worker = f" (+ {split['worker']:.3f} s in the compile worker)" if split.get("worker") else ""
            if "cache_hits" in split:
                worker += f" ({split['cache_hits']:.0f} modules from the code cache, {split['cache_misses']:.0f} compiled)"
            lines.append(
                f"  {row.guest}, {row.config}: translate {split['translate']:.3f} s, compile "
                f"{split['compile']:.3f} s{worker}, execute {split['execute']:.3f} s of {wall:.3f} s; "
                f"{100 * split.get('native_share', 0):.1f}% "
                f"of instructions native, {100 * split.get('stayed_native', 0):.2f}% of compiled "
                f"blocks reached from native code")
    return "\n".join(lines)


# -- virtualization microbenchmarks ---------------------------------------------------------
@dataclass
class PerIteration:
    benchmark: str
    mode: str
    jit: str
    microseconds: float  # per iteration


# The two runs of a microbenchmark must differ by this much wall time, or the
# larger one is made longer (up to MAX_GROWTH times): a loop that costs a
# microsecond or less is otherwise lost in the noise of boot and set-up.
MIN_SPAN_SECONDS = 0.25
MAX_GROWTH = 256


def per_iteration(benchmark: str, mode: str, jit: str, small: int, large: int, repeat: int) -> PerIteration:
    """Time per iteration from two runs (``small`` and ``large`` iterations):
    what boot and set-up cost cancels out."""

    def seconds(iterations: int) -> float:
        return dbt_run(benchmark, f"n={iterations}", mode=mode, jit=jit)[0]

    low, high = seconds(small), seconds(large)
    growth = 1
    while high - low < MIN_SPAN_SECONDS and growth < MAX_GROWTH:
        growth *= 4
        high = seconds(small + (large - small) * growth)
    large = small + (large - small) * growth
    samples = [(high - low) / (large - small) * 1e6]
    for _ in range(repeat - 1):
        low, high = seconds(small), seconds(large)
        samples.append((high - low) / (large - small) * 1e6)
    return PerIteration(benchmark, mode, jit, statistics.median(samples))


def qemu_per_iteration(benchmark: str, small: int, large: int, repeat: int) -> float | None:
    samples = []
    for _ in range(repeat):
        low, high = qemu_run(benchmark, f"n={small}"), qemu_run(benchmark, f"n={large}")
        if low is None or high is None:
            return None
        samples.append((high[0] - low[0]) / (large - small) * 1e6)
    return statistics.median(samples)


def micro_table(repeat: int, small: int, large: int) -> tuple[list[PerIteration], dict[str, float]]:
    rows = []
    qemu: dict[str, float] = {}
    for benchmark in MICROBENCHMARKS:
        for jit in ("on", "off"):
            scale = 1 if jit == "on" else 4  # the cold tier is slower: fewer iterations
            for mode in MODES:
                rows.append(per_iteration(benchmark, mode, jit, small // scale, large // scale, repeat))
        measured = qemu_per_iteration(benchmark, small * 10, large * 10, repeat)
        if measured is not None:
            qemu[benchmark] = measured
    return rows, qemu


def micro_report(rows: list[PerIteration], qemu: dict[str, float]) -> str:
    lines = ["virtualization microbenchmarks: microseconds per iteration",
             f"  {'benchmark':<10}{'tier':<6}{'native':>10}{'bt':>10}{'trap':>10}{'trap/bt':>9}"
             f"{'qemu':>9}"]
    index = {(r.benchmark, r.mode, r.jit): r.microseconds for r in rows}
    for benchmark in MICROBENCHMARKS:
        for jit in ("on", "off"):
            native, bt, trap = (index[(benchmark, mode, jit)] for mode in MODES)
            ratio = f"{trap / bt:.2f}" if bt > 0 else "-"
            tcg = f"{qemu[benchmark]:.3f}" if jit == "on" and benchmark in qemu else ""
            label = "hot" if jit == "on" else "cold"
            lines.append(f"  {benchmark:<10}{label:<6}{native:>10.3f}{bt:>10.3f}{trap:>10.3f}{ratio:>9}{tcg:>9}")
    return "\n".join(lines)


# -- multitask ------------------------------------------------------------------------------
def multitask_table(repeat: int) -> list[Measurement]:
    rows = []
    for mode in MODES:
        configurations = ((f"{mode} hot", "on", "background"), (f"{mode} hot fg", "on", "foreground"),
                          (f"{mode} cold", "off", "background"))
        mode_rows = [Measurement("multitask", name) for name, _, _ in configurations]
        for _ in range(repeat):  # interleaved: all see the machine's load alike
            for row, (_, jit, compile_in) in zip(mode_rows, configurations, strict=True):
                seconds, insns, status, split = dbt_run("multitask", "", mode=mode, jit=jit, jit_compile=compile_in)
                row.add(seconds, insns, status, split)
        rows += mode_rows
    return rows


def multitask_report(rows: list[Measurement]) -> str:
    lines = ["multitask kernel (3 tasks, timer preemption, CR3 switches)",
             f"  {'configuration':<14}{'instructions':>15}{'seconds':>10}{'MIPS':>9}{'hot / cold':>12}"]
    by = {row.config: row for row in rows}
    for row in rows:
        mode, tier = row.config.split(maxsplit=1)
        cold = by.get(f"{mode} cold")
        speedup = f"{cold.median / row.median:.2f}x" if tier != "cold" and cold and row.median else ""
        lines.append(f"  {row.config:<14}{row.insns:>15,}{row.median:>10.3f}{row.mips:>9.2f}{speedup:>12}")
    return "\n".join(lines)


# -- output ---------------------------------------------------------------------------------
def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def chart(compute: list[Measurement], micro: list[PerIteration], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    labels = [f"{m.guest}\n{m.config}" for m in compute]
    left.bar(range(len(compute)), [m.mips for m in compute],
             color=["#4c72b0" if "hot" in m.config else "#dd8452" if "cold" in m.config else "#55a868"
                    for m in compute])
    left.set_xticks(range(len(compute)), labels, fontsize=7)
    left.set_yscale("log")
    left.set_ylabel("guest MIPS (log)")
    left.set_title("compute guest")
    hot = [r for r in micro if r.jit == "on"]
    width = 0.27
    for offset, mode in zip((-width, 0, width), MODES, strict=True):
        values = [r.microseconds for r in hot if r.mode == mode]
        right.bar([i + offset for i in range(len(MICROBENCHMARKS))], values, width, label=mode)
    right.set_xticks(range(len(MICROBENCHMARKS)), MICROBENCHMARKS, fontsize=8)
    right.set_yscale("log")
    right.set_ylabel("µs per iteration (log)")
    right.set_title("virtualization microbenchmarks (hot tier)")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="dbt's benchmark harness")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (medians reported)")
    parser.add_argument("--hot-scale", type=int, default=40,
                        help="compute guest scale for the hot tier and QEMU (default 40)")
    parser.add_argument("--cold-scale", type=int, default=1, help="compute guest scale for the cold tier")
    parser.add_argument("--iterations", type=int, default=20000,
                        help="microbenchmark iterations of the larger run (the smaller is a tenth)")
    parser.add_argument("--only", choices=("compute", "micro", "multitask"), action="append",
                        help="run only these parts (repeatable)")
    parser.add_argument("--output", default="bench-results", help="directory for bench.json and bench.png")
    args = parser.parse_args(argv)
    parts = set(args.only or ("compute", "micro", "multitask"))
    print(f"machine: {machine_description()}", flush=True)
    results: dict[str, object] = {"machine": machine_description(), "date": time.strftime("%Y-%m-%d")}
    compute: list[Measurement] = []
    micro: list[PerIteration] = []
    if "compute" in parts:
        compute = compute_table(args.repeat, args.hot_scale, args.cold_scale)
        print(compute_report(compute), flush=True)
        results["compute"] = [asdict(m) | {"median_seconds": m.median, "mips": m.mips} for m in compute]
    if "micro" in parts:
        micro, qemu = micro_table(args.repeat, args.iterations // 10, args.iterations)
        print(micro_report(micro, qemu), flush=True)
        results["micro"] = [asdict(r) for r in micro]
        results["micro_qemu"] = qemu
    if "multitask" in parts:
        multitask = multitask_table(args.repeat)
        print(multitask_report(multitask), flush=True)
        results["multitask"] = [asdict(m) | {"median_seconds": m.median, "mips": m.mips} for m in multitask]
    out = Path(args.output)
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=2))
    if compute and micro:
        chart(compute, micro, out / "bench.png")
        print(f"wrote {out / 'bench.json'} and {out / 'bench.png'}")
    else:
        print(f"wrote {out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
