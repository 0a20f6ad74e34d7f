// Process entry: rdi = command line, rsi = own endpoint, rdx = parent (see ukvm/kernel.h).
.section .text.start, "ax"
.globl _start
_start:
    and $-16, %rsp
    call ukvm_user_start
    ud2

// Signal handlers return here (kSysSigSend pushed this address as the handler's return
// address): rsp is just past it, at the SigFrame's `signal`. kSysSigReturn(&frame) puts
// back the interrupted state; it never returns unless the frame is bad.
.globl ukvm_sigreturn
ukvm_sigreturn:
    lea -8(%rsp), %rbx          // the frame
    sub $64, %rsp
    and $-16, %rsp              // the message, 16-byte aligned, below the frame
    movl $0, (%rsp)             // m_source
    movl $24, 4(%rsp)           // m_type = kSysSigReturn
    mov %rbx, 8(%rsp)           // u64[0]
    mov $3, %eax                // SENDREC
    mov $-2, %edi               // to SYSTEM
    mov %rsp, %rsi
    syscall
    ud2
