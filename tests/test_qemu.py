"""Whole guests against QEMU: under dbt every shipped guest prints, byte for
byte, what it prints under qemu-system-i386 (TCG), and exits the same way."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from dbt.guests import shipped_guests
from dbt.session import RunOptions, run_guest

QEMU = shutil.which("qemu-system-i386")
GUESTS = [g.name for g in shipped_guests()]

pytestmark = pytest.mark.skipif(
    QEMU is None, reason="qemu-system-i386 is not installed (make setup installs qemu-system-x86)")


def run_qemu(image: str, append: str = "") -> subprocess.CompletedProcess:
    command = [QEMU, "-kernel", image, "-m", "64", "-display", "none", "-serial", "stdio",
               "-monitor", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
               "-no-reboot"]
    if append:
        command += ["-append", append]
    return subprocess.run(command, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("name", GUESTS)
def test_output_and_status_equal_qemu(name: str, built_guests) -> None:
    guest = built_guests[name]
    append = "scale=1" if name == "compute" else ""
    qemu = run_qemu(str(guest.image), append)
    dbt = run_guest(name, RunOptions(serial_sink=lambda data: None, cmdline=append, timeout_seconds=600))
    assert dbt.output == qemu.stdout, f"{name}: dbt and QEMU print differently"
    assert dbt.status == qemu.returncode, f"{name}: dbt status {dbt.status}, QEMU {qemu.returncode}"


def test_boot_information_equals_qemu(built_guests, tmp_path) -> None:
    """The same command line and modules through QEMU's Multiboot loader
    and dbt's: bootinfo prints and checks what it was handed."""
    text, blob = tmp_path / "notes.txt", tmp_path / "blob.bin"
    text.write_bytes(b"a module with words\n")
    blob.write_bytes(bytes(range(256)) * 40)
    image = str(built_guests["bootinfo"].image)
    append = "alpha beta=2  gamma"
    qemu = subprocess.run(
        [QEMU, "-kernel", image, "-m", "64", "-display", "none", "-serial", "stdio", "-monitor", "none",
         "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-no-reboot", "-append", append,
         "-initrd", f"{text} first second,{blob}"],
        capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    dbt = run_guest("bootinfo", RunOptions(serial_sink=lambda data: None, cmdline=append,
                                           modules=[(text, f"{text} first second"), (blob, "")]))
    assert b"modules: 2" in qemu.stdout and b"all checks passed" in qemu.stdout
    assert dbt.output == qemu.stdout
    assert dbt.status == qemu.returncode
