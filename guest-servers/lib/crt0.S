// Process entry: rdi = command line, rsi = own endpoint, rdx = parent (see ukvm/kernel.h).
.section .text.start, "ax"
.globl _start
_start:
    and $-16, %rsp
    call ukvm_user_start
    ud2
