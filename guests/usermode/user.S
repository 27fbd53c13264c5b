/*
 * usermode/user.S - small ring-3 programs for the I/O and EFLAGS checks
 * (section .user.text: mapped user-accessible).  Each ends with the exit
 * system call (EAX=0, EBX=value) unless an instruction faults first.
 */
#define GLOBAL(x) .globl x; x
#define EXIT_EBX  xorl %eax, %eax; int $0x80

        .section .user.text, "ax"

/* IN and OUT on port 0x80, allowed in the I/O bitmap. */
GLOBAL(u_io80):
        inb     $0x80, %al
        outb    %al, $0x80
        movl    $0x80, %ebx
        EXIT_EBX

/* IN from port 0x81, denied. */
GLOBAL(u_io81):
GLOBAL(u_io81_insn):
        inb     $0x81, %al
        movl    $0x81, %ebx
        EXIT_EBX

/* 16-bit IN from 0x80: needs the bits of 0x80 and 0x81. */
GLOBAL(u_io80w):
GLOBAL(u_io80w_insn):
        inw     $0x80, %ax
        movl    $0x8080, %ebx
        EXIT_EBX

GLOBAL(u_cli):
GLOBAL(u_cli_insn):
        cli
        movl    $1, %ebx
        EXIT_EBX

GLOBAL(u_sti):
GLOBAL(u_sti_insn):
        sti
        movl    $1, %ebx
        EXIT_EBX

/* Run with IOPL 3 and IF=1: CLI and STI work, and so does IN from a port
 * the bitmap denies (the bitmap is consulted only when CPL > IOPL).
 * Exit value: bit 0 = IF after CLI, bit 1 = IF after STI (expect 2). */
GLOBAL(u_iopl3):
        cli
        pushfl
        popl    %ebx
        sti
        pushfl
        popl    %ecx
        inb     $0x81, %al
        shrl    $9, %ebx
        andl    $1, %ebx
        shrl    $8, %ecx
        andl    $2, %ecx
        orl     %ecx, %ebx
        EXIT_EBX

/* Run with IOPL 0 and IF=1: POPF of an image with IF=0, IOPL=3 and CF=1.
 * Exit value: bit 0 = IF still 1, bit 1 = IOPL still 0, bit 2 = CF now 1,
 * bit 3 = no fault happened (expect 15). */
GLOBAL(u_popf):
        pushfl
        popl    %eax
        andl    $~0x200, %eax
        orl     $0x3001, %eax
        pushl   %eax
        popfl
        pushfl
        popl    %ecx
        xorl    %ebx, %ebx
        testl   $0x200, %ecx
        jz      1f
        orl     $1, %ebx
1:      testl   $0x3000, %ecx
        jnz     2f
        orl     $2, %ebx
2:      testl   $1, %ecx
        jz      3f
        orl     $4, %ebx
3:      orl     $8, %ebx
        EXIT_EBX
