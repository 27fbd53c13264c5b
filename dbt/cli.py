"""The ``dbt`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from dbt.backend.codecache import CodeCache, CodeCacheError
from dbt.guests import shipped_guests
from dbt.loader.multiboot import ImageError
from dbt.session import RunOptions, RunResult, parse_size, prepare
from dbt.vmm.outcome import STATUS, Ending
from dbt.vmm.tracer import Tracer

USAGE_STATUS = STATUS[Ending.USAGE]


class UsageError(Exception):
    """Bad input from the user: printed as one line, status 2."""


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _cache_directory(text: str) -> str:
    """A usable code cache directory (made if missing)."""
    try:
        CodeCache(text)
    except CodeCacheError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _address(text: str) -> int:
    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address (e.g. 0x00101a40)") from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError(f"{text!r} is not a 32-bit address")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def add_run_options(parser: argparse.ArgumentParser, compile_in: str = "background") -> None:
    """Options shared by every command that runs a guest; `compile_in` is
    where the hot tier compiles unless --jit-compile says otherwise."""
    parser.add_argument("guest", help="a shipped guest's name (see `dbt guests`) or a Multiboot kernel file")
    parser.add_argument("--memory", type=_size, default=64 << 20, metavar="SIZE",
                        help="guest RAM, e.g. 64M (default), 512K, 1G")
    parser.add_argument("--max-insns", type=_positive_int, metavar="N",
                        help="stop after N guest instructions (status 8)")
    parser.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                        help="stop after this much wall-clock time (status 10)")
    parser.add_argument("--append", default="", metavar="CMDLINE",
                        help="the kernel command line (Multiboot cmdline)")
    parser.add_argument("--module", action="append", default=[], metavar="FILE[=STRING]",
                        help="load a Multiboot module (repeatable); its string is STRING, or FILE as given")
    parser.add_argument("--input", metavar="TEXT", help="bytes the guest reads from COM1")
    parser.add_argument("--input-file", metavar="FILE", help="COM1 input from a file ('-' for stdin)")
    parser.add_argument("--clock", choices=("virtual", "host"), default="virtual",
                        help="virtual time counts instructions (reproducible, default) or follows the host")
    parser.add_argument("--mode", choices=("bt", "trap", "native"), default="bt",
                        help="binary translation (default), trap-and-emulate, or native (no monitor)")
    parser.add_argument("--deprivilege", choices=("0/1/3", "0/3"), default="0/1/3",
                        help="bt and trap: run the guest kernel at CPL 1 (0/1/3, default) or CPL 3 (0/3)")
    parser.add_argument("--jit", choices=("on", "off", "always"), default="on",
                        help="the hot tier: compile hot regions (on, default), never (off), "
                        "or every block on first use (always, for testing)")
    parser.add_argument("--jit-threshold", type=_positive_int, metavar="N",
                        help="executions before a block is compiled (default 200)")
    repeatable = "the same regions and statistics every run"
    background, foreground = {
        "background": ("background, default", f"foreground: {repeatable}"),
        "foreground": ("background", f"foreground, the default here: {repeatable}"),
    }[compile_in]
    parser.add_argument("--jit-compile", choices=("background", "foreground"), default=compile_in,
                        help=f"compile hot regions in a worker process while the guest runs on ({background}), "
                        f"or in the monitor while the guest waits ({foreground})")
    parser.add_argument("--jit-cache", type=_cache_directory, metavar="DIR",
                        help="keep compiled regions' object code in DIR and take it from there in later runs "
                        "(made if missing; default: no cache)")
    parser.add_argument("--debugcon", metavar="FILE",
                        help="write what the guest sends to port 0xE9 to FILE ('-' for stderr)")
    parser.add_argument("--on-reset", choices=("stop", "reboot"), default="stop",
                        help="when the guest resets the PC: stop (status 0, default) or reboot the kernel")
    parser.add_argument("--on-triple-fault", choices=("stop", "reset"), default="stop",
                        help="on a triple fault: stop with a report (status 6, default) or reset like a PC")


def add_log_options(parser: argparse.ArgumentParser) -> None:
    """The execution log (``dbt.trace``) of the commands that run one guest."""
    from dbt.trace import DEFAULT_LIMIT_BYTES, LOG_ITEMS

    parser.add_argument("--log", metavar="ITEMS",
                        help="an execution log of these comma-separated items: " + ", ".join(LOG_ITEMS))
    parser.add_argument("--log-file", metavar="FILE", help="write the log to FILE (default: stderr)")
    parser.add_argument("--log-limit", type=_size, default=DEFAULT_LIMIT_BYTES, metavar="SIZE",
                        help="stop the log at this size with a last line saying so "
                        "(64M default; 4K, 1G)")


def log_tracer(args: argparse.Namespace) -> Tracer | None:
    """The tracer for ``--log``, or None when no log was asked for."""
    if getattr(args, "log", None) is None:
        if getattr(args, "log_file", None) is not None:
            raise UsageError("--log-file needs --log ITEMS")
        return None
    from dbt.trace import LogItemError, open_log

    try:
        return open_log(args.log, args.log_file, args.log_limit)
    except LogItemError as error:
        raise UsageError(f"--log {args.log}: {error}") from None
    except OSError as error:
        raise UsageError(f"--log-file {args.log_file}: {error.strerror}") from None


def run_options(args: argparse.Namespace) -> RunOptions:
    modules = []
    for spec in args.module:
        path, _, string = spec.partition("=")
        if not Path(path).is_file():
            raise UsageError(f"--module {spec}: {path} is not a file")
        modules.append((Path(path), string))
    serial_input = None
    if args.input is not None and args.input_file is not None:
        raise UsageError("give --input or --input-file, not both")
    if args.input is not None:
        serial_input = args.input.encode().decode("unicode_escape").encode("latin-1")
    elif args.input_file == "-":
        serial_input = sys.stdin.buffer
    elif args.input_file is not None:
        try:
            serial_input = open(args.input_file, "rb")  # noqa: SIM115 (lives as long as the run)
        except OSError as error:
            raise UsageError(f"--input-file {args.input_file}: {error.strerror}") from None
    debugcon: Callable[[bytes], None] | None = None
    if args.debugcon == "-":
        debugcon = _stderr_sink
    elif args.debugcon is not None:
        try:
            debugcon_file = open(args.debugcon, "wb")  # noqa: SIM115 (lives as long as the run)
        except OSError as error:
            raise UsageError(f"--debugcon {args.debugcon}: {error.strerror}") from None
        def debugcon(data: bytes) -> None:
            debugcon_file.write(data)
    return RunOptions(
        jit=args.jit,
        jit_threshold=args.jit_threshold,
        jit_compile=args.jit_compile,
        jit_cache=args.jit_cache,
        mode=args.mode,
        deprivilege=args.deprivilege,
        debugcon_sink=debugcon,
        on_reset=args.on_reset,
        on_triple_fault=args.on_triple_fault,
        memory_bytes=args.memory,
        max_insns=args.max_insns,
        timeout_seconds=args.timeout,
        cmdline=args.append,
        modules=modules,
        serial_input=serial_input,
        clock=args.clock,
        tracer=log_tracer(args),
    )


def _stderr_sink(data: bytes) -> None:
    sys.stderr.buffer.write(data)
    sys.stderr.buffer.flush()


# -- commands ----------------------------------------------------------------------------
def command_run(args: argparse.Namespace) -> int:
    import time

    from dbt.report import ending_report, screen_report, stats_report
    from dbt.vmm.executor import run

    machine = prepare(args.guest, run_options(args))
    started = time.perf_counter()
    outcome = run(machine)
    result = RunResult(outcome, machine, time.perf_counter() - started)
    sys.stdout.flush()
    if not outcome.is_guest_exit:
        print(ending_report(result), file=sys.stderr)
    if args.screen:
        print(screen_report(machine), file=sys.stderr)
    if args.stats:
        print(stats_report(result), file=sys.stderr)
    if args.perf_map:
        from dbt.perfmap import perf_map_message, write_perf_map

        symbols = machine.native_symbols()
        print(perf_map_message(write_perf_map(symbols), len(symbols)), file=sys.stderr)
    return outcome.status


def command_guests(args: argparse.Namespace) -> int:
    guests = shipped_guests()
    if not guests:
        print("no guests found (is this a checkout of dbt with its guests/ directory?)", file=sys.stderr)
        return 1
    width = max(len(g.name) for g in guests)
    for guest in guests:
        built = "" if guest.built else "  (not built: run `make guests`)"
        print(f"{guest.name:<{width}}  {guest.description}{built}")
    return 0


def command_compare(args: argparse.Namespace) -> int:
    from dbt.compare import compare_command

    return compare_command(args)


def command_rules(args: argparse.Namespace) -> int:
    from dbt.rules import RuleError, default_rules, load_rules, rules_table

    try:
        rules = load_rules(Path(args.directory)) if args.directory else default_rules()
    except RuleError as error:
        raise UsageError(str(error)) from None
    if args.verbose:
        for rule in rules:
            print(f"{rule.name} ({rule.kind}; {rule.source})")
            print(f"  instructions: {' '.join(rule.mnemonics)}" + (
                f" ({rule.operands} operands)" if rule.operands != "any" else ""))
            print(f"  sensitive:    {rule.sensitive}")
            print(f"  bt rewrite:   {rule.bt}" + (" (callout)" if rule.callout else " (inline)"))
            print(f"  trap handler: {rule.trap}")
    else:
        print(rules_table(rules))
    return 0


def command_dump(args: argparse.Namespace) -> int:
    from dbt.dump import dump_command

    return dump_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dbt",
        description="Run x86 guest kernels by dynamic binary translation.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run_parser = commands.add_parser("run", help="run a guest kernel",
                                     description="Boot a Multiboot kernel and run it; the guest's "
                                     "COM1 output goes to stdout and dbt's reports to stderr.")
    add_run_options(run_parser)
    run_parser.add_argument("--stats", action="store_true",
                            help="print translation-cache and execution statistics at the end")
    run_parser.add_argument("--screen", action="store_true",
                            help="print the VGA text screen (memory at 0xB8000) at the end")
    run_parser.add_argument("--perf-map", action="store_true",
                            help="write /tmp/perf-PID.map naming the compiled guest code for perf")
    add_log_options(run_parser)
    run_parser.set_defaults(handler=command_run)

    guests_parser = commands.add_parser("guests", help="list the shipped guests")
    guests_parser.set_defaults(handler=command_guests)

    compare_parser = commands.add_parser(
        "compare", help="run a guest under several modes and compare them with native",
        description="Run a guest natively, by binary translation and by trap-and-emulate; report "
        "equivalence with native, time, instructions, exits, traps and callouts.")
    add_run_options(compare_parser)
    compare_parser.add_argument("--modes", default="native,bt,trap", metavar="LIST",
                                help="comma-separated modes to run (default: native,bt,trap)")
    compare_parser.add_argument("--repeat", type=_positive_int, default=1, metavar="N",
                                help="runs per mode; times are medians")
    compare_parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    compare_parser.add_argument("--plot", metavar="FILE.png", help="write a chart of the comparison")
    compare_parser.set_defaults(handler=command_compare)

    rules_parser = commands.add_parser("rules", help="print the translator rules",
                                       description="Print the table of privileged and sensitive "
                                       "instructions, their rewrites and trap handlers.")
    rules_parser.add_argument("--verbose", "-v", action="store_true", help="every field of every rule")
    rules_parser.add_argument("--directory", metavar="DIR", help="rules from DIR instead of translator_rules/")
    rules_parser.set_defaults(handler=command_rules)

    dump_parser = commands.add_parser("dump", help="run a guest, then show its translations",
                                      description="Run a guest, then print translated blocks stage by stage.")
    add_run_options(dump_parser, compile_in="foreground")
    add_log_options(dump_parser)
    selection = dump_parser.add_mutually_exclusive_group()
    selection.add_argument("--pc", type=_address, metavar="ADDR",
                           help="the block(s) at this guest address or containing it")
    selection.add_argument("--hot", type=_positive_int, metavar="N",
                           help="the N hottest blocks by retired instructions (default: 5)")
    selection.add_argument("--all", action="store_true", help="every block, by address")
    dump_parser.add_argument("--sensitive", action="store_true",
                             help="only blocks with a sensitive instruction (a translator rule "
                             "fired, or would apply in trap and native modes); alone: all of them")
    dump_parser.add_argument("--stages", default="guest,rules,ir", metavar="LIST",
                             help="comma-separated: guest, rules, ir, python, llvm, asm "
                             "(default: guest,rules,ir)")
    dump_parser.add_argument("--format", choices=("text", "json"), default="text",
                             help="text (default; colored on a terminal unless NO_COLOR is set) or json")
    dump_parser.set_defaults(handler=command_dump)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (UsageError, ImageError) as error:
        print(f"dbt: {error}", file=sys.stderr)
        return USAGE_STATUS
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("dbt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
