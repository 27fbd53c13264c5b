/*
 * exceptions/snippets.S - the instructions that raise each exception.
 *
 * Every snippet marks the instruction it is about (NAME_insn) and, for
 * traps, the instruction after it (NAME_next), so that the C driver can
 * check the saved EIP exactly.  Ring-0 snippets are C-callable functions
 * `void t_NAME(void *arg)`; a faulting one never returns (the fault is
 * caught with rt_try_call).  Ring-3 snippets (u_NAME, in .user.text) are
 * entered with rt_user_run and end with the exit system call or a fault.
 *
 * One deliberate x87 instruction: x87_deliberate_fwait (FWAIT with CR0.MP
 * and CR0.TS set raises #NM).  check_qemu.sh allows x87 instructions only
 * inside functions named x87_deliberate_*.
 */
#include "exceptions.h"

#define GLOBAL(x) .globl x; x
#define FUNC(x) .globl x; .type x, @function; x

        .text

/* ---- #DE ---- */
FUNC(t_div0):
        movl    $1, %eax
        xorl    %edx, %edx
        xorl    %ecx, %ecx
GLOBAL(t_div0_insn):
        divl    %ecx
        ret

FUNC(t_idiv_overflow):
        movl    $0x80000000, %eax       /* EDX:EAX = -2^31 */
        movl    $0xFFFFFFFF, %edx
        movl    $-1, %ecx               /* quotient +2^31 does not fit */
GLOBAL(t_idiv_insn):
        idivl   %ecx
        ret

/* ---- #DB: set TF with POPF; the trap comes after the next instruction ---- */
FUNC(t_single_step):
        pushfl
        orl     $0x100, (%esp)
        popfl
GLOBAL(t_step_insn):
        movl    $1, %eax                /* executes, then #DB */
GLOBAL(t_step_next):
        movl    $2, %eax                /* the handler has cleared TF */
        movl    $3, %eax
        ret

/* ---- #BP ---- */
FUNC(t_int3):
GLOBAL(t_int3_insn):
        int3
GLOBAL(t_int3_next):
        nop
GLOBAL(t_int3b_insn):
        .byte   0xCD, 0x03              /* int $3, the two-byte form */
GLOBAL(t_int3b_next):
        ret

/* ---- #OF ---- */
FUNC(t_into):
        movl    $0x7FFFFFFF, %eax
        addl    $1, %eax                /* OF=1 */
GLOBAL(t_into_insn):
        into
GLOBAL(t_into_next):
        xorl    %eax, %eax              /* OF=0 */
GLOBAL(t_into_clear):
        into                            /* no trap */
        ret

/* ---- #BR ---- */
FUNC(t_bound_in):
        movl    $10, %eax
        bound   %eax, bounds_0_10
        ret
FUNC(t_bound_out):
        movl    $11, %eax
GLOBAL(t_bound_insn):
        bound   %eax, bounds_0_10
        ret

/* ---- #UD ---- */
FUNC(t_ud2):
GLOBAL(t_ud2_insn):
        ud2
        ret
FUNC(t_ud_ff7):
GLOBAL(t_ud_ff7_insn):
        .byte   0xFF, 0xFF              /* FF /7: no such instruction */
        ret
FUNC(t_ud_lock):
GLOBAL(t_ud_lock_insn):
        .byte   0xF0                    /* LOCK with a register destination */
        addl    %ebx, %eax
        ret

/* ---- #NM: the guest's one x87 instruction ---- */
FUNC(x87_deliberate_fwait):
        fwait
        ret
        .size   x87_deliberate_fwait, . - x87_deliberate_fwait

/* ---- #DF: a #GP whose gate is not present (the driver clears it) ---- */
FUNC(t_double_fault):
        movl    $SEL_BEYOND, %eax
        movl    %eax, %ds               /* #GP -> #NP(gate 13) -> #DF */
        ret

/* ---- #NP ---- */
FUNC(t_np_ds):
        movl    $SEL_NP_DATA, %eax
GLOBAL(t_np_ds_insn):
        movl    %eax, %ds
        ret
FUNC(t_np_gs):
        movl    $SEL_NP_DATA, %eax
GLOBAL(t_np_gs_insn):
        movl    %eax, %gs
        ret

/* ---- #SS ---- */
FUNC(t_ss_np):
        movl    $SEL_NP_STACK, %eax
GLOBAL(t_ss_np_insn):
        movl    %eax, %ss
        ret
FUNC(t_ss_limit):
        movl    $SEL_SS_64M, %eax       /* the stack is below 64 MiB: fine */
        movl    %eax, %ss
        movl    %ss:0x03FFFFFC, %eax    /* last dword inside the limit */
GLOBAL(t_ss_limit_insn):
        movl    %ss:0x03FFFFFE, %eax    /* crosses the limit: #SS(0) */
        ret

/* ---- #GP at CPL 0 ---- */
FUNC(t_gp_beyond):
        movl    $SEL_BEYOND, %eax
GLOBAL(t_gp_beyond_insn):
        movl    %eax, %es
        ret
FUNC(t_gp_system):
        movl    $RT_TSS_SEL, %eax
GLOBAL(t_gp_system_insn):
        movl    %eax, %fs
        ret
FUNC(t_gp_ss_rpl):
        movl    $RT_UDATA, %eax         /* RPL 3 and DPL 3 != CPL 0 */
