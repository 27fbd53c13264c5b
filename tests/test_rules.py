"""translator_rules/: loaded, validated, complete, and in control of the translation."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dbt.rules import OPERATIONS, RuleError, load_rules, rules_directory
from dbt.session import RunOptions, run_guest

# Every IA-32 privileged instruction, and Robin and Irvine's sensitive
# unprivileged ones: each must have a rule.
PRIVILEGED = ["lgdt", "lidt", "lldt", "ltr", "mov", "clts", "lmsw", "hlt", "invlpg", "invd",
              "wbinvd", "rdmsr", "wrmsr", "sysexit", "cli", "sti", "in", "out", "insb", "outsb"]
SENSITIVE = ["sgdt", "sidt", "sldt", "smsw", "str", "pushf", "popf", "lar", "lsl", "verr", "verw",
             "push", "pop", "lcall", "ljmp", "retf", "int", "iret"]


def test_every_rule_file_loads_and_is_valid() -> None:
    rules = load_rules()
    assert len(rules) >= 30
    for rule in rules:
        assert rule.bt in OPERATIONS
        assert rule.sensitive


@pytest.mark.parametrize("mnemonic", PRIVILEGED + SENSITIVE)
def test_the_privileged_and_sensitive_instructions_have_rules(mnemonic: str) -> None:
    covered = {m for rule in load_rules() for m in rule.mnemonics}
    assert mnemonic in covered


def _corrupted(tmp_path: Path, file: str, old: str, new: str) -> Path:
    directory = tmp_path / "rules"
    shutil.copytree(rules_directory(), directory)
    path = directory / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return directory


@pytest.mark.parametrize("file, old, new, message", [
    ("io.toml", 'bt = "virtual-if-clear"', 'bt = "make-it-fast"', "rule 'cli': bt 'make-it-fast' is not one of"),
    ("io.toml", 'trap = "emulate"', 'trap = "ignore"', "rule 'cli': trap 'ignore' is not one of"),
    ("io.toml", 'mnemonics = ["cli"]', 'mnemonics = ["clix"]', "rule 'cli': 'clix' is not an x86 instruction"),
    ("io.toml", 'class = "io"', 'klass = "io"', "rule 'cli': unknown field(s) klass"),
    ("io.toml", 'name = "sti"', 'name = "cli"', "rule 'cli': the name is also used in io.toml"),
    ("sensitive.toml", '[[rule]]\nname = "sgdt"', '[[rule]\nname = "sgdt"', "sensitive.toml: not valid TOML"),
    ("privileged.toml",
     'sensitive = "stops the processor; the monitor must keep running and wake the guest on its interrupts"',
     'sensitive = ""', "rule 'hlt': sensitive must be a non-empty string"),
])
def test_a_corrupted_rule_is_a_clear_error(tmp_path: Path, file: str, old: str, new: str, message: str) -> None:
    directory = _corrupted(tmp_path, file, old, new)
    with pytest.raises(RuleError) as error:
        load_rules(directory)
    assert file in str(error.value)
    assert message in str(error.value)


def test_dbt_rules_prints_the_table() -> None:
    result = subprocess.run([sys.executable, "-m", "dbt", "rules"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "virtual-flags-push" in result.stdout and "sgdt" in result.stdout


def test_dbt_rules_reports_a_bad_file(tmp_path: Path) -> None:
    directory = _corrupted(tmp_path, "io.toml", 'trap = "emulate"', 'trap = "ignore"')
    result = subprocess.run([sys.executable, "-m", "dbt", "rules", "--directory", str(directory)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "io.toml: rule 'cli': trap 'ignore'" in result.stderr


def _sensitive(rules: Path | None = None) -> dict[str, str]:
    result = run_guest("sensitive", RunOptions(serial_sink=lambda data: None, mode="bt",
                                               rules_directory=str(rules) if rules else None))
    probes = {}
    for line in result.output.decode().splitlines():
        if line.startswith("probe "):
            name, _, seen = line[len("probe "):].partition(": ")
            probes[name] = seen
    return probes


def _without(tmp_path: Path, rule: str) -> Path:
    """A copy of the rules with one rule taken out."""
    directory = tmp_path / "rules"
    shutil.copytree(rules_directory(), directory)
    for path in directory.glob("*.toml"):
        blocks = path.read_text().split("[[rule]]")
        kept = [block for block in blocks if f'name = "{rule}"' not in block]
        path.write_text("[[rule]]".join(kept))
    return directory


def test_removing_a_rule_sends_its_instruction_down_the_trap_path(tmp_path: Path, built_guests) -> None:
    """Without its rule SGDT is no longer rewritten: in bt mode it runs on the
    real CPU like under trap-and-emulate, and shows the monitor's GDT."""
    with_rule = _sensitive()
    without = _sensitive(_without(tmp_path, "sgdt"))
    changed = {name for name in with_rule if with_rule[name] != without.get(name)}
    assert "sgdt" in changed
    assert "the GDT loaded with LGDT" in with_rule["sgdt"]
    assert "base ffc00000" in without["sgdt"]


def test_the_binary_translator_applies_the_rules(built_guests) -> None:
    result = run_guest("sensitive", RunOptions(serial_sink=lambda data: None, mode="bt"))
    fired = {rule for block in result.machine.cache.blocks() for _, rule, _ in block.artifacts["rules"]}
    assert {"cli", "sti", "pushf", "popf", "sgdt", "sidt", "lar", "mov-from-segment", "iret"} <= fired
    callouts = {reason for reason in result.machine.exits_by_reason if reason.startswith("callout:")}
    assert "callout:port-io" in callouts
