/*
 * segments/segments.h - this guest's GDT entries, shared by C and assembly.
 */
#ifndef SEGMENTS_H
#define SEGMENTS_H

#include <rt/desc.h>

#define SEL_KCODE2     RT_SEL(6, 0)    /* ring-0 code, flat: a second CS */
#define SEL_CODE_BASED RT_SEL(7, 0)    /* ring-0 code, base CODE_BASE */
#define SEL_SMALL      RT_SEL(8, 0)    /* data, base buf, byte limit 0xFFF */
#define SEL_EXPDOWN32  RT_SEL(9, 0)    /* data, expand-down, limit 0xFFF, B=1 */
#define SEL_EXPDOWN16  RT_SEL(10, 0)   /* data, expand-down, limit 0xFFF, B=0 */
#define SEL_RODATA     RT_SEL(11, 0)   /* read-only data, flat */
#define SEL_XONLY      RT_SEL(12, 0)   /* execute-only code, flat */
#define SEL_CALLGATE   RT_SEL(13, 0)   /* call gate, DPL 3, 2 parameters */
#define SEL_CONFORM    RT_SEL(14, 0)   /* conforming ring-0 code, flat */
#define SEL_CODE16     RT_SEL(15, 0)   /* 16-bit code, base code16_start */
#define SEL_LDT        RT_SEL(16, 0)   /* an LDT with one entry */
#define SEL_UDATA_RO   RT_SEL(17, 0)   /* DPL 3 read-only data */
#define SEL_ADATA      RT_SEL(18, 0)   /* data with the accessed bit clear */
#define SEL_ACODE      RT_SEL(19, 0)   /* code with the accessed bit clear */
#define SEL_NP_DATA    RT_SEL(20, 0)   /* data, not present */
#define SEL_BEYOND     0x0100          /* past the GDT limit */
#define SEL_LDT_DATA   0x0004          /* LDT entry 0 (TI=1): flat data */

#define CODE_BASE      0x00100000      /* base of SEL_CODE_BASED */

#endif
