// Kernel entries and the return to user mode.
//
// Every entry saves the user's registers straight into the current process's Regs: an
// interrupt or exception from ring 3 has the CPU push its frame there (TSS.rsp0 points at
// the end of current's Regs), syscall_entry builds the same frame by hand. The kernel
// then runs on its own stack with interrupts off and leaves through resume_user().
//
// On the PVM host `syscall` from ring 3 jumps to LSTAR without leaving ring 3, so the
// first fetch of syscall_entry faults (#PF, user mode, supervisor page); kernel_trap()
// recognises that fault and treats it as the system call it was.
#include "arch/x86_64/layout.h"

.text
.code64
.globl syscall_entry
syscall_entry:
    mov %rsp, syscall_user_rsp(%rip)
    mov current_regs_top(%rip), %rsp
    pushq $SEL_UDATA
    pushq syscall_user_rsp(%rip)
    push %r11
    pushq $SEL_UCODE
    push %rcx
    pushq $0                    // error
    pushq $VECTOR_SYSCALL
    jmp save_registers

// Interrupts and exceptions: the stub pushes a dummy error code where the CPU does not,
// then the vector.
.macro NOERR vec
.globl vector_\vec
vector_\vec:
    pushq $0
    pushq $\vec
    jmp trap_common
.endm
.macro ERR vec
.globl vector_\vec
vector_\vec:
    pushq $\vec
    jmp trap_common
.endm
NOERR 0
NOERR 1
NOERR 2
NOERR 3
NOERR 4
NOERR 5
NOERR 6
NOERR 7
ERR 8
NOERR 9
ERR 10
ERR 11
ERR 12
ERR 13
ERR 14
NOERR 15
NOERR 16
ERR 17
NOERR 18
NOERR 19
NOERR 20
ERR 21
.irp v, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,128
NOERR \v
.endr

// The general registers in Regs order (rax lowest), below the vector and error code.
.macro PUSH_GPRS
    push %r15
    push %r14
    push %r13
    push %r12
    push %r11
    push %r10
    push %r9
    push %r8
    push %rdi
    push %rsi
    push %rbp
    push %rbx
    push %rdx
    push %rcx
    push %rax
.endm

trap_common:
    testb $3, 24(%rsp)          // the interrupted CS
    jz kernel_trap_entry
save_registers:
    PUSH_GPRS
    lea kernel_stack_top(%rip), %rsp
    cld
    call kernel_trap
    ud2

// From ring 0: an interrupt that woke the idle loop, or a kernel fault.
kernel_trap_entry:
    cmpq $32, (%rsp)
    jb kernel_fault_entry
    mov (%rsp), %rdi
    lea kernel_stack_top(%rip), %rsp
    call kernel_idle_interrupt
    ud2
kernel_fault_entry:
    PUSH_GPRS
    mov %rsp, %rdi
    mov %cr2, %rsi
    and $-16, %rsp
    call kernel_fault
    ud2

// [[noreturn]] void resume_user(Regs* regs): iretq into regs.
.globl resume_user
resume_user:
    mov %rdi, %rsp
    pop %rax
    pop %rcx
    pop %rdx
    pop %rbx
    pop %rbp
    pop %rsi
    pop %rdi
    pop %r8
    pop %r9
    pop %r10
    pop %r11
    pop %r12
    pop %r13
    pop %r14
    pop %r15
    add $16, %rsp               // vector, error
    iretq

// [[noreturn]] void resume_user_sysret(Regs* regs): the same through sysretq, for a
// process whose rcx and r11 died in its own `syscall`.
.globl resume_user_sysret
resume_user_sysret:
    mov %rdi, %rsp
    pop %rax
    add $8, %rsp
    pop %rdx
    pop %rbx
    pop %rbp
    pop %rsi
    pop %rdi
    pop %r8
    pop %r9
    pop %r10
    add $8, %rsp
    pop %r12
    pop %r13
    pop %r14
    pop %r15
    mov 16(%rsp), %rcx          // rip
    mov 32(%rsp), %r11          // rflags
    mov 40(%rsp), %rsp          // user rsp
    sysretq

// [[noreturn]] void idle_halt(): wait for an interrupt (kernel_idle_interrupt).
.globl idle_halt
idle_halt:
    lea kernel_stack_top(%rip), %rsp
1:  sti
    hlt
    cli
    jmp 1b

.globl spurious_interrupt
spurious_interrupt:
    iretq

// Where syscall_entry saves registers: current's Regs (idle_regs while the kernel idles).
.section .data
.align 16
.globl current_regs_top, idle_regs
current_regs_top: .quad idle_regs + REGS_SIZE
idle_regs: .skip REGS_SIZE

.section .bss
.align 8
.globl syscall_user_rsp
syscall_user_rsp: .quad 0

// (vector, handler) pairs for idt.cpp.
.section .rodata
.align 8
.globl vector_table, vector_table_end
vector_table:
.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,128
    .quad \v, vector_\v
.endr
vector_table_end:
