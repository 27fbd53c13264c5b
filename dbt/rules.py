"""Translator rules: which instructions are privileged or sensitive, why,
what the binary translator rewrites them into, and which trap handler the
trap-and-emulate monitor uses for them.

The rules are data, in ``translator_rules/*.toml`` (see its README for the
schema and the vocabulary).  They are validated when loaded: a bad rule is a
``RuleError`` naming the file, the rule and the problem.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from capstone import x86_const

from dbt.decode import Instruction, OperandKind

CLASSES = ("privileged", "sensitive-unprivileged", "io", "control-transfer")

INLINE_OPERATIONS = (
    "identity", "virtual-if-clear", "virtual-flags-push", "virtual-selector-read",
    "shadow-table-register-read", "shadow-control-read", "virtual-descriptor-query", "nothing",
)
CALLOUT_OPERATIONS = (
    "virtual-if-set", "virtual-flags-pop", "load-descriptor-table", "load-system-segment",
    "write-control-register", "debug-register", "invalidate-page", "model-specific-register",
    "port-io", "halt", "interrupt-return", "software-interrupt", "far-transfer",
    "load-stack-segment", "fast-system-call",
)
OPERATIONS = INLINE_OPERATIONS + CALLOUT_OPERATIONS
TRAP_HANDLERS = ("emulate", "reflect", "none")
OPERAND_KINDS = (
    "any", "control-register-destination", "control-register-source", "debug-register",
    "code-or-stack-segment-source", "data-segment-source", "stack-segment-destination",
    "data-segment-destination", "far",
)
FIELDS = {"name", "mnemonics", "operands", "class", "sensitive", "bt", "trap"}
REQUIRED = FIELDS - {"operands"}

_CODE_OR_STACK = ("cs", "ss")
_DATA_SEGMENTS = ("ds", "es", "fs", "gs")


class RuleError(Exception):
    """A rule file that cannot be used; the message names file, rule and problem."""


@dataclass(frozen=True)
class Rule:
    name: str
    mnemonics: tuple[str, ...]
    operands: str
    kind: str  # the rule's class
    sensitive: str
    bt: str
    trap: str
    source: str  # the file it came from

    @property
    def callout(self) -> bool:
        return self.bt in CALLOUT_OPERATIONS

    def matches(self, insn: Instruction) -> bool:
        return insn.mnemonic in self.mnemonics and _operands_match(self.operands, insn)


def _register(insn: Instruction, index: int) -> str | None:
    if len(insn.operands) > index and insn.operands[index].kind is OperandKind.REG:
        return insn.operands[index].reg
    return None


def _operands_match(kind: str, insn: Instruction) -> bool:
    first, second = _register(insn, 0), _register(insn, 1)
    name = insn.mnemonic
    if kind == "any":
        return True
    if kind == "control-register-destination":
        return bool(first and first.startswith("cr"))
    if kind == "control-register-source":
        return bool(second and second.startswith("cr"))
    if kind == "debug-register":
        return bool((first and first.startswith("dr")) or (second and second.startswith("dr")))
    if kind == "code-or-stack-segment-source":
        return (name == "push" and first in _CODE_OR_STACK) or (name == "mov" and second in _CODE_OR_STACK)
    if kind == "data-segment-source":
        return (name == "push" and first in _DATA_SEGMENTS) or (name == "mov" and second in _DATA_SEGMENTS)
    if kind == "stack-segment-destination":
        return name == "lss" or (name in ("mov", "pop") and first == "ss")
    if kind == "data-segment-destination":
        return name in ("lds", "les", "lfs", "lgs") or (name in ("mov", "pop") and first in _DATA_SEGMENTS)
    if kind == "far":
        if name in ("lcall", "ljmp"):
            return True
        return insn.opcode == b"\xff" and (insn.modrm >> 3) & 7 in (3, 5)
    raise AssertionError(kind)


def _known_mnemonic(mnemonic: str) -> bool:
    return hasattr(x86_const, f"X86_INS_{mnemonic.upper()}")


def parse_rule(entry: object, source: str, position: int) -> Rule:
    label = f"{source}: rule #{position + 1}"
    if not isinstance(entry, dict):
        raise RuleError(f"{label}: a rule must be a table ([[rule]])")
    name = entry.get("name")
    if isinstance(name, str) and name:
        label = f"{source}: rule {name!r}"
    unknown = set(entry) - FIELDS
    if unknown:
        raise RuleError(f"{label}: unknown field(s) {', '.join(sorted(unknown))}")
    missing = REQUIRED - set(entry)
    if missing:
        raise RuleError(f"{label}: missing field(s) {', '.join(sorted(missing))}")
    for field in ("name", "class", "sensitive", "bt", "trap"):
        if not isinstance(entry[field], str) or not entry[field].strip():
            raise RuleError(f"{label}: {field} must be a non-empty string")
    mnemonics = entry["mnemonics"]
    if not isinstance(mnemonics, list) or not mnemonics or not all(isinstance(m, str) for m in mnemonics):
        raise RuleError(f"{label}: mnemonics must be a non-empty list of strings")
    for mnemonic in mnemonics:
        if not _known_mnemonic(mnemonic):
            raise RuleError(f"{label}: {mnemonic!r} is not an x86 instruction Capstone knows")
    operands = entry.get("operands", "any")
    checks = (("class", CLASSES), ("bt", OPERATIONS), ("trap", TRAP_HANDLERS))
    for field, allowed in checks:
        if entry[field] not in allowed:
            raise RuleError(f"{label}: {field} {entry[field]!r} is not one of: {', '.join(allowed)}")
    if operands not in OPERAND_KINDS:
        raise RuleError(f"{label}: operands {operands!r} is not one of: {', '.join(OPERAND_KINDS)}")
    return Rule(entry["name"], tuple(mnemonics), operands, entry["class"], entry["sensitive"].strip(),
                entry["bt"], entry["trap"], source)


def rules_directory() -> Path:
    override = os.environ.get("DBT_RULES_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "translator_rules"


class RuleSet:
    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self._by_mnemonic: dict[str, list[Rule]] = {}
        for rule in rules:
            for mnemonic in rule.mnemonics:
                self._by_mnemonic.setdefault(mnemonic, []).append(rule)

    def match(self, insn: Instruction) -> Rule | None:
        for rule in self._by_mnemonic.get(insn.mnemonic, ()):
            if rule.matches(insn):
                return rule
        return None

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.rules)


def load_rules(directory: Path | None = None) -> RuleSet:
    directory = directory or rules_directory()
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise RuleError(f"{directory}: no rule files (*.toml)")
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for path in files:
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise RuleError(f"{path.name}: not valid TOML: {error}") from None
        entries = data.get("rule")
        unexpected = set(data) - {"rule"}
        if unexpected:
            raise RuleError(f"{path.name}: unexpected top-level key(s) {', '.join(sorted(unexpected))}")
        if not isinstance(entries, list):
            raise RuleError(f"{path.name}: no [[rule]] entries")
        for position, entry in enumerate(entries):
            rule = parse_rule(entry, path.name, position)
            if rule.name in seen:
                raise RuleError(f"{path.name}: rule {rule.name!r}: the name is also used in {seen[rule.name]}")
            seen[rule.name] = path.name
            rules.append(rule)
    return RuleSet(rules)


@lru_cache(maxsize=4)
def default_rules(directory: str | None = None) -> RuleSet:
    return load_rules(Path(directory) if directory else None)


def rules_table(rules: RuleSet) -> str:
    rows = [("rule", "class", "bt rewrite", "trap handler", "instructions")]
    for rule in rules:
        rows.append((rule.name, rule.kind, rule.bt, rule.trap, " ".join(rule.mnemonics)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
