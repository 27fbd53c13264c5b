/*
 * paging - 32-bit paging: identity and higher-half mappings, 4 KiB and
 * 4 MiB pages, demand paging from the #PF handler, accessed and dirty bits
 * (set by the CPU, cleared by software, set again), CR0.WP, INVLPG and CR3
 * reloads after PTE changes, global pages (CR4.PGE), switching between two
 * page directories, and unmapping.
 *
 * Only what the SDM guarantees is checked: a changed PTE is seen after
 * INVLPG or (for non-global pages) a CR3 reload; the old translation may
 * or may not still be used before that, so it is never looked at.
 */
#include <rt/kernel.h>

#define A(p) ((uint32_t)(uintptr_t)(p))
#define HIGH 0xC0000000u

#define VA_LARGE    0x40000000u     /* 4 MiB page -> PA 0x400000 */
#define VA_PAGE     0x50000000u     /* 4 KiB test pages */
#define VA_RO       (VA_PAGE + 0x1000)
#define VA_SWAP     (VA_PAGE + 0x2000)
#define VA_GLOBAL   (VA_PAGE + 0x3000)
#define VA_NONGLOB  (VA_PAGE + 0x4000)
#define VA_DEMAND   0x60000000u     /* demand-paged region */
#define DEMAND_PAGES 16
#define VA_PERPD    0x70000000u     /* mapped differently in each page directory */

uint32_t hh_run(void);
extern const uint8_t hh_label[];

static unsigned passed, total;
static uint32_t *pd;
static volatile uint32_t marker = 0x600DF00D;

static void report(const char *name, int ok, const char *what)
{
    total++;
    passed += ok;
    printf("%s %s: %s\n", ok ? "PASS" : "FAIL", name, what);
}

static inline uint32_t rd(uint32_t va) { return *(volatile uint32_t *)(uintptr_t)va; }
static inline void wr(uint32_t va, uint32_t v) { *(volatile uint32_t *)(uintptr_t)va = v; }

/* ---- demand paging ---- */
static unsigned demand_faults, demand_bad;
static uint32_t demand_err[DEMAND_PAGES], demand_cr2[DEMAND_PAGES];

static void pf_handler(struct rt_frame *f)
{
    uint32_t cr2 = rt_read_cr2();
    if (cr2 >= VA_DEMAND && cr2 < VA_DEMAND + DEMAND_PAGES * PAGE_SIZE) {
        unsigned i = (cr2 - VA_DEMAND) / PAGE_SIZE;
        if (demand_faults < DEMAND_PAGES) {
            demand_err[demand_faults] = f->error;
            demand_cr2[demand_faults] = cr2;
        }
        demand_faults++;
        if (f->error & PF_P)
            demand_bad++;
        rt_map_page(pd, VA_DEMAND + i * PAGE_SIZE, A(rt_page_alloc()), PTE_W);
        return;                         /* retry the access */
    }
    rt_trap_default(f);
}

static void test_demand(void)
{
    rt_set_handler(EXC_PF, pf_handler);
    int ok = 1;
    for (unsigned i = 0; i < DEMAND_PAGES; i++) {
        uint32_t va = VA_DEMAND + i * PAGE_SIZE + 16 * i;
        if (i < DEMAND_PAGES / 2)
            ok &= rd(va) == 0;          /* a fresh page reads as zero */
        else
            wr(va, 0xD0000000u + i);
    }
    for (unsigned i = 0; i < DEMAND_PAGES; i++)
        wr(VA_DEMAND + i * PAGE_SIZE + 8, 0xE0000000u + i);
    for (unsigned i = 0; i < DEMAND_PAGES; i++) {
        ok &= rd(VA_DEMAND + i * PAGE_SIZE + 8) == 0xE0000000u + i;
        if (i >= DEMAND_PAGES / 2)
            ok &= rd(VA_DEMAND + i * PAGE_SIZE + 16 * i) == 0xD0000000u + i;
    }
    int faults_ok = demand_faults == DEMAND_PAGES && !demand_bad;
    int codes_ok = 1;
    for (unsigned i = 0; i < DEMAND_PAGES && faults_ok; i++)
        codes_ok &= demand_cr2[i] == VA_DEMAND + i * PAGE_SIZE + 16 * i &&
                    demand_err[i] == (i < DEMAND_PAGES / 2 ? 0u : PF_W);
    rt_set_handler(EXC_PF, 0);
    report("demand paging", ok && faults_ok,
           "16 untouched pages: one #PF each, the handler maps a zeroed page and the access resumes");
    report("demand fault codes", faults_ok && codes_ok,
           "CR2 = the address touched, error 0 for reads and 2 for writes");
    if (!faults_ok || !codes_ok)
        printf("  got: %u faults (%u protection)\n", demand_faults, demand_bad);
}

/* ---- accessed / dirty ---- */
static void test_accessed_dirty(void)
{
    uint32_t *pte = rt_pte(pd, VA_PAGE, 0);
    uint32_t *pde = &pd[PD_INDEX(VA_PAGE)];
    int ok;

    *pte &= ~(PTE_A | PTE_D);
    *pde &= ~PTE_A;
    rt_invlpg(VA_PAGE);
    (void)rd(VA_PAGE);
    ok = (*pte & (PTE_A | PTE_D)) == PTE_A && (*pde & PTE_A);
    report("accessed on read", ok, "a read sets A in the PTE and in the PDE, not D");
    wr(VA_PAGE + 4, 1);
    report("dirty on write", (*pte & (PTE_A | PTE_D)) == (PTE_A | PTE_D), "a write sets D");

    *pte &= ~(PTE_A | PTE_D);
    rt_invlpg(VA_PAGE);
    (void)rd(VA_PAGE);
    ok = (*pte & (PTE_A | PTE_D)) == PTE_A;
    wr(VA_PAGE + 4, 2);
    ok &= (*pte & (PTE_A | PTE_D)) == (PTE_A | PTE_D);
    report("accessed/dirty again", ok, "cleared by software + INVLPG: set again by the next read and write");

    uint32_t *lpde = &pd[PD_INDEX(VA_LARGE)];
    *lpde &= ~(PTE_A | PTE_D);
    rt_invlpg(VA_LARGE);
    (void)rd(VA_LARGE + 0x2000);
    ok = (*lpde & (PTE_A | PTE_D)) == PTE_A;
    wr(VA_LARGE + 0x2000, 3);
    ok &= (*lpde & (PTE_A | PTE_D)) == (PTE_A | PTE_D);
    report("4 MiB accessed/dirty", ok, "a 4 MiB page keeps A and D in its PDE");
}

static void test_wp(void)
{
    struct rt_fault f;
    rt_write_cr0(rt_read_cr0() | CR0_WP);
    rt_flush_tlb();
    if (RT_TRY(&f)) {
        wr(VA_RO, 0x11);
        rt_try_end();
    }
    int ok = f.vector == EXC_PF && f.error == (PF_P | PF_W) && f.cr2 == VA_RO;
    report("wp on", ok, "CR0.WP=1: ring-0 write to a read-only page faults, error 3");
    rt_write_cr0(rt_read_cr0() & ~CR0_WP);
    rt_flush_tlb();
    if (RT_TRY(&f)) {
        wr(VA_RO, 0x22);
        rt_try_end();
    }
    ok = f.vector == RT_NO_FAULT && rd(VA_RO) == 0x22;
    report("wp off", ok, "CR0.WP=0: the same write succeeds");
    rt_write_cr0(rt_read_cr0() | CR0_WP);
    rt_flush_tlb();
}

static void test_invlpg(uint32_t *p1, uint32_t *p2)
{
    uint32_t *pte = rt_pte(pd, VA_SWAP, 0);
    (void)rd(VA_SWAP);                                  /* cache the translation */
    *pte = A(p2) | PTE_P | PTE_W;
    rt_invlpg(VA_SWAP);
    report("invlpg", rd(VA_SWAP) == p2[0], "PTE changed to another page + INVLPG: the new page is seen");
    *pte = A(p1) | PTE_P | PTE_W;
    rt_flush_tlb();
    report("cr3 reload", rd(VA_SWAP) == p1[0], "PTE changed back + CR3 reload: the old page is seen again");

    struct rt_fault f;
    rt_unmap_page(pd, VA_SWAP);
    if (RT_TRY(&f)) {
        (void)rd(VA_SWAP + 0x40);
        rt_try_end();
    }
    int ok = f.vector == EXC_PF && f.error == 0 && f.cr2 == VA_SWAP + 0x40;
    report("unmap", ok, "PTE cleared + INVLPG: the next read faults (not present)");
    rt_map_page(pd, VA_SWAP, A(p1), PTE_W);
}

static void test_global(uint32_t *p1, uint32_t *p2)
{
    rt_write_cr4(rt_read_cr4() | CR4_PGE);
    rt_map_page(pd, VA_GLOBAL, A(p1), PTE_W | PTE_G);
    rt_map_page(pd, VA_NONGLOB, A(p1), PTE_W);
    rt_invlpg(VA_GLOBAL);
    rt_invlpg(VA_NONGLOB);
    (void)rd(VA_GLOBAL);
    (void)rd(VA_NONGLOB);
    rt_map_page(pd, VA_GLOBAL, A(p2), PTE_W | PTE_G);
    rt_map_page(pd, VA_NONGLOB, A(p2), PTE_W);
    rt_flush_tlb();
    report("global: cr3 reload", rd(VA_NONGLOB) == p2[0],
           "CR4.PGE=1: after a CR3 reload a changed non-global PTE is seen");
    rt_invlpg(VA_GLOBAL);
    report("global: invlpg", rd(VA_GLOBAL) == p2[0], "INVLPG removes a global translation");
    rt_map_page(pd, VA_GLOBAL, A(p1), PTE_W | PTE_G);
    rt_invlpg(VA_GLOBAL);
    (void)rd(VA_GLOBAL);
    rt_map_page(pd, VA_GLOBAL, A(p2), PTE_W | PTE_G);
    rt_write_cr4(rt_read_cr4() & ~CR4_PGE);
    rt_write_cr4(rt_read_cr4() | CR4_PGE);
    report("global: pge toggle", rd(VA_GLOBAL) == p2[0],
           "clearing and setting CR4.PGE flushes global translations too");
    rt_write_cr4(rt_read_cr4() & ~CR4_PGE);
}

static void test_cr3_switch(void)
{
    uint32_t *pd2 = rt_pd_create();
    for (unsigned i = 0; i < 1024; i++)
        pd2[i] = pd[i];                             /* share the kernel mappings */
    uint32_t *a = rt_page_alloc(), *b = rt_page_alloc();
    a[0] = 0xAAAA0001;
    b[0] = 0xBBBB0002;
    rt_map_page(pd, VA_PERPD, A(a), PTE_W);
    rt_map_page(pd2, VA_PERPD, A(b), PTE_W);
    uint32_t v1 = rd(VA_PERPD);
    rt_write_cr3(A(pd2));
    uint32_t v2 = rd(VA_PERPD);
    uint32_t m2 = marker;
    rt_write_cr3(A(pd));
    uint32_t v3 = rd(VA_PERPD);
    report("cr3 switch", v1 == a[0] && v2 == b[0] && v3 == a[0] && m2 == 0x600DF00D,
           "two page directories map one address to two pages; MOV CR3 switches between them");
}

int main(void)
{
    rt_cpu_init();
    pd = rt_pd_kernel(8u << 20);                    /* 0-4 MiB in 4 KiB pages, 4-8 MiB large */
    rt_map_large(pd, VA_LARGE, 0x400000, PTE_W);
    rt_map_large(pd, HIGH, 0, PTE_W);               /* 0xC0000000 -> 0 */
    uint32_t *p1 = rt_page_alloc(), *p2 = rt_page_alloc(), *page = rt_page_alloc(),
             *ro = rt_page_alloc();
    p1[0] = 0x11110001;
    p2[0] = 0x22220002;
    rt_map_page(pd, VA_PAGE, A(page), PTE_W);
    rt_map_page(pd, VA_RO, A(ro), 0);
    rt_map_page(pd, VA_SWAP, A(p1), PTE_W);
    rt_paging_enable(pd, 1);

    report("paging on", (rt_read_cr0() & CR0_PG) && marker == 0x600DF00D,
           "CR0.PG=1: the identity-mapped kernel keeps running and reads its data");

    wr(VA_PAGE + 0x10, 0x12345678);
    report("4 KiB page", page[4] == 0x12345678, "a write through 50000010 lands in the mapped page");
    wr(VA_LARGE + 0x123454, 0x9ABCDEF0);
    report("4 MiB page", rd(0x400000 + 0x123454) == 0x9ABCDEF0,
           "a write through 40123454 (4 MiB page) lands at physical 00523454");

    uint32_t eip = hh_run();
    report("higher half", eip == A(hh_label) + HIGH,
           "a jump to the alias at 0xC0000000 + address runs the code there (EIP = alias)");
    wr(A(&marker) + HIGH, 0x0BADCAFE);
    report("higher half data", marker == 0x0BADCAFE, "a write through the alias is seen at the identity address");
    marker = 0x600DF00D;

    test_demand();
    test_accessed_dirty();
    test_wp();
    test_invlpg(p1, p2);
    test_global(p1, p2);
    test_cr3_switch();

    printf("paging: %u/%u checks passed\n", passed, total);
    return passed == total ? 0 : 1;
}
