"""Human-readable reports: how a run ended, and what it cost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbt.cpu.state import Slot

if TYPE_CHECKING:
    from dbt.cache import TranslatedBlock
    from dbt.session import RunResult
    from dbt.vmm.machine import Machine


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
    resets = f" and {machine.reboots:,} reset{'s' if machine.reboots > 1 else ''}" if machine.reboots else ""
    lines.append(f"  after {machine.icount:,} instructions{resets}")
    registers = machine.registers()
    general = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
    lines.append("  " + "  ".join(f"{name}={registers[name]:08x}" for name in general[:4]))
    lines.append("  " + "  ".join(f"{name}={registers[name]:08x}" for name in general[4:]))
    lines.append(f"  eflags={registers['eflags']:08x}  " + "  ".join(
        f"{name}={registers[name]:04x}" for name in ("cs", "ss", "ds", "es", "fs", "gs")))
    lines.append("  " + "  ".join(f"{name}={registers[name]:08x}" for name in ("cr0", "cr2", "cr3", "cr4")))
    return "\n".join(lines)


TOP_BLOCKS = 10


def stats_report(result: RunResult) -> str:
    """What the run cost: the translation cache, the hottest blocks, monitor
    exits and traps, and where the wall time went."""
    sections = [_cache_section(result), _hot_tier_section(result), _time_section(result),
                _hot_blocks_section(result)]
    sections += [_exits_section(result.machine), _traps_section(result.machine)]
    return "\n".join(line for section in sections for line in section)


def _cache_section(result: RunResult) -> list[str]:
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
    lines.append(f"  blocks translated    {stats.translated:>14,}")
    lines.append(f"  blocks executed      {executions:>14,}")
    lines.append(f"  chained transitions  {chained:>14,}   ({100 * chained / transitions if transitions else 0:.2f}% of {transitions:,})")
    lines.append(f"  look-ups             {stats.lookups:>14,}   (jump cache {stats.jump_cache_hits:,}, table {stats.table_hits:,})")
    lines.append(f"  links made           {stats.links_made:>14,}")
    lines.append(f"  invalidations        {stats.invalidations:>14,}   (code writes {stats.code_writes:,})")
    lines.append(f"  flushes              {stats.flushes:>14,}")
    if machine.lift_errors:
        lines.append(f"  lifter errors        {len(machine.lift_errors)} (first: {machine.lift_errors[0]})")
    return lines


def _hot_tier_section(result: RunResult) -> list[str]:
    """The hot tier: what ran natively and how often control stayed native
    from one region to the next."""
    jit = result.machine.jit
    if jit is None:
        return ["  hot tier             off"]
    insns = result.machine.icount
    transitions = jit.native_transitions
    returns = jit.native_entries
    lines = ["  hot tier"]
    lines.append(f"    regions compiled   {len(jit.regions):>14,}   ({jit.policy}, threshold {jit.threshold})")
    if jit.worker_error is not None:
        lines.append(f"    compile worker     none ({jit.worker_error}; the monitor compiled instead)")
    if jit.background:
        lines.append(f"    compile worker     {jit.worker_seconds:>12.3f} s   "
                     "(IR building, optimizing and code generation in a second process, beside the run)")
    if jit.code_cache is not None:
        cache = jit.code_cache
        lines.append(f"    code cache         {cache.hits:>9,} hits   ({cache.misses:,} misses, compiled and kept; "
                     f"in {cache.directory})")
    lines.append(f"    native instructions{jit.native_insns:>14,}   ({100 * jit.native_insns / insns if insns else 0:.1f}% of the run)")
    lines.append(f"    native block runs  {jit.native_block_runs:>14,}   ({100 * jit.stayed_native:.2f}% reached from "
                 f"native code; {returns:,} entries from Python, {jit.native_lookups_missed:,} to code not compiled)")
    lines.append(f"    native transitions {transitions:>14,}   (from one region to another through the native table)")
    if jit.native_served:
        lines.append(f"    served in place    {jit.native_served:>14,}   (monitor exits after which native code went on)")
    if jit.native_republished:
        lines.append(f"    table misses       {jit.native_republished:>14,}   "
                     "(compiled blocks the dispatcher missed and had published)")
    mmu = result.machine.mmu
    if mmu.native_fills:
        lines.append(f"    page walks         {mmu.native_fills:>14,}   "
                     f"(TLB misses of compiled loads filled in native code; {mmu.tlb_misses:,} went to the monitor)")
    if jit.native_seconds:
        lines.append(f"    native speed       {jit.native_insns / jit.native_seconds / 1e6:>14,.0f} MIPS")
    return lines


def _time_section(result: RunResult) -> list[str]:
    """Wall time split into translating (decode, lift, cold-tier compile),
    compiling (the hot tier) and executing (everything else)."""
    machine = result.machine
    wall = result.wall_seconds
    executing = max(wall - machine.translate_seconds - machine.compile_seconds, 0.0)
    lines = ["  time"]
    for label, seconds in (("translating", machine.translate_seconds),
                           ("compiling (hot tier)", machine.compile_seconds),
                           ("executing", executing)):
        share = 100 * seconds / wall if wall else 0.0
        lines.append(f"    {label:<22} {seconds:>10.3f} s  {share:>5.1f}%")
    return lines


def shortest_exit_insns(block: TranslatedBlock) -> int:
    """The fewest instructions an exit of the block retires.  Exits retiring
    none (an entry into the hot tier's native code) do not count."""
    return min((n for n in block.exit_insns if n), default=block.insn_count)


def leaves_early(block: TranslatedBlock) -> bool:
    """Whether an exit retires fewer instructions than the block holds (a REP
    iteration leaves after one), which makes ``retired`` a lower bound."""
    return shortest_exit_insns(block) < block.insn_count


def retired(block: TranslatedBlock) -> int:
    """The instructions the block retired, from its execution count: each
    execution retired the whole block, or for a block that can leave early
    at least its shortest exit's instructions (exact for a REP loop's
    iterations; the run's per-exit counts are not kept)."""
    return block.executions * shortest_exit_insns(block)


def hot_blocks(machine: Machine, count: int = TOP_BLOCKS) -> list[TranslatedBlock]:
    """The blocks in the cache that retired the most instructions."""
    return sorted(machine.cache.blocks(), key=lambda b: (-retired(b), b.pc))[:count]


def _hot_blocks_section(result: RunResult) -> list[str]:
    machine = result.machine
    blocks = [b for b in hot_blocks(machine) if b.executions]
    if not blocks:
        return []
    total = machine.icount
    lines = [f"  top {len(blocks)} blocks by retired instructions (executions x instructions)",
             f"    {'address':<10}  {'executions':>12}  {'insns':>5}  {'retired':>12}  {'share':>6}"]
    bounds = False
    for block in blocks:
        share = 100 * retired(block) / total if total else 0.0
        early = leaves_early(block)
        bounds |= early
        lines.append(f"    {block.pc:#010x}  {block.executions:>12,}  {block.insn_count:>5}  "
                     f"{retired(block):>12,}  {share:>5.1f}%" + ("  at least" if early else ""))
    if bounds:
        lines.append("    (at least: the block can leave early, as a REP iteration does; counted by its shortest exit)")
    return lines


def _exits_section(machine: Machine) -> list[str]:
    exits = machine.exits_by_reason
    if not exits:
        return []
    lines = [f"  monitor exits        {sum(exits.values()):>14,}"]
    width = max(19, *(len(reason) for reason in exits))  # counts under the total when they fit
    for reason, count in sorted(exits.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"    {reason:<{width}}  {count:>12,}")
    return lines


def _traps_section(machine: Machine) -> list[str]:
    traps = machine.traps
    if not traps:
        return []
    lines = [f"  traps                {sum(traps.values()):>14,}"]
    width = max(len(reason) for reason, _ in traps)
    for (reason, mnemonic), count in sorted(traps.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"    {reason:<{width}}  {mnemonic:<8}  {count:>12,}")
    return lines


def screen_report(machine) -> str:  # type: ignore[no-untyped-def]
    """The VGA text screen, framed."""
    text = machine.platform.screen_text()
    rule = "+" + "-" * 80 + "+"
    lines = [rule] + [f"|{line:<80}|" for line in text.splitlines()] + [rule]
    return "\n".join(lines)
