/*
 * rt/platform.h - the small interface between the portable runtime library
 * (runtime/lib) and a platform (runtime/pc for the Multiboot PC, runtime/host
 * for the Linux/i386 measurement build).  Guests do not use it directly.
 *
 * A platform provides:
 *   - the entry point, which ends up calling rt_main_entry();
 *   - rt_console_write(), the byte sink printf() writes to;
 *   - rt_cmdline();
 *   - exit().
 */
#ifndef RT_PLATFORM_H
#define RT_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

/* Write n bytes to the console, unmodified. */
void rt_console_write(const char *s, size_t n);

/* The guest's entry point. */
int main(void);

#endif /* RT_PLATFORM_H */
