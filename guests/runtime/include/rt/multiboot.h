/*
 * rt/multiboot.h - the parts of the Multiboot v1 specification the runtime uses.
 */
#ifndef RT_MULTIBOOT_H
#define RT_MULTIBOOT_H

#include <stdint.h>

#define MULTIBOOT_HEADER_MAGIC     0x1BADB002u  /* in the kernel image */
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u  /* in EAX at entry */

/* Header flags (kernel -> loader). */
#define MULTIBOOT_PAGE_ALIGN  (1u << 0)  /* align modules on 4 KiB pages */
#define MULTIBOOT_MEMORY_INFO (1u << 1)  /* provide mem_lower/mem_upper */

/* Info flags (loader -> kernel): which fields of multiboot_info are valid. */
#define MULTIBOOT_INFO_MEMORY  (1u << 0)
#define MULTIBOOT_INFO_CMDLINE (1u << 2)
#define MULTIBOOT_INFO_MODS    (1u << 3)
#define MULTIBOOT_INFO_MMAP    (1u << 6)
#define MULTIBOOT_INFO_LOADER_NAME (1u << 9)

struct multiboot_info {
    uint32_t flags;
    uint32_t mem_lower;      /* KiB below 1 MiB   (flags bit 0) */
    uint32_t mem_upper;      /* KiB above 1 MiB   (flags bit 0) */
    uint32_t boot_device;
    uint32_t cmdline;        /* physical address of a C string (flags bit 2) */
    uint32_t mods_count;
    uint32_t mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length;
    uint32_t mmap_addr;
    uint32_t drives_length;
    uint32_t drives_addr;
    uint32_t config_table;
    uint32_t boot_loader_name;  /* physical address of a C string (flags bit 9) */
    /* further fields are not used by the runtime */
};

struct multiboot_module {
    uint32_t mod_start, mod_end;
    uint32_t string;
    uint32_t reserved;
};

#endif /* RT_MULTIBOOT_H */
