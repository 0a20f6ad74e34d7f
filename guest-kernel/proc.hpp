// The process table: one Proc per slot, kernel tasks (negative numbers) first. A Proc is
// the saved CPU state, the IPC state machine and the scheduling state of one process.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <ukvm/kernel.h>

#include "address_space.hpp"
#include "priv.hpp"

namespace kernel {

using ukvm::kernel::Endpoint;
using ukvm::kernel::Message;

// Layout fixed by entry.S: general registers, the entry's vector and error code, then the
// iretq frame the CPU pushes (TSS.rsp0 points just past it).
struct Regs {
    uint64_t rax, rcx, rdx, rbx, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;
};
static_assert(sizeof(Regs) == 176);

// Why a process cannot run (MINIX's RTS flags); a process runs when none is set.
enum Blocked : uint32_t {
    kSlotFree = 1u << 0,
    kSending = 1u << 1,    // blocked in SEND, queued on send_to's callers
    kReceiving = 1u << 2,  // blocked in RECEIVE from get_from
};

inline constexpr int kNrSlots = ukvm::kernel::kNrTasks + ukvm::kernel::kNrProcs;
inline constexpr int kMaxGrants = 16;
inline constexpr int kNameLen = 16;

struct Grant {
    Endpoint grantee = ukvm::kernel::kNone;  // kNone: an unused entry
    uint64_t addr = 0;
    uint64_t len = 0;
    uint64_t rights = 0;
};

// 16-byte aligned: TSS.rsp0 points at the end of regs, and the CPU aligns the stack down
// to 16 bytes before pushing an interrupt frame.
struct alignas(16) Proc {
    Regs regs;  // first: entry.S saves into it

    int32_t nr = 0;  // process number (slot); negative for kernel tasks
    Endpoint endpoint = 0;
    uint32_t blocked = kSlotFree;
    bool reply_pending = false;       // in SENDREC: only the reply may end the receive
    bool entered_by_syscall = false;  // rcx and r11 are dead: sysretq may return
    char name[kNameLen] = {};
    Priv priv;
    Endpoint parent = ukvm::kernel::kNone;
    int module = -1;  // boot module it was loaded from

    // IPC
    Endpoint send_to = ukvm::kernel::kNone;
    Endpoint get_from = ukvm::kernel::kNone;
    UserAddr msg;             // the message buffer of the blocked SEND or RECEIVE
    Proc* callers = nullptr;  // FIFO of processes blocked sending to this one
    Proc* next_caller = nullptr;
    uint64_t notify_pending = 0;  // one bit per source slot index

    // scheduling
    Proc* next_ready = nullptr;
    int64_t quantum_left_ns = 0;
    uint64_t alarm_ns = 0;                              // uptime of the pending alarm, 0 if none
    uint64_t device_va = ukvm::kernel::kDeviceMapBase;  // where kSysMapPhys maps next
    uint64_t heap_va = ukvm::kernel::kHeapBase;         // where kSysMapAnon maps next

    AddressSpace as;
    Grant grants[kMaxGrants];
    alignas(16) uint8_t fpu[512];  // FPU/SSE state (fxsave64) while another process runs

    bool is_task() const { return nr < 0; }
    bool runnable() const { return blocked == 0; }
    int index() const { return nr + ukvm::kernel::kNrTasks; }
};

static_assert(sizeof(Regs) % 16 == 0 && alignof(Proc) == 16);

namespace proc {

inline Proc table[kNrSlots];
inline Proc* current = nullptr;  // nullptr while the kernel idles

inline Proc* by_slot(int32_t nr) {
    if (nr < -ukvm::kernel::kNrTasks || nr >= ukvm::kernel::kNrProcs) return nullptr;
    return &table[nr + ukvm::kernel::kNrTasks];
}
// The live process an endpoint names, or nullptr (dead, wrong generation, not a process).
Proc* lookup(Endpoint e);
// True if e could name a process at all (a slot in range), alive or not.
bool is_valid_endpoint(Endpoint e);

void init();  // kernel task slots
// A free user slot with its endpoint's generation advanced, or nullptr.
Proc* allocate();
// Ends a process: wakes its IPC partners with EDEADSRCDST, frees its memory, tells the
// parent (a notification from SYSTEM; details through kSysGetKSig).
void exit(Proc* p, uint64_t reason, uint64_t detail);

}  // namespace proc
}  // namespace kernel
