/*
 * runtime/host/host.c - "host" platform: runs a guest as a static Linux/i386
 * user program (int 0x80 system calls, no libc).  Not used by the shipped
 * kernels; it exists for
 *   - the alu generator (guests/alu/gen), which runs the very same test
 *     code on the host CPU to obtain the known answers, and
 *   - measuring guest instruction counts with valgrind (make host-count).
 *
 * Console output goes to stdout, exit(code) becomes the process exit
 * status, and the program arguments joined by spaces form the command line.
 */
#include <rt/platform.h>
#include <rt/rt.h>

uint32_t rt_boot_magic;
const struct multiboot_info *rt_boot_info;

static char cmdline[1024];
static char outbuf[4096];
static size_t outlen;

static long sys3(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return ret;
}

static void flush(void)
{
    size_t off = 0;
    while (off < outlen) {
        long n = sys3(4 /* write */, 1, (long)(outbuf + off), (long)(outlen - off));
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    outlen = 0;
}

void rt_console_write(const char *s, size_t n)
{
    while (n--) {
        if (outlen == sizeof(outbuf))
            flush();
        outbuf[outlen++] = *s++;
    }
}

const char *rt_cmdline(void)
{
    return cmdline;
}

void exit(int code)
{
    flush();
    for (;;)
        sys3(252 /* exit_group */, code, 0, 0);
}

void rt_host_start(int argc, char **argv) RT_NORETURN;

void rt_host_start(int argc, char **argv)
{
    size_t len = 0;
    for (int i = 1; i < argc; i++) {
        for (const char *p = argv[i]; *p && len + 2 < sizeof(cmdline); p++)
            cmdline[len++] = *p;
        if (i + 1 < argc && len + 2 < sizeof(cmdline))
            cmdline[len++] = ' ';
    }
    exit(main());
}

/* Process entry: argc at (%esp), argv at 4(%esp). */
__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "  movl (%esp), %eax\n"
        "  leal 4(%esp), %edx\n"
        "  andl $-16, %esp\n"
        "  subl $8, %esp\n"
        "  pushl %edx\n"
        "  pushl %eax\n"
        "  call rt_host_start\n"
        "  hlt\n");
