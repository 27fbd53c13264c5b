/*
 * bootinfo - what the Multiboot loader handed the kernel, checked.
 *
 * Prints the upper-memory size to the nearest MiB (loaders differ by the
 * firmware tables they reserve below the top: QEMU's keeps 128 KiB), the
 * command line after its first word
 * (loaders put the kernel's name there: dbt the guest's name, QEMU the
 * image path), and every module's length, CRC-32 and string after its
 * first word.  Checks, printing only failures: the memory fields agree
 * with the memory map, the map marks the kernel and the modules usable,
 * modules are page-aligned and do not overlap the kernel or each other,
 * the loader name is a string, and the ELF section headers, if given, name
 * a .text section that holds main().  So the output is the same under any
 * correct loader; the last line says how it went.
 */
#include <rt/rt.h>
#include <rt/multiboot.h>

#define MULTIBOOT_INFO_ELF_SHDR (1u << 5)

struct mmap_entry {
    uint32_t size;
    uint32_t base_low, base_high;
    uint32_t length_low, length_high;
    uint32_t type;
} __attribute__((packed));

struct elf_section {
    uint32_t name, type, flags, addr, offset, size, link, info, addralign, entsize;
};

extern char __kernel_end[];  /* from runtime/guest.ld; the kernel starts at 1 MiB */
#define KERNEL_START 0x100000u

int main(void);

static unsigned failures;

static void check(int ok, const char *what)
{
    if (!ok) {
        printf("FAIL: %s\n", what);
        failures++;
    }
}

static uint32_t crc32(const uint8_t *data, uint32_t length)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (uint32_t i = 0; i < length; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1));
    }
    return ~crc;
}

static const char *after_first_word(const char *s)
{
    while (*s && *s != ' ')
        s++;
    while (*s == ' ')
        s++;
    return s;
}

/* Whether [start, end) lies in memory the map calls usable (type 1). */
static int usable(const struct multiboot_info *mbi, uint32_t start, uint32_t end)
{
    uint32_t at = mbi->mmap_addr;
    while (at < mbi->mmap_addr + mbi->mmap_length) {
        const struct mmap_entry *e = (const struct mmap_entry *)(uintptr_t)at;
        if (e->type == 1 && e->base_high == 0) {
            uint64_t base = e->base_low, top = base + e->length_low + ((uint64_t)e->length_high << 32);
            if (start >= base && end <= top)
                return 1;
        }
        at += e->size + 4;
    }
    return 0;
}

static void memory(const struct multiboot_info *mbi)
{
    check(mbi->flags & MULTIBOOT_INFO_MEMORY, "the memory fields are valid");
    check(mbi->flags & MULTIBOOT_INFO_MMAP, "there is a memory map");
    if (!(mbi->flags & MULTIBOOT_INFO_MEMORY) || !(mbi->flags & MULTIBOOT_INFO_MMAP))
        return;
    printf("upper memory: %u MiB\n", (mbi->mem_upper + 512) / 1024);  /* to the nearest */
    check(mbi->mem_lower >= 512 && mbi->mem_lower <= 640, "mem_lower is between 512 and 640 KiB");
    check(usable(mbi, 0, mbi->mem_lower * 1024u), "the map marks lower memory usable");
    check(usable(mbi, 0x100000, 0x100000 + 0x100000), "the map marks the first MiB above 1 MiB usable");
    check(usable(mbi, KERNEL_START, (uint32_t)(uintptr_t)__kernel_end),
          "the map marks the kernel usable");
    check(!usable(mbi, 0xA0000, 0xA1000), "the map keeps the VGA window out of usable memory");
}

static void command_line(const struct multiboot_info *mbi)
{
    check(mbi->flags & MULTIBOOT_INFO_CMDLINE, "there is a command line");
    if (mbi->flags & MULTIBOOT_INFO_CMDLINE)
        printf("arguments: '%s'\n", after_first_word((const char *)(uintptr_t)mbi->cmdline));
    if (mbi->flags & MULTIBOOT_INFO_LOADER_NAME) {
        const char *name = (const char *)(uintptr_t)mbi->boot_loader_name;
        check(strlen(name) > 0 && strlen(name) < 256, "the boot loader name is a short string");
    }
}

static void modules(const struct multiboot_info *mbi)
{
    uint32_t count = (mbi->flags & MULTIBOOT_INFO_MODS) ? mbi->mods_count : 0;
    const struct multiboot_module *mods = (const struct multiboot_module *)(uintptr_t)mbi->mods_addr;
    printf("modules: %u\n", count);
    for (uint32_t i = 0; i < count; i++) {
        const struct multiboot_module *m = &mods[i];
        uint32_t length = m->mod_end - m->mod_start;
        printf("module %u: %u bytes, crc32 %08x, arguments '%s'\n", i, length,
               crc32((const uint8_t *)(uintptr_t)m->mod_start, length),
               after_first_word((const char *)(uintptr_t)m->string));
        check((m->mod_start & 0xFFF) == 0, "the module starts on a page boundary");
        check(m->mod_end >= m->mod_start, "the module ends after it starts");
        check(m->mod_start >= (uint32_t)(uintptr_t)__kernel_end ||
              m->mod_end <= KERNEL_START, "the module is outside the kernel");
        check(usable(mbi, m->mod_start, m->mod_end), "the map marks the module usable");
        for (uint32_t j = 0; j < i; j++)
            check(m->mod_start >= mods[j].mod_end || m->mod_end <= mods[j].mod_start,
                  "modules do not overlap");
    }
}

static void elf_sections(const struct multiboot_info *mbi)
{
    if (!(mbi->flags & MULTIBOOT_INFO_ELF_SHDR))
        return;  /* optional: QEMU does not pass them */
    uint32_t count = mbi->syms[0], size = mbi->syms[1], addr = mbi->syms[2], names = mbi->syms[3];
    check(size == sizeof(struct elf_section), "ELF section headers have the 32-bit size");
    check(names < count, "the section-name table index is in range");
    if (size != sizeof(struct elf_section) || names >= count)
        return;
    const struct elf_section *sections = (const struct elf_section *)(uintptr_t)addr;
    const char *strings = (const char *)(uintptr_t)sections[names].addr;
    int found = 0;
    check(strings != 0, "the section names are loaded");
    for (uint32_t i = 0; strings && i < count; i++) {
        if (strcmp(strings + sections[i].name, ".text") == 0) {
            uint32_t entry = (uint32_t)(uintptr_t)main;
            found = entry >= sections[i].addr && entry < sections[i].addr + sections[i].size;
        }
    }
    check(found, "a .text section holds main()");
}

int main(void)
{
    const struct multiboot_info *mbi = rt_boot_info;
    check(rt_boot_magic == MULTIBOOT_BOOTLOADER_MAGIC, "EAX held the Multiboot magic");
    if (!mbi)
        return 1;
    memory(mbi);
    command_line(mbi);
    modules(mbi);
    elf_sections(mbi);
    if (failures) {
        printf("bootinfo: %u checks failed\n", failures);
        return 1;
    }
    printf("bootinfo: all checks passed\n");
    return 0;
}
