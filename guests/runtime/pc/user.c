/*
 * runtime/pc/user.c - ring 3 entry and the INT 0x80 dispatcher (rt/user.h).
 */
#include <rt/cpu.h>
#include <rt/desc.h>
#include <rt/paging.h>
#include <rt/platform.h>
#include <rt/rt.h>
#include <rt/trap.h>
#include <rt/user.h>

static rt_jmp_buf user_jb;
static int user_value;
static rt_syscall_fn syscalls[RT_SYSCALL_MAX];

int rt_user_run(uint32_t eip, uint32_t esp, uint32_t eflags)
{
    if (rt_setjmp(user_jb) == 0)
        rt_enter_ring3(eip, esp, eflags | EFL_FIXED);
    return user_value;
}

void rt_user_return(int value)
{
    user_value = value;
    rt_longjmp(user_jb, 1);
}

void rt_user_map_sections(uint32_t *pd)
{
    uint32_t ts = (uint32_t)(uintptr_t)__user_text_start, te = (uint32_t)(uintptr_t)__user_text_end;
    uint32_t ds = (uint32_t)(uintptr_t)__user_data_start, de = (uint32_t)(uintptr_t)__user_data_end;
    rt_identity_map(pd, ts, te, PTE_U);
    rt_identity_map(pd, ds, de, PTE_U | PTE_W);
}

static void sys_exit(struct rt_frame *f)
{
    rt_user_return((int)f->ebx);
}

static void sys_write(struct rt_frame *f)
{
    rt_console_write((const char *)(uintptr_t)f->ebx, f->ecx);
    f->eax = f->ecx;
}

static void syscall_dispatch(struct rt_frame *f)
{
    rt_syscall_fn fn = f->eax < RT_SYSCALL_MAX ? syscalls[f->eax] : 0;
    if (fn)
        fn(f);
    else
        f->eax = 0xFFFFFFFFu;
}

void rt_syscall_set(unsigned nr, rt_syscall_fn fn)
{
    if (nr < RT_SYSCALL_MAX)
        syscalls[nr] = fn;
}

void rt_syscall_init(void)
{
    rt_syscall_set(RT_SYS_EXIT, sys_exit);
    rt_syscall_set(RT_SYS_WRITE, sys_write);
    rt_set_handler(RT_SYSCALL_VECTOR, syscall_dispatch);
    rt_idt_set_default(RT_SYSCALL_VECTOR, SEG_TYPE_INTGATE, 3);
}
