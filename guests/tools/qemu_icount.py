#!/usr/bin/env python3
"""Count the guest instructions a kernel executes under QEMU (the reference).

    tools/qemu_icount.py build/compute.elf [--append "scale=2"]

QEMU is run with `-d in_asm,exec,nochain`: every translation block is
logged once when translated (with its instructions) and every time it is
entered.  Summing the size of each entered block whose address lies inside
the kernel image (the ELF's PT_LOAD ranges, .bss included) gives the number
of instructions the kernel executed; the firmware that runs before it is
left out.  Each iteration of a REP string instruction counts as one
instruction.  The log is streamed through a FIFO, so long runs need no disk.
"""

import argparse
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading

IN_RE = re.compile(r"^0x([0-9a-f]+):\s")
EXEC_RE = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")


def load_ranges(path):
    """[start, end) of every PT_LOAD segment of an ELF32 file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 1:
        sys.exit(f"{path}: not an ELF32 file")
    phoff, = struct.unpack_from("<I", data, 28)
    phentsize, phnum = struct.unpack_from("<HH", data, 42)
    ranges = []
    for i in range(phnum):
        p_type, _off, vaddr, _paddr, _filesz, memsz = struct.unpack_from(
            "<IIIIII", data, phoff + i * phentsize)
        if p_type == 1 and memsz:
            ranges.append((vaddr, vaddr + memsz))
    return ranges


def count(log, ranges):
    sizes = {}
    cur, n, total, blocks = None, 0, 0, 0
    for line in log:
        if line.startswith("IN:"):
            cur, n = None, 0
            continue
        m = IN_RE.match(line)
        if m:
            if n == 0:
                cur = int(m.group(1), 16)
            n += 1
            sizes[cur] = n
            continue
        m = EXEC_RE.match(line)
        if m:
            cur, n = None, 0
            pc = int(m.group(1), 16)
            if any(lo <= pc < hi for lo, hi in ranges):
                total += sizes.get(pc, 0)
                blocks += 1
    return total, blocks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kernel")
    ap.add_argument("--append", default=None, help="kernel command line")
    ap.add_argument("--qemu", default=os.environ.get("QEMU", "qemu-system-i386"))
    args = ap.parse_args()

    ranges = load_ranges(args.kernel)
    tmp = tempfile.mkdtemp(prefix="icount-")
    fifo = os.path.join(tmp, "log")
    os.mkfifo(fifo)
    result = {}

    def reader():
        with open(fifo, errors="replace") as log:
            result["count"] = count(log, ranges)

    t = threading.Thread(target=reader)
    t.start()
    cmd = [args.qemu, "-kernel", args.kernel, "-m", "64", "-display", "none",
           "-serial", "file:/dev/null", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
           "-no-reboot", "-d", "in_asm,exec,nochain", "-D", fifo]
    if args.append is not None:
        cmd += ["-append", args.append]
    proc = subprocess.run(cmd)
    t.join()
    os.unlink(fifo)
    os.rmdir(tmp)
    total, blocks = result["count"]
    print(f"{os.path.basename(args.kernel)}: {total} instructions in {blocks} blocks "
          f"(exit status {proc.returncode})")


if __name__ == "__main__":
    main()
