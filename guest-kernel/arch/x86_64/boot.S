// Multiboot entry: 32-bit protected mode -> long mode -> kernel_boot(). On the PVM host
// every ring-0 instruction is emulated (~0.5 us each), so this path is a few dozen
// instructions and the boot page tables are static data: no loops.
#include "arch/x86_64/layout.h"

.set MB_MAGIC, 0x1BADB002
.set MB_FLAGS, 0x00000003          // page-aligned modules, memory map
.section .multiboot, "a"
.align 4
.long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

.section .boot, "ax"
.code32
.globl _start
_start:
    mov %eax, %edi
    rdtsc
    mov %eax, boot_tsc
    mov %edx, boot_tsc + 4                  // multiboot magic
    mov %ebx, %esi                  // multiboot info
    mov $(CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0x80000001, %eax           // NX available? (edx bit 20)
    cpuid
    mov %edx, %ebp
    mov $MSR_EFER, %ecx
    rdmsr
    or $(EFER_LME | EFER_SCE), %eax
    bt $20, %ebp
    jnc 1f
    or $EFER_NXE, %eax
1:  wrmsr
    mov $(CR0_PE | CR0_PG | CR0_WP | CR0_MP | CR0_NE | CR0_ET), %eax
    mov %eax, %cr0
    lgdt gdt_pointer
    ljmp $SEL_KCODE, $long_entry

.code64
long_entry:
    mov $SEL_KDATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    lea kernel_stack_top(%rip), %rsp
    mov %edi, boot_magic(%rip)
    mov %esi, boot_info(%rip)
    // TSS descriptor base (the linker cannot split a relocated address into fields).
    lea tss(%rip), %rax
    mov %ax, gdt_tss + 2(%rip)
    shr $16, %rax
    mov %al, gdt_tss + 4(%rip)
    mov %ah, gdt_tss + 7(%rip)
    mov $SEL_TSS, %eax
    ltr %ax
    // syscall: STAR selects the selectors, LSTAR the entry, FMASK clears IF/TF/DF/AC.
    mov $MSR_STAR, %ecx
    xor %eax, %eax
    mov $((SEL_UBASE << 16) | SEL_KCODE), %edx
    wrmsr
    mov $MSR_LSTAR, %ecx
    mov $syscall_entry, %eax
    xor %edx, %edx
    wrmsr
    mov $MSR_FMASK, %ecx
    mov $(RFLAGS_IF | RFLAGS_TF | RFLAGS_DF | RFLAGS_AC | RFLAGS_NT), %eax
    wrmsr
    call kernel_boot
    ud2

.section .data
.align 16
gdt:
    .quad 0
    .quad 0x00af9a000000ffff        // 0x08 kernel code, 64-bit
    .quad 0x00cf92000000ffff        // 0x10 kernel data
    .quad 0x00cffa000000ffff        // 0x18 user code 32-bit (sysret's base, unused)
    .quad 0x00cff2000000ffff        // 0x20 user data
    .quad 0x00affa000000ffff        // 0x28 user code, 64-bit
gdt_tss:
    .quad 0x0000890000000067        // 0x30 TSS (base filled in at boot)
    .quad 0
gdt_end:
.align 8
    .word 0, 0, 0
gdt_pointer:
    .word gdt_end - gdt - 1
    .quad gdt

.globl boot_magic, boot_info, boot_tsc
.align 8
boot_tsc: .quad 0
boot_magic: .long 0
boot_info: .long 0

// Static page tables: the first GiB identity-mapped (supervisor, 2 MiB pages) and the
// device window at 0xfec00000 (IOAPIC, LAPIC; uncached).
.section .data.pagetables, "aw"
.align 4096
.globl boot_pml4, kernel_pd, device_pd
boot_pml4:
    .quad boot_pdpt + (PTE_P | PTE_W | PTE_U)
    .fill 511, 8, 0
boot_pdpt:
    .quad kernel_pd + (PTE_P | PTE_W)
    .quad 0
    .quad 0
    .quad device_pd + (PTE_P | PTE_W)
    .fill 508, 8, 0
kernel_pd:
    .set i, 0
    .rept 512
    .quad (i << 21) | (PTE_P | PTE_W | PTE_PS | PTE_G)
    .set i, i + 1
    .endr
device_pd:
    .fill 502, 8, 0
    .quad 0xfec00000 | (PTE_P | PTE_W | PTE_PS | PTE_PCD | PTE_PWT)
    .quad 0xfee00000 | (PTE_P | PTE_W | PTE_PS | PTE_PCD | PTE_PWT)
    .fill 8, 8, 0

.section .bss
.align 16
.globl tss
tss:            // rsp0 (offset 4) = the end of current's Regs: see sched.cpp
    .skip 0x68
.align 4096
.globl kernel_stack_top
kernel_stack:
    .skip KERNEL_STACK_SIZE
kernel_stack_top:
