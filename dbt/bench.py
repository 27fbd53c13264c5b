"""The benchmark harness: ``make bench`` (``python -m dbt.bench``).

Runs guests under several configurations side by side in one session and
prints guest instructions, wall time, MIPS and ratios, medians of several
runs; writes the figures to a JSON file and a chart to a PNG file.
Speed is only ever measured here, never asserted by a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dbt.guests import find_guest
from dbt.session import RunOptions, run_guest


@dataclass
class Measurement:
    guest: str
    config: str
    insns: int
    seconds: list[float] = field(default_factory=list)
    status: int = 0
    split: dict[str, float] = field(default_factory=dict)  # translate / execute seconds

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def mips(self) -> float:
        return self.insns / self.median_seconds / 1e6 if self.seconds else 0.0


def measure_dbt(guest: str, cmdline: str, repeat: int, config: str) -> Measurement:
    measurement = Measurement(guest, config, 0)
    for _ in range(repeat):
        result = run_guest(guest, RunOptions(serial_sink=lambda data: None, cmdline=cmdline))
        measurement.seconds.append(result.wall_seconds)
        measurement.insns = result.insns
        measurement.status = result.status
        translate = result.machine.translate_seconds
        measurement.split = {"translate": translate, "execute": result.wall_seconds - translate}
    return measurement


def measure_qemu(guest: str, cmdline: str, repeat: int, insns: int) -> Measurement | None:
    """QEMU's TCG on the same kernel; instructions are dbt's count for the
    same guest and command line (the guests are deterministic)."""
    qemu = shutil.which("qemu-system-i386")
    shipped = find_guest(guest)
    if qemu is None or shipped is None:
        return None
    command = [qemu, "-kernel", str(shipped.image), "-m", "64", "-display", "none", "-serial", "null",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-no-reboot", "-append", cmdline]
    measurement = Measurement(guest, "qemu-tcg", insns)
    for _ in range(repeat):
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, timeout=600)
        measurement.seconds.append(time.perf_counter() - started)
        measurement.status = completed.returncode
    return measurement


def compute_insns(scale: int, known_insns: int, known_scale: int) -> int:
    """Instructions of the compute guest at ``scale``: its count is linear
    in the scale (a fixed start plus the same work per unit), so two exact
    counts from dbt determine it."""
    other_scale = known_scale + 1
    other = run_guest("compute", RunOptions(serial_sink=lambda data: None,
                                            cmdline=f"scale={other_scale}")).insns
    per_unit = other - known_insns
    return known_insns + per_unit * (scale - known_scale)


def report(measurements: list[Measurement]) -> str:
    lines = [f"{'guest':<12}{'configuration':<16}{'instructions':>15}{'seconds':>10}{'MIPS':>10}{'vs cold':>9}{'vs qemu':>9}"]
    by_guest: dict[str, dict[str, Measurement]] = {}
    for m in measurements:
        by_guest.setdefault(m.guest, {})[m.config] = m
    for m in measurements:
        cold = by_guest[m.guest].get("dbt-cold")
        qemu = by_guest[m.guest].get("qemu-tcg")
        vs_cold = f"{m.mips / cold.mips:.2f}x" if cold and cold.mips else "-"
        vs_qemu = f"{m.mips / qemu.mips:.4f}x" if qemu and qemu.mips else "-"
        lines.append(f"{m.guest:<12}{m.config:<16}{m.insns:>15,}{m.median_seconds:>10.3f}{m.mips:>10.2f}{vs_cold:>9}{vs_qemu:>9}")
    return "\n".join(lines)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="dbt's benchmark harness")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (median reported)")
    parser.add_argument("--scale", type=int, default=1, help="work scale of the compute guest under dbt")
    parser.add_argument("--qemu-scale", type=int, default=100, help="work scale of the compute guest under QEMU")
    parser.add_argument("--output", default="bench-results", help="directory for the JSON and PNG files")
    args = parser.parse_args(argv)
    measurements: list[Measurement] = []
    print(f"machine: {machine_description()}", flush=True)
    cold = measure_dbt("compute", f"scale={args.scale}", args.repeat, "dbt-cold")
    measurements.append(cold)
    qemu_insns = compute_insns(args.qemu_scale, cold.insns, args.scale)
    qemu = measure_qemu("compute", f"scale={args.qemu_scale}", args.repeat, qemu_insns)
    if qemu is not None:
        measurements.append(qemu)
    else:
        print("qemu-system-i386 not found: QEMU column skipped", file=sys.stderr)
    print(report(measurements))
    print(f"cold tier split (compute): translate {cold.split['translate']:.3f} s, "
          f"execute {cold.split['execute']:.3f} s")
    out = Path(args.output)
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(json.dumps(
        {"machine": machine_description(), "measurements": [asdict(m) | {"mips": m.mips} for m in measurements]},
        indent=2))
    print(f"wrote {out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
