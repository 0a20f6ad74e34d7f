// Constants shared by the kernel's assembly and C++: selectors, control bits, the fixed
// virtual addresses. Plain #defines because the assembler includes this file too.
#pragma once

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UBASE 0x18 /* STAR[63:48]: sysret takes SS = +8, CS = +16 */
#define SEL_UDATA (0x20 | 3)
#define SEL_UCODE (0x28 | 3)
#define SEL_TSS 0x30

#define CR0_PE 0x1
#define CR0_MP 0x2
#define CR0_EM 0x4
#define CR0_NE 0x20
#define CR0_ET 0x10
#define CR0_WP 0x10000
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define CR4_PGE 0x80
#define CR4_OSFXSR 0x200
#define CR4_OSXMMEXCPT 0x400

#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_FMASK 0xc0000084
#define EFER_SCE 0x1
#define EFER_LME 0x100
#define EFER_NXE 0x800

#define RFLAGS_RESERVED 0x2
#define RFLAGS_TF 0x100
#define RFLAGS_IF 0x200
#define RFLAGS_DF 0x400
#define RFLAGS_NT 0x4000
#define RFLAGS_AC 0x40000

#define PTE_P 0x1
#define PTE_W 0x2
#define PTE_U 0x4
#define PTE_PWT 0x8
#define PTE_PCD 0x10
#define PTE_PS 0x80
#define PTE_G 0x100

#define KERNEL_STACK_SIZE 16384

#define VECTOR_SYSCALL 0x100 /* Regs.vector of a `syscall` entry */
#define VECTOR_INT80 0x80    /* the alternative system-call gate */

/* struct Regs (proc.hpp) */
#define REGS_SIZE 176
