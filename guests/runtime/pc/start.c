/*
 * runtime/pc/start.c - C side of the Multiboot entry: remember the boot
 * information, bring up the console, run the guest's main() and exit with
 * its return value.
 */
#include <rt/platform.h>
#include <rt/rt.h>
#include <rt/serial.h>

uint32_t rt_boot_magic;
const struct multiboot_info *rt_boot_info;

void rt_pc_start(uint32_t magic, const struct multiboot_info *info) RT_NORETURN;

void rt_pc_start(uint32_t magic, const struct multiboot_info *info)
{
    rt_boot_magic = magic;
    rt_boot_info = magic == MULTIBOOT_BOOTLOADER_MAGIC ? info : NULL;
    serial_init();
    exit(main());
}

const char *rt_cmdline(void)
{
    const struct multiboot_info *mbi = rt_boot_info;
    if (mbi && (mbi->flags & MULTIBOOT_INFO_CMDLINE) && mbi->cmdline)
        return (const char *)(uintptr_t)mbi->cmdline;
    return "";
}

void rt_console_write(const char *s, size_t n)
{
    serial_write(s, n);
}
