/*
 * runtime/pc/exit.c - end the machine through QEMU's isa-debug-exit device
 * (iobase 0xF4): writing v makes the VMM exit with status (v << 1) | 1.
 */
#include <rt/io.h>
#include <rt/rt.h>

#define DEBUG_EXIT_PORT 0xF4

void exit(int code)
{
    outl(DEBUG_EXIT_PORT, (uint32_t)code);
    cpu_halt_forever();     /* no exit device: stop here */
}
