// The minimal user runtime for guest programs: IPC wrappers, kernel calls, console output
// (through TTY or the VMM endpoint), and a small printf. Programs define `int main(const char*
// args)`.
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <ukvm/hypercall.h>
#include <ukvm/kernel.h>

extern "C" {
void* memcpy(void* dst, const void* src, size_t n);
void* memmove(void* dst, const void* src, size_t n);
void* memset(void* dst, int c, size_t n);
int memcmp(const void* a, const void* b, size_t n);
size_t strlen(const char* s);
}

int main(const char* args);

namespace user {

using ukvm::kernel::Endpoint;
using ukvm::kernel::Message;

// The raw system call.
inline int32_t ipc(int32_t op, Endpoint e, Message* m) {
    int64_t r;
    asm volatile("syscall" : "=a"(r) : "a"(op), "D"(e), "S"(m) : "rcx", "r11", "memory");
    return static_cast<int32_t>(r);
}
inline int32_t send(Endpoint e, Message* m) {
    return ipc(ukvm::kernel::kSend, e, m);
}
inline int32_t sendnb(Endpoint e, Message* m) {
    return ipc(ukvm::kernel::kSendNb, e, m);
}
inline int32_t receive(Endpoint e, Message* m) {
    return ipc(ukvm::kernel::kReceive, e, m);
}
inline int32_t sendrec(Endpoint e, Message* m) {
    return ipc(ukvm::kernel::kSendRec, e, m);
}
inline int32_t notify(Endpoint e) {
    return ipc(ukvm::kernel::kNotify, e, nullptr);
}
// SENDNB m to dst, then RECEIVE from src into m (not MINIX; see ukvm/kernel.h). Like any
// SENDNB reply, only for a client that waits in SENDREC.
inline int32_t reply_recv(Endpoint dst, Endpoint src, Message* m) {
    int64_t r;
    asm volatile("syscall"
                 : "=a"(r)
                 : "a"(ukvm::kernel::kReplyRecv), "D"(dst), "S"(m), "d"(src)
                 : "rcx", "r11", "memory");
    return static_cast<int32_t>(r);
}

// SENDREC to SYSTEM: the IPC error, or the call's result (the reply's m_type).
int32_t kernel_call(int32_t call, Message* m);

Endpoint self();
Endpoint parent();
const char* args();  // the command line after the program's path

// Console output. A user program's goes through TTY (kTtyWrite), which sends it out through
// the console driver (the virtio-console) when there is one; a server's, and anyone's when
// there is no TTY, goes straight to the VMM endpoint (write_direct: the hypercall console,
// COM1 on QEMU).
void write(const char* s, size_t n);
void write_direct(const char* s, size_t n);
void forget_console_grant();  // in a forked child (sys::fork calls it)
void print(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
size_t format(char* buf, size_t size, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
size_t vformat(char* buf, size_t size, const char* fmt, va_list ap);

// A simple server's main loop: answers RS's heartbeat (a notification from the parent),
// ignores other notifications, and replies to every request with handle's result as
// m_type (handle may fill in the rest of the message).
[[noreturn]] void serve(int32_t (*handle)(Message& m));

uint64_t uptime_ns();
// Waits for delay_ns using the CLOCK's alarm (needs RECEIVE: servers only).
void sleep_ns(uint64_t delay_ns);
[[noreturn]] void exit(int status);
// Ends the whole VM with status (the VMM's halt call).
[[noreturn]] void halt(int status);
// Reboots the whole VM (the VMM's kReboot call: ukvm exits 4, ukvmd applies <on_reboot>).
[[noreturn]] void reboot();

Endpoint spawn(const char* program);  // negative: an error
Endpoint find(const char* program);   // kNone when no such process runs
void set_name(Message* m, const char* name);

inline uint64_t rdtsc() {
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t{hi} << 32) | lo;
}

}  // namespace user
