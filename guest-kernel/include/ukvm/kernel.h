// The guest kernel's user ABI: what a ring-3 program (server, driver, test) needs to talk
// to the kernel. Freestanding; included by the kernel and by everything in guest-servers/.
//
// A system call is `syscall` (or `int $0x80`) with rax = an IpcOp, rdi = an endpoint,
// rsi = the user address of a 64-byte Message. rax returns kOk or a negative Error; every
// other register except rcx and r11 is preserved. Kernel calls are SENDREC to kSystem
// with m_type = a KernelCall; their result is the reply's m_type. The VMM (kVmm) takes
// SENDREC with the hypercall ABI's requests (ukvm/hypercall.h), buffers given as the
// caller's own addresses.
//
// A process starts at its ELF entry with rdi = its command line ("<path> <args>", on its
// stack), rsi = its endpoint, rdx = its parent's endpoint, rsp % 16 == 8. Each process has
// its own FPU/SSE state (x87 and SSE exceptions masked at start); system calls preserve it.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace ukvm::kernel {

using Endpoint = int32_t;

// IPC primitives (the MINIX 3 numbers).
enum IpcOp : int32_t {
    kSend = 1,
    kReceive = 2,
    kSendRec = 3,
    kNotify = 4,
    kSendNb = 5,
    // Not in MINIX: SENDNB the reply in the message to rdi, then RECEIVE from rdx into the
    // same buffer; stops at the first error. A server's reply and its wait for the next
    // request in one kernel entry (seL4's ReplyRecv): a request-reply round trip then
    // costs two kernel entries instead of three.
    kReplyRecv = 6,
};
inline constexpr int kNrIpcOps = 7;

// Special endpoints. Kernel tasks have negative process numbers and never change
// generation; kVmm is the VMM behind the hypercall port (ukvm::hc::kVmmEndpoint).
inline constexpr Endpoint kVmm = -16;
inline constexpr Endpoint kIdle = -4;
inline constexpr Endpoint kClock = -3;
inline constexpr Endpoint kSystem = -2;
inline constexpr Endpoint kHardware = -1;  // source of interrupt notifications
inline constexpr Endpoint kAny = 0x7ace;
inline constexpr Endpoint kNone = 0x6ace;
inline constexpr Endpoint kSelf = 0x8ace;

// endpoint = generation * kGenerationSize + process number. A restarted process gets a
// new generation in the same slot, so mail for its predecessor fails with kEDeadSrcDst.
inline constexpr int32_t kNrTasks = 16;  // process numbers -16 .. -1
inline constexpr int32_t kNrProcs = 48;  // process numbers 0 .. 47
inline constexpr int32_t kGenerationSize = 0x10000;
inline constexpr int32_t kMaxGeneration = 0x7fff;
constexpr int32_t endpoint_slot(Endpoint e) {
    return e >= -kNrTasks && e < 0 ? e : e % kGenerationSize;
}

// Errors (MINIX 3 values; negative). Ordinary errno values are Linux's, negated.
enum Error : int32_t {
    kOk = 0,
    kEPerm = -1,
    kESrch = -3,
    kE2Big = -7,
    kENoMem = -12,
    kEIntr = -4,  // a blocking call interrupted by a signal (kSysSigSend)
    kEFault = -14,
    kEBusy = -16,
    kEInval = -22,
    kENoSys = -38,
    kELocked = -101,
    kEBadCall = -102,
    kEBadSrcDst = -103,
    kECallDenied = -104,
    kEDeadSrcDst = -105,
    kENotReady = -106,
    kEBadRequest = -107,
    kETrapDenied = -110,
};

struct Notify {
    uint64_t timestamp_ns;  // uptime when the notification was built
    uint64_t bits;          // kHardware: pending IRQ lines; kSystem: kernel signals
};

struct alignas(16) Message {
    Endpoint m_source;  // stamped by the kernel
    int32_t m_type;
    union {
        uint8_t bytes[56];
        int64_t i64[7];
        uint64_t u64[7];
        Notify notify;
    };
};
static_assert(sizeof(Message) == 64, "a MINIX message is 64 bytes");

