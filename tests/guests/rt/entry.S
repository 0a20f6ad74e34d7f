// Multiboot v1 entry for the test guests: 32-bit protected mode in, 64-bit long mode out.
//
// Everything here runs before the guest's first ring-3 entry, which this host's KVM
// emulates instruction by instruction, so the page tables and GDT are static data built
// by the assembler and the stub itself is a couple of dozen instructions.

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003  // bit 0: page-align modules; bit 1: memory info wanted
#define PTE_FLAGS 0x7        // present, writable, user (hcbench may drop to ring 3)
#define PDE_2M_FLAGS 0x87    // the same, 2 MiB page

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

// The first 4 GiB identity mapped with 2 MiB pages, RAM, the 3-4 GiB hole and all, so the
// `unmapped` guest can reach guest-physical addresses the VMM has no memory for.
    .section .data.paging, "aw"
    .balign 4096
pml4:
    .quad pdpt + PTE_FLAGS
    .fill 511, 8, 0
pdpt:
    .quad pd + 0 * 4096 + PTE_FLAGS
    .quad pd + 1 * 4096 + PTE_FLAGS
    .quad pd + 2 * 4096 + PTE_FLAGS
    .quad pd + 3 * 4096 + PTE_FLAGS
    .fill 508, 8, 0
pd:
    .set page, 0
    .rept 4 * 512
    .quad (page << 21) + PDE_2M_FLAGS
    .set page, page + 1
    .endr

// Accessed bits preset so loading a selector never writes the GDT.
    .section .data.gdt, "aw"
    .balign 16
    .globl rt_gdt
rt_gdt:
    .quad 0
    .quad 0x00af9b000000ffff  // 0x08 kernel code, 64-bit
    .quad 0x00cf93000000ffff  // 0x10 kernel data
    .quad 0x00affb000000ffff  // 0x18 user code, 64-bit, DPL 3
    .quad 0x00cff3000000ffff  // 0x20 user data, DPL 3
rt_gdt_end:
    .balign 4
    .word 0
gdt_ptr:
    .word rt_gdt_end - rt_gdt - 1
    .long rt_gdt

    .section .bss.stack, "aw", @nobits
    .balign 16
stack_bottom:
    .skip 16384
stack_top:

    .section .text.entry, "ax"
    .code32
    .globl _start
_start:
    // EAX = bootloader magic, EBX = multiboot info address: keep them for guest_main.
    mov %eax, %edi
    mov %ebx, %esi
    lgdt gdt_ptr
    mov $pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax  // PAE
    mov %eax, %cr4
    mov $0xC0000080, %ecx  // EFER
    mov $0x100, %eax       // LME
    xor %edx, %edx
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax  // PG | PE
    mov %eax, %cr0
    ljmp $0x08, $long_mode

    .code64
long_mode:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    mov $stack_top, %esp
    // The upper halves of registers are undefined after the mode switch.
    mov %edi, %edi
    mov %esi, %esi
    call rt_entry
1:  cli
    hlt
    jmp 1b

// rt_enter_ring3(fn, stack_top): iretq to fn in ring 3 with IOPL 3, so port I/O
// (hypercalls, the UART, isa-debug-exit) keeps working there. Does not return.
    .globl rt_enter_ring3
rt_enter_ring3:
    pushq $0x23     // SS: user data | RPL 3
    pushq %rsi      // RSP
    pushq $0x3002   // RFLAGS: IOPL 3, interrupts off
    pushq $0x1b     // CS: user code | RPL 3
    pushq %rdi      // RIP
    iretq

    .section .note.GNU-stack, "", @progbits
