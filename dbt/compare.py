"""``dbt compare``: one guest under several modes, side by side.

For each mode: whether the guest's serial output and exit status equal the
native run's (Popek and Goldberg's equivalence), where they first differ,
wall time, instructions retired, monitor exits and traps by reason and by
instruction, binary-translation callouts by kind, translation statistics,
and the overhead relative to native.  Medians over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict, dataclass, field

from dbt.session import RunOptions, RunResult, run_guest

MODES = ("native", "bt", "trap")


@dataclass
class ModeReport:
    mode: str
    status: int
    ending: str
    message: str
    insns: int
    seconds: list[float] = field(default_factory=list)
    equivalent: bool | None = None  # None for the reference itself
    first_difference: list[str] = field(default_factory=list)
    exits: dict[str, int] = field(default_factory=dict)  # monitor exits by reason
    callouts: dict[str, int] = field(default_factory=dict)  # bt callouts by kind
    traps: dict[str, int] = field(default_factory=dict)  # "reason: instruction" -> count
    translation: dict[str, int] = field(default_factory=dict)
    output_lines: int = 0

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds) if self.seconds else 0.0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["median_seconds"] = self.median_seconds
        return data


def _translation(result: RunResult) -> dict[str, int]:
    machine = result.machine
    stats = machine.cache.stats
    executions = sum(b.executions for b in machine.cache.blocks()) + stats.dropped_executions
    return {
        "blocks_translated": stats.translated,
        "blocks_executed": executions,
        "chained": max(executions - machine.unchained, 0),
        "lookups": stats.lookups,
        "invalidations": stats.invalidations,
    }


def first_difference(reference: bytes, other: bytes, context: int = 1) -> list[str]:
    """The first differing lines, as ``-`` (reference) and ``+`` (other) pairs."""
    ours = reference.decode(errors="replace").splitlines()
    theirs = other.decode(errors="replace").splitlines()
    for index in range(max(len(ours), len(theirs))):
        a = ours[index] if index < len(ours) else "(no line)"
        b = theirs[index] if index < len(theirs) else "(no line)"
        if a != b:
            lines = [f"line {index + 1}:"]
            lines += [f"- {a}", f"+ {b}"]
            return lines[: 1 + 2 * context]
    return []


def run_mode(guest: str, mode: str, options: RunOptions, repeat: int) -> tuple[ModeReport, RunResult]:
    report: ModeReport | None = None
    last: RunResult | None = None
    for _ in range(repeat):
        options.mode = mode
        result = run_guest(guest, options)
        if report is None:
            machine = result.machine
            exits = dict(sorted(machine.exits_by_reason.items()))
            report = ModeReport(
                mode=mode, status=result.status, ending=result.outcome.ending.value,
                message=result.outcome.message, insns=result.insns,
                exits={k: v for k, v in exits.items() if not k.startswith("callout:")},
                callouts={k[len("callout:"):]: v for k, v in exits.items() if k.startswith("callout:")},
                traps={f"{reason}: {insn}": count for (reason, insn), count in sorted(machine.traps.items())},
                translation=_translation(result),
                output_lines=len(result.output.splitlines()),
            )
        report.seconds.append(result.wall_seconds)
        last = result
    assert report is not None and last is not None
    return report, last


def compare(guest: str, modes: list[str], options: RunOptions, repeat: int = 1) -> list[ModeReport]:
    reports = []
    reference: RunResult | None = None
    for mode in modes:
        report, result = run_mode(guest, mode, options, repeat)
        if mode == "native":
            reference = result
        reports.append((report, result))
    if reference is None:
        reference = run_mode(guest, "native", options, 1)[1]
    finished = []
    for report, result in reports:
        if report.mode != "native":
            same = result.output == reference.output and result.status == reference.status
            report.equivalent = same
            if not same:
                report.first_difference = first_difference(reference.output, result.output)
                if not report.first_difference:
                    report.first_difference = [f"exit status {reference.status} vs {result.status}"]
        finished.append(report)
    return finished


def _top(counts: dict[str, int], most: int = 4) -> str:
    if not counts:
        return "-"
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    text = ", ".join(f"{name} {count:,}" for name, count in ranked[:most])
    if len(ranked) > most:
        text += f", +{len(ranked) - most} more"
    return text


def table(guest: str, reports: list[ModeReport]) -> str:
    native = next((r for r in reports if r.mode == "native"), None)
    lines = [f"dbt compare {guest}"]
    header = f"{'mode':<8}{'equivalent':<12}{'status':>7}{'instructions':>14}{'seconds':>10}{'vs native':>11}{'exits':>9}{'traps':>9}{'callouts':>10}"
    lines.append(header)
    lines.append("-" * len(header))
    for r in reports:
        equivalent = "reference" if r.equivalent is None else ("yes" if r.equivalent else "NO")
        ratio = f"{r.median_seconds / native.median_seconds:.2f}x" if native and native.median_seconds else "-"
        lines.append(
            f"{r.mode:<8}{equivalent:<12}{r.status:>7}{r.insns:>14,}{r.median_seconds:>10.3f}{ratio:>11}"
            f"{sum(r.exits.values()):>9,}{sum(r.traps.values()):>9,}{sum(r.callouts.values()):>10,}")
    for r in reports:
        lines.append("")
        lines.append(f"{r.mode}: {r.message}")
        if r.first_difference:
            lines.append("  differs from native at " + r.first_difference[0])
            lines += ["    " + line for line in r.first_difference[1:]]
        lines.append(f"  monitor exits: {_top(r.exits)}")
        if r.mode != "native":
            lines.append(f"  traps: {_top(r.traps)}")
        if r.mode == "bt":
            lines.append(f"  callouts: {_top(r.callouts)}")
        t = r.translation
        chained = 100 * t["chained"] / t["blocks_executed"] if t["blocks_executed"] else 0
        lines.append(f"  translation: {t['blocks_translated']:,} blocks, {t['blocks_executed']:,} executed, "
                     f"{chained:.1f}% chained")
    return "\n".join(lines)


def plot(guest: str, reports: list[ModeReport], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [r.mode for r in reports]
    figure, (times, events) = plt.subplots(1, 2, figsize=(10, 4))
    colors = ["#4c72b0" if r.equivalent in (None, True) else "#c44e52" for r in reports]
    times.bar(modes, [r.median_seconds for r in reports], color=colors)
    times.set_ylabel("wall time (s)")
    times.set_title(f"{guest}: time (red: not equivalent to native)")
    width = 0.27
    positions = range(len(modes))
    events.bar([p - width for p in positions], [sum(r.exits.values()) for r in reports], width, label="monitor exits")
    events.bar(list(positions), [sum(r.traps.values()) for r in reports], width, label="traps")
    events.bar([p + width for p in positions], [sum(r.callouts.values()) for r in reports], width, label="bt callouts")
    events.set_xticks(list(positions), modes)
    events.set_yscale("symlog")
    tallest = max([1] + [max(sum(r.exits.values()), sum(r.traps.values()), sum(r.callouts.values())) for r in reports])
    events.set_ylim(0, tallest * 3)
    events.set_title("monitor work")
    events.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def compare_command(args: argparse.Namespace) -> int:
    from dbt.cli import UsageError, run_options

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise UsageError(f"--modes: unknown mode(s) {', '.join(unknown) or '(none)'}; choose from native, bt, trap")
    options = run_options(args)
    options.serial_sink = lambda data: None
    if options.timeout_seconds is None:
        options.timeout_seconds = 300.0  # a mode that hangs (trap can) must not hang compare
    reports = compare(args.guest, modes, options, args.repeat)
    if args.json:
        print(json.dumps({"guest": args.guest, "modes": [r.as_dict() for r in reports]}, indent=2))
    else:
        print(table(args.guest, reports))
    if args.plot:
        plot(args.guest, reports, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
