"""``dbt dump``: run a guest, then show its translated blocks stage by stage.

A block's facts are gathered once into plain data (``block_facts``); the
JSON output is that data and the text output is rendered from it, so the two
always carry the same facts.  Stages: ``guest`` (address, bytes, Capstone
text), ``rules`` (each sensitive instruction: the translator rule that fired
and what it became, or in trap and native modes the rule that would apply
and what happens instead), ``ir``, ``python`` (the cold tier's source),
``llvm`` and ``asm`` (the hot tier's, for compiled blocks).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from dbt.cache import TranslatedBlock
from dbt.lift.env import LIMIT_SHIFT, TranslationEnv
from dbt.report import leaves_early, retired
from dbt.rules import Rule, RuleSet
from dbt.session import RunOptions, RunResult, prepare
from dbt.trace import BlockRecorder, TracerGroup
from dbt.vmm.executor import run
from dbt.vmm.machine import Machine
from dbt.vmm.modes import Mode

STAGES = ("guest", "rules", "ir", "python", "llvm", "asm")
DEFAULT_HOT = 5
NOT_COMPILED = "not compiled (cold tier)"

# What an instruction a rule matches does when the translator left it alone:
# by the trap handler its rule names (translator_rules/README.md).
TRAP_EFFECTS = {
    "emulate": "faults when deprivileged; the monitor emulates it",
    "reflect": "traps; the monitor reflects it through the guest's IDT",
    "none": "does not fault when deprivileged: runs on the hardware, the guest can see the difference",
}

Facts = dict[str, Any]


# -- running and choosing --------------------------------------------------------------
def collect(guest: str, options: RunOptions) -> tuple[RunResult, list[TranslatedBlock]]:
    """Run the guest to its end; every block it translated, invalidated ones
    included.  The recorder only listens: the run is the same as without it."""
    recorder = BlockRecorder()
    options.tracer = TracerGroup(recorder, options.tracer) if options.tracer else recorder
    machine = prepare(guest, options)
    started = time.perf_counter()
    outcome = run(machine)
    return RunResult(outcome, machine, time.perf_counter() - started), recorder.blocks


def contains(block: TranslatedBlock, address: int) -> bool:
    info = block.artifacts["info"]
    spans = zip(info.addresses, info.lengths, strict=True)
    return any(start <= address < start + length for start, length in spans)


def is_sensitive(block: TranslatedBlock, rules: RuleSet) -> bool:
    """A rule fired in the block, or would have (trap and native modes, user code)."""
    return bool(block.artifacts["rules"]) or any(
        rules.match(insn) is not None for insn in block.artifacts["instructions"])


def select_blocks(blocks: list[TranslatedBlock], args: argparse.Namespace,
                  rules: RuleSet) -> list[TranslatedBlock]:
    """``--sensitive`` filters; then ``--pc``, ``--all`` (or ``--sensitive``
    alone) by address, or the ``--hot`` N hottest."""
    if args.sensitive:
        blocks = [b for b in blocks if is_sensitive(b, rules)]
    by_address = sorted(blocks, key=lambda b: (b.pc, b.flags, b.valid))
    if args.pc is not None:
        return [b for b in by_address if contains(b, args.pc)]
    if args.all or (args.sensitive and not args.hot):
        return by_address
    return sorted(blocks, key=lambda b: (-retired(b), b.pc))[: args.hot or DEFAULT_HOT]


# -- facts -----------------------------------------------------------------------------
def environment(flags: int) -> str:
    """The translation environment a block was made for, in words."""
    env = TranslationEnv(flags)
    mode = Mode(env.mode)
    words = [mode.name.lower(), f"cpl {env.cpl}"]
    if mode is not Mode.NATIVE:
        words.append(f"virtual cpl {env.vcpl}")
    words.append(f"{env.code_bits}-bit")
    words += [word for word, on in (("flat", env.flat), ("paging", env.paging),
                                    ("trap-handler emulation", env.emulate)) if on]
    if flags >> LIMIT_SHIFT:
        words.append(f"at most {env.max_insns} instruction{'s' if env.max_insns > 1 else ''}")
    return ", ".join(words)


def rule_effect(rule: Rule, applied: bool, env: TranslationEnv) -> str:
    kind = "callout" if rule.callout else "inline"
    if applied and env.emulate:
        return f"the trap handler emulated it as {rule.bt} ({kind})"
    if applied:
        return f"rewritten: {rule.bt} ({kind})"
    if env.mode == Mode.NATIVE:
        return "native mode: runs on the hardware at the guest's own privilege"
    if env.vcpl != 0:
        return f"guest user code (virtual cpl {env.vcpl}) is not rewritten: runs on the hardware"
    return f"{Mode(env.mode).name.lower()} mode: {TRAP_EFFECTS[rule.trap]}"


def rules_facts(block: TranslatedBlock, rules: RuleSet) -> list[Facts]:
    env = TranslationEnv(block.flags)
    fired = {address: name for address, name, _ in block.artifacts["rules"]}
    by_name = {rule.name: rule for rule in rules}
    facts = []
    for insn in block.artifacts["instructions"]:
        name = fired.get(insn.address)
        rule = by_name.get(name) if name else rules.match(insn)
        if rule is None:
            continue
        applied = name is not None
        facts.append({
            "address": f"{insn.address:#010x}", "instruction": insn.text, "rule": rule.name,
            "operation": rule.bt, "callout": rule.callout, "applied": applied,
            "effect": rule_effect(rule, applied, env),
        })
    return facts


def links_facts(block: TranslatedBlock) -> tuple[list[Facts], list[Facts]]:
    out = []
    for index, exit_ in enumerate(block.exits):
        target = block.links[index]
        out.append({
            "exit": index,
            "target": f"{exit_.target:#010x}" if exit_.target is not None else None,
            "reason": exit_.reason,
            "linked": target is not None,
        })
    incoming = [{"from": f"{source.pc:#010x}", "exit": index} for source, index in block.incoming]
    return out, incoming


def stage_facts(block: TranslatedBlock, stage: str, rules: RuleSet) -> Any:
    artifacts = block.artifacts
    if stage == "guest":
        return [{"address": f"{insn.address:#010x}", "bytes": insn.raw.hex(" "), "text": insn.text}
                for insn in artifacts["instructions"]]
    if stage == "rules":
        return rules_facts(block, rules)
    if stage == "ir":
        return artifacts["ir"].listing()
    if stage == "python":
        return artifacts["python"]
    return compiled_text(block, stage)


# Where the hot tier keeps each text: an artifact of its own, or the compiled
# region's attribute (made on request).
_COMPILED = {"llvm": ("llvm", "llvm_ir"), "asm": ("asm", "assembly")}


def compiled_text(block: TranslatedBlock, stage: str) -> str | None:
    """The hot tier's optimized LLVM IR or host assembly for the block, or
    None when it was not compiled (or its native code was dropped since)."""
    artifact, attribute = _COMPILED[stage]
    text = block.artifacts.get(artifact)
    if text is None and block.artifacts.get("region") is not None:
        text = getattr(block.artifacts["region"], attribute, None)
    return text or None


def block_facts(block: TranslatedBlock, stages: list[str], rules: RuleSet, total_insns: int,
                invalidations: int) -> Facts:
    links_out, links_in = links_facts(block)
    return {
        "pc": f"{block.pc:#010x}",
        "flags": f"{block.flags:#010x}",
        "environment": environment(block.flags),
        "instructions": block.insn_count,
        "executions": block.executions,
        "retired": retired(block),
        "retired_lower_bound": leaves_early(block),
        "share_percent": round(100 * retired(block) / total_insns, 1) if total_insns else 0.0,
        "tier": block.artifacts.get("tier", "cold"),
        "valid": block.valid,
        "invalidations": invalidations,
        "links_out": links_out,
        "links_in": links_in,
        "stages": {stage: stage_facts(block, stage, rules) for stage in stages},
    }


def run_facts(guest: str, result: RunResult, blocks: list[TranslatedBlock],
              shown: list[TranslatedBlock], stages: list[str]) -> Facts:
    machine: Machine = result.machine
    invalidated: dict[int, int] = {}
    for block in blocks:
        if not block.valid:
            invalidated[block.pc] = invalidated.get(block.pc, 0) + 1
    return {
        "guest": guest,
        "mode": machine.config.mode,
        "status": result.status,
        "outcome": result.outcome.message,
        "instructions": machine.icount,
        "blocks_translated": len(blocks),
        "blocks_valid": len(machine.cache),
        "blocks": [block_facts(block, stages, machine.rules, machine.icount, invalidated.get(block.pc, 0))
                   for block in shown],
    }


# -- text ------------------------------------------------------------------------------
class Palette:
    """ANSI colors, or none (piped output, NO_COLOR)."""

    CODES = {"title": "1", "address": "36", "mnemonic": "1", "rule": "33", "callout": "35",
             "dim": "2", "warn": "31"}

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, role: str, text: str) -> str:
        return f"\x1b[{self.CODES[role]}m{text}\x1b[0m" if self.enabled and text else text


def wants_color(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Color on a terminal, unless NO_COLOR is set (https://no-color.org)."""
    environ = os.environ if environ is None else environ
    return not environ.get("NO_COLOR") and stream.isatty()


