/*
 * sensitive/far.S - far transfers within ring 0 for the probes.
 *
 * uint32_t far_call(void): LCALL 0030:far_target; returns
 *   (CS in the callee) << 16 | CS after the LRET.
 * uint32_t far_jmp(void): LJMP to 0030 and back; returns
 *   (CS there) << 16 | CS after.
 */
        .text
        .globl  far_call, far_jmp
        .type   far_call, @function
far_call:
        lcall   $0x30, $far_target
        shll    $16, %eax
        movw    %cs, %ax
        ret
far_target:
        xorl    %eax, %eax
        movw    %cs, %ax
        lret

        .type   far_jmp, @function
far_jmp:
        xorl    %eax, %eax
        ljmp    $0x30, $1f
1:      movw    %cs, %ax
        ljmp    $0x08, $2f
2:      shll    $16, %eax
        movw    %cs, %ax
        ret
