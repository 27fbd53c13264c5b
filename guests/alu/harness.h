/*
 * alu/harness.h - assembler macros framing each test variant.
 *
 *   void variant(struct alu_io *io);
 *
 *   CASE_BEGIN name   save the caller's registers (PUSHA), remember io and
 *                     ESP, load EAX, ECX, EDX, EBX, ESI, EDI from io->in;
 *                     EBP = io.  Pointer fix-ups (PTR_IN) go here.
 *   CASE_LOAD         EFLAGS = io->in[EFLAGS] (POPF), EBP = io->in[EBP].
 *   ...test code...   may use every register but ESP freely; may push/pop
 *                     (the ESP change is recorded).
 *   CASE_SAVE         record ESP, restore it, store EFLAGS and EBP (these
 *                     two are captured before any further instruction),
 *                     CLD, EBP = io.  Fix-ups of results (PTR_OUT, REL_ESP)
 *                     go here: flags are already saved.
 *   CASE_END          store EAX..EDI and the ESP delta, POPA, return.
 *
 * Pointer registers: a memory operand is addressed through a register
 * holding an *offset* into io->mem; PTR_IN turns it into an address and
 * PTR_OUT back into an offset, so results do not depend on where memory is.
 */
#include "alu.h"

#define IN(r)  (IO_IN + 4 * (r))
#define OUT(r) (IO_OUT + 4 * (r))

.macro CASE_BEGIN name
        .text
        .globl  \name
        .type   \name, @function
        .p2align 4
\name:
        pushal
        movl    36(%esp), %ebp
        movl    %ebp, alu_cur_io
        movl    %esp, alu_saved_esp
        movl    IN(R_EAX)(%ebp), %eax
        movl    IN(R_ECX)(%ebp), %ecx
        movl    IN(R_EDX)(%ebp), %edx
        movl    IN(R_EBX)(%ebp), %ebx
        movl    IN(R_ESI)(%ebp), %esi
        movl    IN(R_EDI)(%ebp), %edi
.endm

.macro CASE_LOAD
        pushl   IN(R_EFLAGS)(%ebp)
        popfl
        movl    IN(R_EBP)(%ebp), %ebp
.endm

.macro CASE_SAVE
        movl    %esp, alu_esp_after
        movl    alu_saved_esp, %esp
        pushfl
        pushl   %ebp
        movl    alu_cur_io, %ebp
        popl    OUT(R_EBP)(%ebp)
        popl    OUT(R_EFLAGS)(%ebp)
        cld
.endm

.macro CASE_END
        movl    %eax, OUT(R_EAX)(%ebp)
        movl    %ecx, OUT(R_ECX)(%ebp)
        movl    %edx, OUT(R_EDX)(%ebp)
        movl    %ebx, OUT(R_EBX)(%ebp)
        movl    %esi, OUT(R_ESI)(%ebp)
        movl    %edi, OUT(R_EDI)(%ebp)
        movl    alu_esp_after, %eax
        subl    alu_saved_esp, %eax
        movl    %eax, IO_ESPD(%ebp)
        popal
        ret
.endm

/* reg = &io->mem[reg]  (before CASE_LOAD; LEA leaves flags alone) */
.macro PTR_IN reg
        leal    IO_MEM(%ebp,\reg), \reg
.endm

/* reg = reg - &io->mem[0]  (after CASE_SAVE) */
.macro PTR_OUT reg
        subl    %ebp, \reg
        subl    $IO_MEM, \reg
.endm

/* the saved EBP is a pointer into io->mem: make it an offset */
.macro PTR_OUT_EBP
        pushl   %eax
        movl    OUT(R_EBP)(%ebp), %eax
        PTR_OUT %eax
        movl    %eax, OUT(R_EBP)(%ebp)
        popl    %eax
.endm

/* reg = reg - ESP before the test code (stack addresses become relative) */
.macro REL_ESP reg
        subl    alu_saved_esp, \reg
.endm
