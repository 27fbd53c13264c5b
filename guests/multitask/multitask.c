/*
 * multitask - three ring-3 tasks, each in its own address space (its own
 * page directory; CR3 is switched on every context switch), preempted by
 * the timer (PIT at 10 kHz, round robin) and talking through system calls:
 *
 *   task 0  producer   computes 1000 values and SENDs them
 *   task 1  consumer   RECEIVEs them (blocking), checksums them
 *   task 2  compute    mixes an array on its private page, then spins
 *                      (no system calls) until the kernel's tick count,
 *                      which every task can read on a shared page, has
 *                      advanced by two
 *
 * The kernel keeps a 4-entry message queue: SEND blocks while it is full,
 * RECEIVE while it is empty.  In the first half the producer works 10
 * times longer per message than the consumer, in the second half the
 * other way round, so both kinds of blocking happen.  Every task maps its
 * private stack and data pages at the same addresses (0x40000000 to
 * 0x40002FFF), backed by different physical pages.
 *
 * The output is deterministic: the kernel prints each task's result in a
 * fixed order after all have exited, and checks them against its own
 * computation.  Preemption is checked as a property, never as a count:
 * while the compute task spins, the producer or the consumer is runnable,
 * so the first tick that the spinning task sees must preempt it.  (Under
 * QEMU the tasks run so fast that only a few ticks fall into the run;
 * under a slower implementation every task is preempted many times.)
 */
#include <rt/kernel.h>

#define A(p) ((uint32_t)(uintptr_t)(p))
#define NTASKS  3
#define NMSG    1000
#define QCAP    4
#define HZ      10000
#define VA_STACK 0x40000000u
#define VA_DATA  0x40001000u
#define VA_ARRAY 0x40002000u
#define VA_SHARED 0x40003000u           /* the kernel's tick count, read-only for all tasks */
#define SLOW    100                     /* xorshift rounds per message, slow side */
#define FAST    10
#define COMPUTE_PASSES 20

enum { SYS_EXIT = 0, SYS_SEND = 2, SYS_RECV = 3, SYS_ID = 4 };
enum { RUNNABLE, BLOCKED_SEND, BLOCKED_RECV, DONE };

/* ---- the work, shared by the tasks and by the kernel's own check ---- */
static inline __attribute__((always_inline)) uint32_t mix(uint32_t x, unsigned rounds)
{
    while (rounds--) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
    }
    return x;
}

static inline __attribute__((always_inline)) uint32_t compute(uint32_t *a)
{
    for (uint32_t i = 0; i < 1024; i++)
        a[i] = i * 0x9E3779B9u + 1;
    for (unsigned p = 0; p < COMPUTE_PASSES; p++)
        for (uint32_t i = 0; i < 1024; i++)
            a[i] = (a[i] * 33) ^ a[(i + 7) & 1023] ^ p;
    uint32_t sum = 0;
    for (uint32_t i = 0; i < 1024; i++)
        sum = sum * 31 + a[i];
    return sum;
}

#define PRODUCER_SEED 0x2545F491u
#define MARKER(id)    (0x7A5C0000u | (id))

/* ---- ring 3 ---- */
RT_USER_TEXT static void task_main(void)
{
    uint32_t id = rt_sys0(SYS_ID);
    volatile uint32_t *data = (volatile uint32_t *)VA_DATA;
    data[0] = MARKER(id);                       /* private page: same VA in every task */
    uint32_t sum = 0;
    if (id == 0) {
        uint32_t x = PRODUCER_SEED;
        for (uint32_t i = 0; i < NMSG; i++) {
            x = mix(x, i < NMSG / 2 ? SLOW : FAST);
            rt_sys1(SYS_SEND, x);
            sum = sum * 31 + x;
        }
    } else if (id == 1) {
        for (uint32_t i = 0; i < NMSG; i++) {
            uint32_t v = rt_sys0(SYS_RECV);
            (void)mix(v, i < NMSG / 2 ? FAST : SLOW);   /* work that takes time */
            sum = sum * 31 + v;
        }
    } else {
        sum = compute((uint32_t *)VA_ARRAY);
        volatile uint32_t *kernel_ticks = (volatile uint32_t *)VA_SHARED;
        uint32_t t0 = *kernel_ticks;
        while (*kernel_ticks - t0 < 2)
            ;                                   /* no system call: only the timer */
    }
    rt_sys1(SYS_EXIT, sum);
    for (;;)
        ;
}

