/*
 * runtime/pc/paging.c - page allocator and page-table helpers (rt/paging.h).
 */
#include <rt/cpu.h>
#include <rt/paging.h>
#include <rt/rt.h>

extern uint8_t __kernel_end[];

#define POOL_END 0x400000u

static uint32_t pool_next;

static uint32_t max_end(uint32_t end, uint32_t start, uint32_t len)
{
    return start + len > end ? start + len : end;
}

static uint32_t string_end(uint32_t end, uint32_t s)
{
    return s ? max_end(end, s, (uint32_t)strlen((const char *)(uintptr_t)s) + 1) : end;
}

/* The pool starts after the kernel image and after whatever the loader put
 * behind it: QEMU places the Multiboot information, the command line and
 * the modules right after the image. */
static void pool_init(void)
{
    uint32_t end = (uint32_t)(uintptr_t)__kernel_end;
    const struct multiboot_info *mbi = rt_boot_info;
    if (mbi) {
        end = max_end(end, (uint32_t)(uintptr_t)mbi, sizeof(*mbi));
        if (mbi->flags & MULTIBOOT_INFO_CMDLINE)
            end = string_end(end, mbi->cmdline);
        if (mbi->flags & MULTIBOOT_INFO_LOADER_NAME)
            end = string_end(end, mbi->boot_loader_name);
        if (mbi->flags & MULTIBOOT_INFO_MMAP)
            end = max_end(end, mbi->mmap_addr, mbi->mmap_length);
        if (mbi->flags & MULTIBOOT_INFO_MODS) {
            const struct multiboot_module *m = (const void *)(uintptr_t)mbi->mods_addr;
            end = max_end(end, mbi->mods_addr, mbi->mods_count * sizeof(*m));
            for (uint32_t i = 0; i < mbi->mods_count; i++) {
                end = max_end(end, m[i].mod_start, m[i].mod_end - m[i].mod_start);
                end = string_end(end, m[i].string);
            }
        }
    }
    pool_next = (end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

void *rt_page_alloc(void)
{
    if (!pool_next)
        pool_init();
    if (pool_next >= POOL_END) {
        printf("rt_page_alloc: out of pages\n");
        exit(3);
    }
    uint32_t *p = (uint32_t *)(uintptr_t)pool_next;
    pool_next += PAGE_SIZE;
    uint32_t d, c;
    __asm__ volatile("cld; rep stosl" : "=D"(d), "=c"(c) : "0"(p), "1"(PAGE_SIZE / 4), "a"(0) : "memory");
    return p;
}

unsigned rt_page_pool_free(void)
{
    if (!pool_next)
        pool_init();
    return pool_next < POOL_END ? (POOL_END - pool_next) / PAGE_SIZE : 0;
}

uint32_t *rt_pd_create(void)
{
    return rt_page_alloc();
}

uint32_t *rt_pte(uint32_t *pd, uint32_t va, int create)
{
    uint32_t pde = pd[PD_INDEX(va)];
    if (pde & PTE_P) {
        if (pde & PTE_PS)
            return 0;
    } else {
        if (!create)
            return 0;
        pde = (uint32_t)(uintptr_t)rt_page_alloc() | PTE_P | PTE_W | PTE_U;
        pd[PD_INDEX(va)] = pde;
    }
    return (uint32_t *)(uintptr_t)(pde & PTE_ADDR) + PT_INDEX(va);
}

void rt_map_page(uint32_t *pd, uint32_t va, uint32_t pa, uint32_t flags)
{
    uint32_t *pte = rt_pte(pd, va, 1);
    if (!pte) {
        printf("rt_map_page: %08x lies in a 4 MiB page\n", va);
        exit(3);
    }
    *pte = (pa & PTE_ADDR) | (flags & 0xFFF) | PTE_P;
}

void rt_unmap_page(uint32_t *pd, uint32_t va)
{
    uint32_t *pte = rt_pte(pd, va, 0);
    if (pte)
        *pte = 0;
    rt_invlpg(va);
}

void rt_map_range(uint32_t *pd, uint32_t va, uint32_t pa, uint32_t size, uint32_t flags)
{
    for (uint32_t off = 0; off < size; off += PAGE_SIZE)
        rt_map_page(pd, va + off, pa + off, flags);
}

void rt_identity_map(uint32_t *pd, uint32_t start, uint32_t end, uint32_t flags)
{
    start &= ~(PAGE_SIZE - 1);
    end = (end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    for (uint32_t a = start; a != end; a += PAGE_SIZE)
        rt_map_page(pd, a, a, flags);
}

void rt_map_large(uint32_t *pd, uint32_t va, uint32_t pa, uint32_t flags)
{
    pd[PD_INDEX(va)] = (pa & PDE_LARGE_ADDR) | (flags & 0xFFF) | PTE_P | PTE_PS;
}

uint32_t *rt_pd_kernel(uint32_t ram_end)
{
    uint32_t *pd = rt_pd_create();
    if (!ram_end)
        ram_end = 64u << 20;
    rt_identity_map(pd, PAGE_SIZE, LARGE_PAGE_SIZE, PTE_W);
    for (uint32_t a = LARGE_PAGE_SIZE; a < ram_end; a += LARGE_PAGE_SIZE)
        rt_map_large(pd, a, a, PTE_W);
    return pd;
}

void rt_paging_enable(uint32_t *pd, int wp)
{
    rt_write_cr3((uint32_t)(uintptr_t)pd);
    rt_write_cr4(rt_read_cr4() | CR4_PSE);
    uint32_t cr0 = rt_read_cr0() | CR0_PG;
    cr0 = wp ? cr0 | CR0_WP : cr0 & ~CR0_WP;
    rt_write_cr0(cr0);
}

void rt_paging_disable(void)
{
    rt_write_cr0(rt_read_cr0() & ~CR0_PG);
}