def render_run(facts: Facts, color: Palette) -> str:
    header = (f"{facts['guest']}: {facts['mode']} mode, {facts['instructions']:,} instructions, "
              f"status {facts['status']} ({facts['outcome'] or 'guest exit'}); "
              f"{facts['blocks_translated']:,} blocks translated, {facts['blocks_valid']:,} in the cache; "
              f"{len(facts['blocks'])} shown")
    return "\n\n".join([color("dim", header)] + [render_block(block, color) for block in facts["blocks"]])


def render_block(block: Facts, color: Palette) -> str:
    state = "" if block["valid"] else "  " + color("warn", "invalidated")
    lines = [color("title", f"block {block['pc']}") + f"  {block['environment']}  (flags {block['flags']})"
             + state]
    lines.append(f"  executions {block['executions']:,}   instructions {block['instructions']}   "
                 f"retired {'at least ' if block['retired_lower_bound'] else ''}{block['retired']:,} "
                 f"({block['share_percent']}% of the run)   "
                 f"tier {block['tier']}   invalidations {block['invalidations']}")
    exits = [f"exit {link['exit']} -> " + (color("address", link["target"]) if link["target"] else
                                          f"monitor ({link['reason']})" if link["reason"] else "indirect")
             + (" (linked)" if link["linked"] else "") for link in block["links_out"]]
    lines.append("  links out  " + ("; ".join(exits) or "none"))
    incoming = [f"{color('address', link['from'])} exit {link['exit']}" for link in block["links_in"]]
    lines.append("  links in   " + ("; ".join(incoming) or "none"))
    for stage, value in block["stages"].items():
        lines.append(f"  {stage}:")
        lines += ["    " + line for line in render_stage(stage, value, color)]
    return "\n".join(lines)


