"""``dbt dump``: each stage shows what the translator made of a shipped guest,
text and JSON carry the same facts, and dumping leaves the run unchanged."""

from __future__ import annotations

import ast
import io
import json
import re
import subprocess
import sys

import pytest

from dbt.cli import build_parser
from dbt.dump import (
    NOT_COMPILED,
    Palette,
    dump_command,
    gather,
    render_run,
    run_facts,
    select_blocks,
    wants_color,
)
from dbt.lift.env import TranslationEnv
from dbt.report import retired
from dbt.rules import default_rules
from dbt.session import RunOptions, run_guest

DBT = [sys.executable, "-m", "dbt"]


def dbt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*DBT, *args], capture_output=True, timeout=300)


def dump_args(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(["dump", *argv])


def facts_of(*argv: str) -> dict:
    args = dump_args(*argv)
    result, blocks, shown = gather(args)
    return run_facts(args.guest, result, blocks, shown, args.stages.split(","))


@pytest.fixture(scope="module")
def sensitive_bt(built_guests):  # type: ignore[no-untyped-def]
    """The sensitive guest in bt mode: (run, every block, the sensitive ones)."""
    return gather(dump_args("sensitive", "--sensitive"))


@pytest.fixture(scope="module")
def loop_hot(built_guests) -> dict:
    """The loop guest's xorshift block (its hottest, though execution counts
    may stop once the hot tier compiles it): found by its code."""
    facts = facts_of("loop", "--all", "--stages", "guest,rules,ir,python,llvm,asm")
    [block] = [block for block in facts["blocks"] if block["valid"] and any(
        insn["text"] == "shl ebx, 0xd" for insn in block["stages"]["guest"][:2])]
    return {**facts, "blocks": [block]}


# -- stages ----------------------------------------------------------------------------
def test_rules_stage_names_the_rule_fired_for_each_sensitive_instruction(sensitive_bt) -> None:
    result, blocks, shown = sensitive_bt
    rules = default_rules()
    facts = run_facts("sensitive", result, blocks, shown, ["guest", "rules"])
    assert shown and len(facts["blocks"]) == len(shown)
    checked = 0
    for block, block_facts in zip(shown, facts["blocks"], strict=True):
        by_address = {fact["address"]: fact for fact in block_facts["stages"]["rules"]}
        for insn in block.artifacts["instructions"]:
            rule = rules.match(insn)
            if rule is None:
                continue
            fact = by_address[f"{insn.address:#010x}"]
            assert (fact["rule"], fact["operation"], fact["instruction"]) == (rule.name, rule.bt, insn.text)
            if TranslationEnv(block.flags).vcpl == 0:
                assert fact["applied"], fact  # bt rewrites every rule match in kernel code
            checked += 1
    assert checked >= 20
    text = render_run(facts, Palette(False))
    assert re.search(r"pushfd\s+rule pushf\s+rewritten: virtual-flags-push \(inline\)", text)
    assert re.search(r"popfd\s+rule popf\s+rewritten: virtual-flags-pop \(callout\)", text)
    assert re.search(r"cli\s+rule cli\s+rewritten: virtual-if-clear \(inline\)", text)


def unapplied_rules(facts: dict) -> dict[str, list[dict]]:
    """The rules stage's entries outside trap-handler emulations, by rule."""
    found: dict[str, list[dict]] = {}
    for block in facts["blocks"]:
        if "emulation" not in block["environment"]:
            for fact in block["stages"]["rules"]:
                found.setdefault(fact["rule"], []).append(fact)
    return found


def test_rules_stage_in_trap_mode_says_what_happens_instead(built_guests) -> None:
    facts = facts_of("sensitive", "--mode", "trap", "--sensitive", "--stages", "rules")
    found = unapplied_rules(facts)
    assert not any(fact["applied"] for facts in found.values() for fact in facts)
    expected = {
        "pushf": "trap mode: does not fault when deprivileged: runs on the hardware",
        "out": "trap mode: faults when deprivileged; the monitor emulates it",
        "cli": "trap mode: faults when deprivileged; the monitor emulates it",
    }
    for rule, effect in expected.items():
        assert found[rule] and all(fact["effect"].startswith(effect) for fact in found[rule]), rule
    text = render_run(facts, Palette(False))
    assert re.search(r"pushfd\s+rule pushf\s+would apply; " + re.escape(expected["pushf"]), text)


def test_rules_stage_in_native_mode_says_the_hardware_runs_it(built_guests) -> None:
    facts = facts_of("hello", "--mode", "native", "--sensitive", "--stages", "rules")
    found = unapplied_rules(facts)
    assert found["out"]
    assert all(not fact["applied"] and fact["effect"].startswith("native mode: runs on the hardware")
               for facts in found.values() for fact in facts)


def test_trap_handler_emulation_blocks_show_the_rule_applied(built_guests) -> None:
    facts = facts_of("hello", "--mode", "trap", "--sensitive", "--stages", "rules")
    emulations = [block for block in facts["blocks"] if "trap-handler emulation" in block["environment"]]
    assert emulations
    for block in emulations:
        [fact] = block["stages"]["rules"]
        assert fact["applied"] and fact["effect"].startswith("the trap handler emulated it as")


def test_guest_stage_lists_address_bytes_and_text(loop_hot) -> None:
    [block] = loop_hot["blocks"]
    guest = block["stages"]["guest"]
    assert len(guest) == block["instructions"] >= 2
    assert guest[0]["address"] == block["pc"]
    for insn, following in zip(guest, guest[1:], strict=False):
        size = len(bytes.fromhex(insn["bytes"]))
        assert int(insn["address"], 16) + size == int(following["address"], 16)
    assert guest[-1]["text"].startswith("j")  # the hot loop block ends in its branch
    text = render_run(loop_hot, Palette(False))
    for insn in guest:
        assert re.search(rf"{insn['address']}\s+{insn['bytes']}\s+{re.escape(insn['text'])}$", text, re.M)


def test_ir_stage_holds_the_lifted_operations(loop_hot) -> None:
    [block] = loop_hot["blocks"]
    ir = block["stages"]["ir"]
    # The xorshift block: shifts and xors, ending in a conditional exit.
    for operation in (" = xor ", " = shl ", "exit_if ", "exit 0x"):
        assert operation in ir, operation
    markers = re.findall(r"^---- (0x[0-9a-f]{8}) insn", ir, re.M)
    assert markers == [insn["address"] for insn in block["stages"]["guest"]]


def test_python_stage_is_the_cold_tier_source(loop_hot) -> None:
    [block] = loop_hot["blocks"]
    source = block["stages"]["python"]
    assert f"def block_{int(block['pc'], 16):08x}" in source
    ast.parse(source)


def test_llvm_and_asm_stages_show_the_hot_tier_or_say_not_compiled(built_guests) -> None:
    facts = facts_of("loop", "--all", "--stages", "llvm,asm")
    assert any(block["tier"] == "cold" for block in facts["blocks"])
    for block in facts["blocks"]:
        text = render_run({**facts, "blocks": [block]}, Palette(False))
        for stage in ("llvm", "asm"):
            value = block["stages"][stage]
            if block["tier"].startswith("hot"):
                assert value and value.strip(), (block["pc"], stage)
            if value is None:
                assert f"  {stage}:\n    {NOT_COMPILED}\n" in text + "\n"
            else:
                assert value.splitlines()[0] in text


def test_a_dump_compiles_in_the_monitor_unless_told_otherwise(built_guests) -> None:
    """A dump is for reading what the hot tier made: by default it compiles
    in the foreground, so a short run shows its hottest block compiled
    every time, however long a worker would have taken on a loaded host."""
    assert dump_args("loop").jit_compile == "foreground"
    assert dump_args("loop", "--jit-compile", "background").jit_compile == "background"
    assert build_parser().parse_args(["run", "loop"]).jit_compile == "background"
    [block] = facts_of("loop", "--hot", "1", "--stages", "asm")["blocks"]
    assert block["tier"] == "hot" and block["stages"]["asm"], block["tier"]


def test_block_facts_give_counts_tier_and_links(loop_hot) -> None:
    [block] = loop_hot["blocks"]
    assert block["executions"] >= 50  # at least until the hot tier takes it
    assert block["retired"] == block["executions"] * block["instructions"]
    assert block["share_percent"] == round(100 * block["retired"] / loop_hot["instructions"], 1)
    assert block["tier"] in ("cold", "queued", "hot", "hot (inside a region)")
    # Taken and not taken (the hot tier may add an exit of its own into native code).
    targets = [link["target"] for link in block["links_out"] if link["target"]]
    assert len(targets) == 2
    assert block["links_in"]
    assert block["valid"] and block["invalidations"] == 0


# -- selection -------------------------------------------------------------------------
def test_selection_by_pc_includes_blocks_containing_it(sensitive_bt, loop_hot) -> None:
    [block] = loop_hot["blocks"]
    inside = block["stages"]["guest"][2]["address"]
    facts = facts_of("loop", "--pc", inside, "--stages", "guest")
    assert block["pc"] in [b["pc"] for b in facts["blocks"]]
    for found in facts["blocks"]:
        assert inside in [insn["address"] for insn in found["stages"]["guest"]]


def test_selection_hot_all_and_sensitive(sensitive_bt) -> None:
    result, blocks, shown = sensitive_bt
    rules = default_rules()
    assert all(b.artifacts["rules"] or any(rules.match(i) for i in b.artifacts["instructions"])
               for b in shown)
    assert {b.pc for b in blocks if b.artifacts["rules"]} <= {b.pc for b in shown}
    assert [b.pc for b in shown] == sorted(b.pc for b in shown)
    hot = select_blocks(blocks, dump_args("sensitive", "--hot", "4"), rules)
    assert len(hot) == 4
    counts = [retired(b) for b in hot]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == max(retired(b) for b in blocks)


def test_selection_options_exclude_each_other() -> None:
    result = dbt("dump", "loop", "--hot", "1", "--all")
    assert result.returncode == 2 and b"not allowed with" in result.stderr


def test_unknown_stage_is_a_usage_error_listing_the_stages() -> None:
    result = dbt("dump", "loop", "--stages", "guest,bogus")
    assert result.returncode == 2
    assert b"bogus" in result.stderr and b"guest, rules, ir, python, llvm, asm" in result.stderr


# -- formats ---------------------------------------------------------------------------
def test_json_and_text_carry_the_same_facts(built_guests) -> None:
    common = ("dump", "hello", "--sensitive", "--hot", "6", "--stages", "guest,rules,ir")
    text = dbt(*common)
    data = dbt(*common, "--format", "json")
    assert text.returncode == data.returncode == 0, text.stderr + data.stderr
    facts = json.loads(data.stdout)
    output = text.stdout.decode()
    assert "\x1b[" not in output  # piped: no color
    assert render_run(facts, Palette(False)) + "\n" == output
    # And the facts a reader looks for, read back from the text.
    headers = re.findall(r"^block (0x[0-9a-f]{8}) .*\n  executions ([\d,]+)   instructions (\d+)", output, re.M)
    assert headers == [(b["pc"], f"{b['executions']:,}", str(b["instructions"])) for b in facts["blocks"]]
    rules_in_text = re.findall(r"^    (0x[0-9a-f]{8})  .*?  rule (\S+)", output, re.M)
    assert rules_in_text == [(f["address"], f["rule"]) for b in facts["blocks"] for f in b["stages"]["rules"]]
    assert rules_in_text


def test_color_only_on_a_terminal_without_no_color() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert wants_color(Terminal(), {}) and not wants_color(Terminal(), {"NO_COLOR": "1"})
    assert not wants_color(io.StringIO(), {})
    assert Palette(True)("rule", "pushf") == "\x1b[33mpushf\x1b[0m"
    assert Palette(False)("rule", "pushf") == "pushf"


# -- no effect on the guest --------------------------------------------------------------
@pytest.mark.parametrize("guest", ["hello", "sensitive"])
def test_dumping_does_not_change_the_run(built_guests, sensitive_bt, guest: str) -> None:
    plain = run_guest(guest, RunOptions(serial_sink=lambda data: None))
    dumped = sensitive_bt[0] if guest == "sensitive" else gather(dump_args(guest, "--all"))[0]
    assert dumped.output == plain.output == built_guests[guest].expected_output
    assert (dumped.status, dumped.insns) == (plain.status, plain.insns)


def test_dump_command_writes_to_the_stream_it_is_given(built_guests) -> None:
    out = io.StringIO()
    assert dump_command(dump_args("hello", "--hot", "1", "--format", "json"), out) == 0
    assert json.loads(out.getvalue())["guest"] == "hello"


def test_invalidated_translations_stay_visible(built_guests) -> None:
    args = dump_args("hello", "--all", "--stages", "guest")
    result, blocks, _ = gather(args)
    old = max(blocks, key=lambda b: b.executions)
    result.machine.cache.invalidate(old)  # as a store to its code would
    result.machine.translate(old.pc, old.flags)  # recorded like any translation
    shown = select_blocks(blocks, args, result.machine.rules)
    facts = run_facts("hello", result, blocks, shown, ["guest"])
    both = [block for block in facts["blocks"] if block["pc"] == f"{old.pc:#010x}"]
    assert [block["valid"] for block in both] == [False, True]  # the older translation first
    assert all(block["invalidations"] == 1 for block in both)
    assert re.search(rf"^block {both[0]['pc']} .*  invalidated$", render_run(facts, Palette(False)), re.M)