/* ---- kernel ---- */
struct task {
    struct rt_frame fr;
    uint32_t *pd;
    uint32_t *data;                     /* the physical page behind VA_DATA */
    int state;
    uint32_t pending;                   /* value of a blocked SEND */
    uint32_t result;
    unsigned preempted;
};

static struct task tasks[NTASKS];
static unsigned current;
static uint32_t queue[QCAP];
static unsigned qhead, qcount, messages, blocked_send, blocked_recv, ticks;
static volatile uint32_t *shared;       /* the page at VA_SHARED */
static unsigned passed, total;

static void report(const char *name, int ok, const char *what)
{
    total++;
    passed += ok;
    printf("%s %s: %s\n", ok ? "PASS" : "FAIL", name, what);
}

/* Save the running task's frame, pick the next runnable task (round robin,
 * starting after the current one) and load its frame and CR3. */
static void schedule(struct rt_frame *f)
{
    tasks[current].fr = *f;
    for (unsigned k = 1; k <= NTASKS; k++) {
        unsigned n = (current + k) % NTASKS;
        if (tasks[n].state == RUNNABLE) {
            if (n != current)
                rt_write_cr3(A(tasks[n].pd));
            current = n;
            *f = tasks[n].fr;
            return;
        }
    }
    for (unsigned n = 0; n < NTASKS; n++)
        if (tasks[n].state != DONE) {
            printf("multitask: deadlock\n");
            exit(1);
        }
    rt_user_return(0);                  /* everybody has exited */
}

static int other_runnable(void)
{
    for (unsigned n = 0; n < NTASKS; n++)
        if (n != current && tasks[n].state == RUNNABLE)
            return 1;
    return 0;
}

static void timer_irq(struct rt_frame *f)
{
    shared[0] = ++ticks;
    rt_pic_eoi(0);
    if (rt_frame_from_user(f) && other_runnable()) {
        tasks[current].preempted++;
        schedule(f);
    }
}

static void sys_id(struct rt_frame *f)
{
    f->eax = current;
}

static void sys_exit(struct rt_frame *f)
{
    tasks[current].state = DONE;
    tasks[current].result = f->ebx;
    schedule(f);
}

static void sys_send(struct rt_frame *f)
{
    uint32_t v = f->ebx;
    f->eax = 0;
    for (unsigned n = 0; n < NTASKS; n++)
        if (tasks[n].state == BLOCKED_RECV) {   /* hand it over directly */
            tasks[n].fr.eax = v;
            tasks[n].state = RUNNABLE;
            messages++;
            return;
        }
    if (qcount < QCAP) {
        queue[(qhead + qcount++) % QCAP] = v;
        messages++;
        return;
    }
    tasks[current].state = BLOCKED_SEND;
    tasks[current].pending = v;
    blocked_send++;
    schedule(f);
}

static void sys_recv(struct rt_frame *f)
{
    if (qcount == 0) {
        tasks[current].state = BLOCKED_RECV;
        blocked_recv++;
        schedule(f);
        return;
    }
    f->eax = queue[qhead];
    qhead = (qhead + 1) % QCAP;
    qcount--;
    for (unsigned n = 0; n < NTASKS; n++)
        if (tasks[n].state == BLOCKED_SEND) {   /* room again: complete its SEND */
            queue[(qhead + qcount++) % QCAP] = tasks[n].pending;
            tasks[n].fr.eax = 0;
            tasks[n].state = RUNNABLE;
            messages++;
            break;
        }
}

static uint32_t kernel_scratch[1024];