inline constexpr int32_t kNotifyMessage = 0x1000;  // m_type of a notification

// Kernel calls: SENDREC to kSystem, m_type = the call, arguments in u64[], result in the
// reply's m_type (>= 0 success) and u64[].
enum KernelCall : int32_t {
    kSysSpawn = 1,     // bytes[0..16): boot program name, bytes[16..56): arguments (both
                       // NUL-terminated; empty: the module's own) -> u64[0] endpoint
    kSysExit = 2,      // u64[0] status. Never replies.
    kSysKill = 3,      // u64[0] endpoint, u64[1] the signal that killed it (wait's detail)
    kSysGetKSig = 4,   // -> u64[0] endpoint of a dead child or kNone, u64[1] reason, u64[2] detail
    kSysTimes = 5,     // -> u64[0] uptime ns
    kSysSetAlarm = 6,  // u64[0] ns from now (0 cancels) -> notification from kClock
    kSysGrantCreate = 7,  // u64[0] grantee endpoint, u64[1] address, u64[2] length, u64[3] rights
                          // -> u64[0] grant id
    kSysGrantRevoke = 8,  // u64[0] grant id
    kSysSafeCopyFrom =
        9,  // u64[0] granter endpoint, u64[1] grant, u64[2] offset, u64[3] my address, u64[4] len
    kSysSafeCopyTo = 10,  // same, copying my bytes into the grant
    kSysDevIo =
        11,  // u64[0] port, u64[1] width (1,2,4), u64[2] 0 read / 1 write, u64[3] value -> u64[0]
    kSysIrqCtl = 12,     // u64[0] irq line, u64[1] 1 enable / 0 disable
    kSysMapPhys = 13,    // u64[0] physical address, u64[1] length -> u64[0] user address
                         // (uncached; only device memory its privileges name)
    kSysGetInfo = 14,    // -> u64[0] own endpoint, u64[1] parent, u64[2] boot module count,
                         // u64[3] class (ProcInfo.cls: 1 server/driver, 2 user)
    kSysFindProc = 15,   // bytes: program name -> u64[0] endpoint of a live process running it
    kSysMapAnon = 16,    // u64[0] address (0: the kernel picks one in the heap area), u64[1]
                         // length, u64[2] kMapWritable|kMapExecutable -> u64[0] address of
                         // fresh zeroed memory
    kSysUnmap = 17,      // u64[0] address, u64[1] length: memory from kSysMapAnon/kSysMapPhys
    kSysProcInfo = 18,   // u64[0] slot: the first live process in a slot >= it -> ProcInfo
                         // (kESrch when there is none)
    kSysFork = 19,       // u64[0] a process waiting in SENDREC for the caller's reply ->
                         // u64[0] the copy's endpoint: same memory contents (copied), registers
                         // and FPU state, also waiting for the caller's reply; its parent is
                         // the caller (PM's fork)
    kSysExec = 20,       // bytes[0..16) program, bytes[16..48) arguments, i64[6] a process
                         // waiting in SENDREC for the caller's reply: it now runs that boot
                         // program from its start (same endpoint, parent and privileges) and
                         // expects no reply (PM's exec)
    kSysPrivCtl = 21,    // u64[0] a driver's endpoint, u64[1] kPrivMem: u64[2] base, u64[3]
                         // length of device memory it may then map with kSysMapPhys; kPrivIrq:
                         // u64[2] an IOAPIC input (0..23) it may then take with kSysIrqCtl.
                         // Only the PCI server may call it, only for a process whose program
                         // the kernel's table marks as a driver (MINIX's privctl, reduced).
    kSysUmapGrant = 22,  // u64[0] granter, u64[1] grant, u64[2] offset, u64[3] length, u64[4]
                         // kGrantWrite (the device will write the range) or kGrantRead,
                         // u64[5] address of PhysRange[u64[6]] in the caller -> the number
                         // of ranges written: where the granted bytes are in RAM, for DMA
                         // straight into a client's buffer (MINIX's umap of a grant).
                         // Drivers only; the grant must be the caller's with those rights.
    // Signals (PM's): PM decides what a signal does; the kernel only builds and unwinds
    // the handler's frame.
    kSysSigSend = 23,    // u64[0] endpoint, u64[1] signal, u64[2] handler, u64[3] restorer
                         // (the handler's return address), u64[4] a server whose pending
                         // reply may be abandoned: pushes a SigFrame on the process's stack
                         // and makes it run handler(signal). A process blocked in IPC is
                         // taken out with kEIntr (sending, receiving, or waiting for the
                         // reply of the caller or of u64[4]); waiting for any other
                         // server's reply -> kEBusy (nothing changed; try later)
    kSysSigReturn = 24,  // u64[0] the SigFrame's address: the process continues where the
                         // signal interrupted it (no reply; any process may call it)
};
inline constexpr int kNrKernelCalls = 25;
struct PhysRange {
    uint64_t addr;
    uint64_t len;
};
inline constexpr uint64_t kPrivMem = 1;
inline constexpr uint64_t kPrivIrq = 2;
inline constexpr size_t kExecArgsMax = 32;      // kSysExec: with the NUL
inline constexpr size_t kSpawnArgsOffset = 16;  // kSysSpawn: where the arguments start
inline constexpr size_t kSpawnArgsMax = 40;     // with the NUL

