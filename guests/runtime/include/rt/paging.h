/*
 * rt/paging.h - 32-bit (non-PAE) paging helpers (runtime/pc/paging.c).
 *
 * Page directories and page tables come from a bump allocator over the
 * physical pages between the end of the kernel image (__kernel_end, or
 * the end of the Multiboot information, command line and modules if the
 * loader put them behind the image, as QEMU does) and 4 MiB, so they are
 * reachable with paging off and under any identity map of the first
 * 4 MiB.  Pages are never freed.
 *
 * A page directory entry that points to a page table is created with
 * P|W|U: the page table entries alone decide the access rights.
 */
#ifndef RT_PAGING_H
#define RT_PAGING_H

#include <stdint.h>

#define PAGE_SIZE  4096u
#define LARGE_PAGE_SIZE 0x400000u

#define PTE_P   0x001u      /* present */
#define PTE_W   0x002u      /* writable */
#define PTE_U   0x004u      /* user accessible */
#define PTE_PWT 0x008u
#define PTE_PCD 0x010u
#define PTE_A   0x020u      /* accessed */
#define PTE_D   0x040u      /* dirty */
#define PTE_PS  0x080u      /* in a PDE: 4 MiB page (needs CR4.PSE) */
#define PTE_G   0x100u      /* global (needs CR4.PGE) */
#define PTE_ADDR 0xFFFFF000u
#define PDE_LARGE_ADDR 0xFFC00000u

#define PD_INDEX(va) ((uint32_t)(va) >> 22)
#define PT_INDEX(va) (((uint32_t)(va) >> 12) & 0x3FF)

/* A zeroed 4 KiB page (physical = virtual address under the identity map).
 * Exits with a message if the pool is exhausted. */
void *rt_page_alloc(void);
/* Pages left in the pool. */
unsigned rt_page_pool_free(void);

/* A new, empty page directory. */
uint32_t *rt_pd_create(void);

/* The PTE for va in pd, or NULL if va has no page table (or is mapped by
 * a 4 MiB page).  With create, a missing page table is allocated. */
uint32_t *rt_pte(uint32_t *pd, uint32_t va, int create);

/* Map the 4 KiB page va -> pa with flags (PTE_P is added). */
void rt_map_page(uint32_t *pd, uint32_t va, uint32_t pa, uint32_t flags);
/* Clear the PTE for va and INVLPG it (harmless if pd is not the current
 * page directory). */
void rt_unmap_page(uint32_t *pd, uint32_t va);
/* Map [va, va + size) -> [pa, ...) with 4 KiB pages. */
void rt_map_range(uint32_t *pd, uint32_t va, uint32_t pa, uint32_t size, uint32_t flags);
/* Identity-map [start, end) with 4 KiB pages (start rounded down, end up). */
void rt_identity_map(uint32_t *pd, uint32_t start, uint32_t end, uint32_t flags);
/* Map the 4 MiB page va -> pa (both 4 MiB aligned) with flags (PTE_P and
 * PTE_PS are added).  Needs CR4.PSE when used. */
void rt_map_large(uint32_t *pd, uint32_t va, uint32_t pa, uint32_t flags);

/*
 * The usual kernel address space: a new page directory identity-mapping
 * the first 4 MiB with 4 KiB pages (page 0 left unmapped, so that NULL
 * pointers fault) and [4 MiB, ram_end) with 4 MiB pages, all supervisor
 * and writable.  ram_end is rounded up to 4 MiB; 0 means 64 MiB.
 */
uint32_t *rt_pd_kernel(uint32_t ram_end);

/* Load CR3 = pd, set CR4.PSE, then CR0.PG (CR0.WP as given). */
void rt_paging_enable(uint32_t *pd, int wp);
/* Clear CR0.PG (the code must be identity-mapped). */
void rt_paging_disable(void);

#endif /* RT_PAGING_H */
