"""Human-readable reports: how a run ended, and what it cost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbt.cpu.state import Slot

if TYPE_CHECKING:
    from dbt.session import RunResult


def ending_report(result: RunResult) -> str:
    """Why the guest stopped, where, and the register state — for every ending
    other than the guest's own exit through isa-debug-exit."""
    outcome = result.outcome
    machine = result.machine
    lines = [f"dbt: the guest stopped: {outcome.message} (status {outcome.status})"]
    if outcome.details.get("traceback"):
        lines.append(outcome.details["traceback"].rstrip())
    eip = machine.slots[Slot.EIP]
    instruction = outcome.details.get("instruction") or machine.instruction_at(eip)
    lines.append(f"  at EIP {eip:#010x}: {instruction}")
    lines.append(f"  after {machine.icount:,} instructions")
    registers = machine.registers()
    general = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
    lines.append("  " + "  ".join(f"{name}={registers[name]:08x}" for name in general[:4]))
    lines.append("  " + "  ".join(f"{name}={registers[name]:08x}" for name in general[4:]))
    lines.append(f"  eflags={registers['eflags']:08x}  " + "  ".join(
        f"{name}={registers[name]:04x}" for name in ("cs", "ss", "ds", "es", "fs", "gs")))
    lines.append("  " + "  ".join(f"{name}={registers[name]:08x}" for name in ("cr0", "cr2", "cr3", "cr4")))
    return "\n".join(lines)


def stats_report(result: RunResult) -> str:
    machine = result.machine
    stats = machine.cache.stats
    seconds = result.wall_seconds
    insns = machine.icount
    executions = sum(block.executions for block in machine.cache.blocks()) + stats.dropped_executions
    # Every execution began either by following a link or after a look-up.
    transitions = executions
    chained = max(executions - machine.unchained, 0)
    lines = ["dbt statistics"]
    lines.append(f"  guest instructions   {insns:>14,}")
    lines.append(f"  wall time            {seconds:>14.3f} s   ({insns / seconds / 1e6 if seconds else 0:.2f} MIPS)")
    lines.append(f"  translating          {machine.translate_seconds:>14.3f} s")
    lines.append(f"  blocks translated    {stats.translated:>14,}")
    lines.append(f"  blocks executed      {executions:>14,}")
    lines.append(f"  chained transitions  {chained:>14,}   ({100 * chained / transitions if transitions else 0:.2f}% of {transitions:,})")
    lines.append(f"  look-ups             {stats.lookups:>14,}   (jump cache {stats.jump_cache_hits:,}, table {stats.table_hits:,})")
    lines.append(f"  links made           {stats.links_made:>14,}")
    lines.append(f"  invalidations        {stats.invalidations:>14,}   (code writes {stats.code_writes:,})")
    lines.append(f"  flushes              {stats.flushes:>14,}")
    if machine.exits_by_reason:
        exits = ", ".join(f"{reason} {count:,}" for reason, count in sorted(machine.exits_by_reason.items()))
        lines.append(f"  monitor exits        {exits}")
    if machine.lift_errors:
        lines.append(f"  lifter errors        {len(machine.lift_errors)} (first: {machine.lift_errors[0]})")
    return "\n".join(lines)


def screen_report(machine) -> str:  # type: ignore[no-untyped-def]
    """The VGA text screen, framed."""
    text = machine.platform.screen_text()
    rule = "+" + "-" * 80 + "+"
    lines = [rule] + [f"|{line:<80}|" for line in text.splitlines()] + [rule]
    return "\n".join(lines)