// kSysProcInfo's reply payload.
struct ProcInfo {
    char name[16];
    Endpoint endpoint;
    Endpoint parent;
    Endpoint blocked_on;  // kNone when runnable; else the SEND target or RECEIVE source
    uint32_t state;       // 0 runnable, 1 sending, 2 receiving (bits; kernel's Blocked >> 1)
    uint32_t priority;
    uint32_t cls;  // 1 server/driver, 2 user
};
static_assert(sizeof(ProcInfo) <= 56);
inline constexpr uint64_t kMapWritable = 1;
inline constexpr uint64_t kMapExecutable = 2;
// kSysMapAnon for drivers: physically contiguous frames (below 1 GiB), and u64[1] of the
// reply is the physical address of the first byte, for the device's DMA.
inline constexpr uint64_t kMapContiguous = 4;
inline constexpr size_t kNameMax = 16;  // program names, with the NUL

// Grant rights.
inline constexpr uint64_t kGrantRead = 1;   // the grantee may read (copy from) the range
inline constexpr uint64_t kGrantWrite = 2;  // the grantee may write (copy to) the range

// What kSysSigSend pushes on the user stack (below the 128-byte red zone, so that at the
// handler's entry rsp points at `restorer` and rsp % 16 == 8, as after a call). The FPU
// state is not saved: programs are built with -mgeneral-regs-only.
struct SigContext {
    uint64_t rax, rcx, rdx, rbx, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags, rsp;
};
struct SigFrame {
    uint64_t restorer;  // the handler returns here; it calls kSysSigReturn(&frame)
    uint64_t signal;
    SigContext context;  // the interrupted state (rax = kEIntr for an interrupted call)
};

// kSysGetKSig reasons.
enum ExitReason : uint64_t {
    kExitNormal = 0,  // kSysExit; detail = status
    kExitFault = 1,   // CPU exception; detail = vector
    kExitKilled = 2,  // kSysKill; detail = the signal (its u64[1]; 0 if none given)
};

// The user half of every address space: [kUserBase, kUserTop).
inline constexpr uint64_t kUserBase = 0x40000000;
inline constexpr uint64_t kUserTop = 0x80000000;
inline constexpr uint64_t kUserImageBase = 0x40400000;  // programs are linked here
inline constexpr uint64_t kDeviceMapBase = 0x70000000;  // kSysMapPhys mappings, upwards
inline constexpr uint64_t kDeviceMapTop = 0x78000000;
inline constexpr uint64_t kHeapBase = 0x60000000;  // kSysMapAnon's own choices, upwards
inline constexpr uint64_t kHeapTop = 0x70000000;

}  // namespace ukvm::kernel
