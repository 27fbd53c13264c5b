"""``dbt dump``: run a guest, then show its translated blocks stage by stage."""

from __future__ import annotations

import argparse
import sys

from dbt.cache import TranslatedBlock
from dbt.cli import run_options
from dbt.session import prepare
from dbt.vmm.executor import run

STAGES = ("guest", "ir", "python")


def select_blocks(blocks: list[TranslatedBlock], args: argparse.Namespace) -> list[TranslatedBlock]:
    if args.pc is not None:
        return [b for b in blocks if b.pc == args.pc or any(
            a == args.pc for a in b.artifacts["info"].addresses)]
    ranked = sorted(blocks, key=lambda b: (-b.executions * b.insn_count, b.pc))
    if args.all:
        return sorted(blocks, key=lambda b: b.pc)
    return ranked[: args.hot or 5]


def render_block(block: TranslatedBlock, stages: list[str]) -> str:
    lines = [f"block {block.pc:#010x}  ({block.insn_count} instructions, "
             f"executed {block.executions:,} times, {sum(1 for x in block.links if x)} of "
             f"{len(block.links)} exits linked, {len(block.incoming)} links in)"]
    if "guest" in stages:
        lines.append("  guest:")
        for insn in block.artifacts["instructions"]:
            lines.append(f"    {insn.address:#010x}  {insn.raw.hex(' '):<24}  {insn.text}")
    if "ir" in stages:
        lines.append("  ir:")
        lines += ["    " + line for line in block.artifacts["ir"].listing().splitlines()]
    if "python" in stages:
        lines.append("  python:")
        lines += ["    " + line for line in block.artifacts["python"].splitlines()]
    return "\n".join(lines)


def dump_command(args: argparse.Namespace) -> int:
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        from dbt.cli import UsageError

        raise UsageError(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    options = run_options(args)
    options.serial_sink = lambda data: None  # the dump is the output
    machine = prepare(args.guest, options)
    run(machine)
    blocks = select_blocks(machine.cache.blocks(), args)
    if not blocks:
        print("no translated block matches", file=sys.stderr)
        return 1
    print("\n\n".join(render_block(block, stages) for block in blocks))
    return 0