int main(void)
{
    rt_cpu_init();
    rt_syscall_init();
    rt_syscall_set(SYS_EXIT, sys_exit);
    rt_syscall_set(SYS_SEND, sys_send);
    rt_syscall_set(SYS_RECV, sys_recv);
    rt_syscall_set(SYS_ID, sys_id);
    rt_irq_set_handler(0, timer_irq);

    /* The kernel part (shared page tables) and the user code, once. */
    uint32_t *kernel_pd = rt_pd_kernel(0);
    rt_user_map_sections(kernel_pd);
    shared = rt_page_alloc();
    for (unsigned n = 0; n < NTASKS; n++) {
        struct task *t = &tasks[n];
        t->pd = rt_pd_create();
        for (unsigned i = 0; i < 1024; i++)
            t->pd[i] = kernel_pd[i];
        rt_map_page(t->pd, VA_STACK, A(rt_page_alloc()), PTE_U | PTE_W);
        t->data = rt_page_alloc();
        rt_map_page(t->pd, VA_DATA, A(t->data), PTE_U | PTE_W);
        rt_map_page(t->pd, VA_ARRAY, A(rt_page_alloc()), PTE_U | PTE_W);
        rt_map_page(t->pd, VA_SHARED, A(shared), PTE_U);
        t->state = RUNNABLE;
        t->fr.eip = A(task_main);
        t->fr.cs = RT_UCODE;
        t->fr.eflags = EFL_FIXED | EFL_IF;
        t->fr.user_esp = VA_STACK + PAGE_SIZE - 16;
        t->fr.user_ss = RT_UDATA;
        t->fr.ds = t->fr.es = t->fr.fs = t->fr.gs = RT_UDATA;
    }

    printf("multitask: %u tasks in %u address spaces, timer at %u Hz\n", NTASKS, NTASKS, HZ);
    rt_paging_enable(tasks[0].pd, 1);
    current = 0;
    rt_pit_start(HZ, 2);
    rt_pic_unmask(0);
    rt_user_run(tasks[0].fr.eip, tasks[0].fr.user_esp, tasks[0].fr.eflags);
    rt_pic_mask(0);
    rt_write_cr3(A(kernel_pd));

    printf("task 0 producer: sent %u messages, checksum %08x\n", NMSG, tasks[0].result);
    printf("task 1 consumer: received %u messages, checksum %08x\n", NMSG, tasks[1].result);
    printf("task 2 compute: result %08x\n", tasks[2].result);

    uint32_t x = PRODUCER_SEED, sum = 0;
    for (uint32_t i = 0; i < NMSG; i++) {
        x = mix(x, i < NMSG / 2 ? SLOW : FAST);
        sum = sum * 31 + x;
    }
    report("messages", messages == NMSG && qcount == 0,
           "1000 messages went through the kernel queue, none left over");
    report("checksums", tasks[0].result == sum && tasks[1].result == sum,
           "producer and consumer checksums equal the kernel's own: every value arrived, in order");
    report("compute", tasks[2].result == compute(kernel_scratch),
           "the compute task's result equals the kernel's own computation");
    int priv = 1;
    for (unsigned n = 0; n < NTASKS; n++)
        priv &= tasks[n].data[0] == MARKER(n);
    report("address spaces", priv,
           "each task's page at 40001000 is its own physical page, holding its own marker");
    if (rt_cmdline_uint("debug", 0))
        printf("debug: %u %u %u preemptions, %u ticks, %u/%u blocked\n", tasks[0].preempted,
               tasks[1].preempted, tasks[2].preempted, ticks, blocked_send, blocked_recv);
    report("preemption", tasks[2].preempted >= 1,
           "the task spinning without system calls was preempted by the timer");
    report("blocking", blocked_send > 0 && blocked_recv > 0,
           "the producer blocked on a full queue and the consumer on an empty one");

    printf("multitask: %u/%u checks passed\n", passed, total);
    return passed == total ? 0 : 1;
}
