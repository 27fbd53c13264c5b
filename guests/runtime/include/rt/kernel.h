/*
 * rt/kernel.h - everything for guests that act as a kernel: rt/rt.h plus
 * the PC platform's CPU, descriptor table, trap, paging, PIC/PIT and
 * ring-3 interfaces.
 */
#ifndef RT_KERNEL_H
#define RT_KERNEL_H

#include <rt/rt.h>
#include <rt/io.h>
#include <rt/cpu.h>
#include <rt/desc.h>
#include <rt/trap.h>
#include <rt/paging.h>
#include <rt/pic.h>
#include <rt/user.h>

#endif /* RT_KERNEL_H */