def render_stage(stage: str, value: Any, color: Palette) -> list[str]:
    if stage == "guest":
        width = max((len(insn["bytes"]) for insn in value), default=0)
        return [f"{color('address', insn['address'])}  {insn['bytes']:<{width}}  "
                + _instruction(insn["text"], color) for insn in value]
    if stage == "rules":
        if not value:
            return ["(no sensitive instruction)"]
        width = max(len(fact["instruction"]) for fact in value)
        name_width = max(len(fact["rule"]) for fact in value)
        lines = []
        for fact in value:
            verdict = "" if fact["applied"] else "would apply; "
            role = "callout" if fact["callout"] else "rule"
            lines.append(f"{color('address', fact['address'])}  {fact['instruction']:<{width}}  "
                         f"rule {color('rule', fact['rule'].ljust(name_width))}  {verdict}"
                         + color(role, fact["effect"]))
        return lines
    if value is None:
        return [NOT_COMPILED]
    return str(value).splitlines()


def _instruction(text: str, color: Palette) -> str:
    mnemonic, _, operands = text.partition(" ")
    return f"{color('mnemonic', mnemonic)} {operands}".rstrip()


# -- the command -----------------------------------------------------------------------
def parse_stages(text: str) -> list[str]:
    from dbt.cli import UsageError

    stages = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        what = f"unknown stage(s) {', '.join(unknown)}" if unknown else "no stage given"
        raise UsageError(f"--stages: {what}; choose from {', '.join(STAGES)}")
    return stages


def gather(args: argparse.Namespace) -> tuple[RunResult, list[TranslatedBlock], list[TranslatedBlock]]:
    """Run the guest as ``dbt dump`` does: the run, every block it
    translated, and the blocks the options select."""
    from dbt.cli import run_options

    options = run_options(args)
    options.serial_sink = lambda data: None  # the dump is the output
    result, blocks = collect(args.guest, options)
    return result, blocks, select_blocks(blocks, args, result.machine.rules)


def dump_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    stages = parse_stages(args.stages)
    result, blocks, shown = gather(args)
    if not shown:
        print("dbt: no translated block matches", file=sys.stderr)
        return 1
    facts = run_facts(args.guest, result, blocks, shown, stages)
    if args.format == "json":
        json.dump(facts, out, indent=2)
        out.write("\n")
    else:
        print(render_run(facts, Palette(wants_color(out))), file=out)
    return 0
