"""Re-run one differential case and print it in full.

    .venv/bin/python -m tests.difftest.replay FAMILY SEED INDEX [--steps]

``--steps`` also runs every prefix of the case (the first 1, 2, ...
instructions, where the code is straight-line) to show where the two
emulators part.
"""

from __future__ import annotations

import argparse
import sys

from . import semantics as S
from .families import generate
from .harness import GENERAL, Harness, describe, vector_name


def show_state(name: str, outcome) -> str:
    regs = " ".join(f"{n}={outcome.registers[n]:#010x}" for n in (*GENERAL, "eip"))
    return (f"  {name:8} exception={vector_name(outcome.exception)} eflags={outcome.eflags:#010x} "
            f"({S.flag_names(outcome.eflags)})\n           {regs}"
            + (f"\n           error: {outcome.error}" if outcome.error else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("family")
    parser.add_argument("seed", type=int)
    parser.add_argument("index", type=int)
    parser.add_argument("--steps", action="store_true", help="also run each prefix of the case")
    args = parser.parse_args(argv)
    case = generate(args.family, args.seed, args.index)
    harness = Harness()
    diffs, analysis, dbt, uni = harness.run_case(case)
    print(describe(case, diffs or ["(none)"], analysis, limit=100))
    print(show_state("dbt", dbt))
    print(show_state("unicorn", uni))
    if case.code != case.unicorn_code:
        print(f"  Unicorn ran: {case.unicorn_code.hex(' ')}")
    print(f"  undefined at the end: flags {S.flag_names(analysis.undefined_flags)}, "
          f"registers {analysis.undefined_regs or '-'}, memory bytes {len(analysis.undefined_mem)}")
    if args.steps:
        insns = list(case.insns)
        for n in range(1, len(insns) + 1):
            case.insns = insns[:n]
            step_diffs, _, d, u = harness.run_case(case)
            print(f"-- after {n}: {insns[n - 1].text}: {'agree' if not step_diffs else step_diffs}")
            print(show_state("dbt", d))
            print(show_state("unicorn", u))
        case.insns = insns
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