GLOBAL(t_gp_ss_rpl_insn):
        movl    %eax, %ss
        ret
FUNC(t_gp_readonly):
        movl    $SEL_RO_DATA, %eax
        movl    %eax, %es
        movl    %es:scratch, %eax       /* reading is fine */
GLOBAL(t_gp_readonly_insn):
        movl    %eax, %es:scratch
        ret
FUNC(t_gp_limit):
        movl    $SEL_SMALL, %eax
        movl    %eax, %fs
        movl    %fs:0xFFC, %eax         /* bytes 0xFFC-0xFFF: inside */
GLOBAL(t_gp_limit_insn):
        movl    %fs:0xFFD, %eax         /* byte 0x1000 is past the limit */
        ret
FUNC(t_gp_null):
        xorl    %eax, %eax
        movl    %eax, %gs               /* loading null is allowed ... */
GLOBAL(t_gp_null_insn):
        movl    %gs:0, %eax             /* ... using it is not */
        ret

/* ---- #PF at CPL 0 ---- */
FUNC(t_pf_read):
GLOBAL(t_pf_read_insn):
        movl    VA_NOT_PRESENT + 0x10, %eax
        ret
FUNC(t_pf_write):
GLOBAL(t_pf_write_insn):
        movl    %eax, VA_NOT_PRESENT + 0x24
        ret
FUNC(t_pf_ro):
        movl    VA_SUPER_RO, %eax       /* present: the read works */
GLOBAL(t_pf_ro_insn):
        movl    %eax, VA_SUPER_RO + 8   /* CR0.WP=1: #PF */
        ret
FUNC(t_pf_fetch):
        movl    $VA_NO_CODE, %eax
        call    *%eax                   /* #PF at the target, EIP = target */
        ret

/* ---- #AC at CPL 0: never (alignment checks apply at CPL 3 only) ---- */
FUNC(t_ac_ring0):
        pushfl
        orl     $0x40000, (%esp)        /* EFLAGS.AC */
        popfl
        movl    1(%esp), %eax           /* misaligned, CPL 0: no #AC */
        pushfl
        andl    $~0x40000, (%esp)
        popfl
        ret

        .section .rodata
        .p2align 3
bounds_0_10:
        .long   0, 10

        .data
        .p2align 2
GLOBAL(scratch):
        .long   0x5A5A5A5A

/* =========================== ring 3 ================================ */
        .section .user.text, "ax"

FUNC(u_hlt):
GLOBAL(u_hlt_insn):
        hlt
        jmp     u_exit
FUNC(u_mov_cr0):
GLOBAL(u_mov_cr0_insn):
        movl    %cr0, %eax
        jmp     u_exit
FUNC(u_int40):
GLOBAL(u_int40_insn):
        int     $0x40                   /* gate DPL 0 < CPL 3: #GP(0x40*8+2) */
        jmp     u_exit

FUNC(u_pf_super):
GLOBAL(u_pf_super_insn):
        movl    VA_SUPER_RO, %eax       /* supervisor page: #PF, U=1 */
        jmp     u_exit
FUNC(u_pf_user_ro):
        movl    VA_USER_RO, %eax        /* user read-only page: read works */
GLOBAL(u_pf_user_ro_insn):
        movl    %eax, VA_USER_RO + 4    /* write: #PF P|W|U */
        jmp     u_exit

FUNC(u_ac):
        pushfl
        orl     $0x40000, (%esp)        /* AC can be set at any CPL */
        popfl
GLOBAL(u_ac_insn):
        movl    1(%esp), %eax           /* CR0.AM=1, AC=1, CPL 3: #AC(0) */
        jmp     u_exit
FUNC(u_ac_clear):
        movl    1(%esp), %eax           /* AC=0: no check */
        movl    $0x600D, %ebx
        jmp     u_exit_ebx

/* #TS: INT 0x80 with TSS.SS0 pointing at a code segment.  The #TS gate
 * leads to u_ts_handler through a conforming segment, so it runs at CPL 3
 * on this stack; it repairs SS0 (paging is off for this test, so ring 3
 * may write the TSS) and returns to the INT, which then works. */
FUNC(u_ts):
        movl    $0, %eax                /* RT_SYS_EXIT */
        movl    $0x7575, %ebx
GLOBAL(u_ts_insn):
        int     $0x80
        jmp     .

FUNC(u_ts_handler):
        pushl   %eax
        movl    4(%esp), %eax
        movl    %eax, u_ts_error
        movl    8(%esp), %eax
        movl    %eax, u_ts_eip
        movl    $0, u_ts_cs
        movw    %cs, u_ts_cs
        movw    $RT_KDATA, rt_tss + TSS_SS0_OFFSET
        popl    %eax
        addl    $4, %esp                /* the error code */
        iret

u_exit:
        xorl    %ebx, %ebx
u_exit_ebx:
        xorl    %eax, %eax              /* RT_SYS_EXIT */
        int     $0x80
        jmp     .

        .section .user.data, "aw"
        .p2align 2
GLOBAL(u_ts_error):
        .long   0
GLOBAL(u_ts_eip):
        .long   0
GLOBAL(u_ts_cs):
        .long   0
        .p2align 12
GLOBAL(u_stack):
        .skip   4096
GLOBAL(u_stack_top):
