// isolate: a user program that tries what it must not. With argument "calls" it tries
// kernel calls and IPC outside its privileges and memory that is not its own through the
// kernel, reports each refusal and exits with the number of attempts that were not
// refused; with "kernel" it reads kernel memory, with "phys" another process's memory
// through the kernel's identity map, with "write-text" its own code: each of those must
// kill it (a page fault), which its parent sees.
#include "sys.hpp"

using namespace ukvm::kernel;
using user::print;

namespace {

int g_passed = 0, g_failed = 0;

void expect(int32_t got, int32_t want, const char* what) {
    bool ok = got == want;
    ++(ok ? g_passed : g_failed);
    print("%s %s: %d\n", ok ? "PASS" : "FAIL", what, got);
}

int calls() {
    Message m{};
    m.u64[0] = static_cast<uint64_t>(user::find("pm"));
    expect(user::kernel_call(kSysKill, &m), kECallDenied, "kill PM directly (kSysKill)");
    m = Message{};
    m.u64[0] = 0x3f8, m.u64[1] = 1;
    expect(user::kernel_call(kSysDevIo, &m), kECallDenied, "port I/O (kSysDevIo)");
    m = Message{};
    m.u64[0] = 0x100000, m.u64[1] = 4096;
    expect(user::kernel_call(kSysMapPhys, &m), kECallDenied, "map kernel memory (kSysMapPhys)");
    m = Message{};
    m.u64[0] = static_cast<uint64_t>(user::find("pm")), m.u64[1] = 0, m.u64[2] = 0;
    m.u64[3] = reinterpret_cast<uintptr_t>(&m), m.u64[4] = 8;
    expect(user::kernel_call(kSysSafeCopyFrom, &m), kECallDenied,
           "copy from PM's memory (kSysSafeCopyFrom)");
    m = Message{};
    user::set_name(&m, "sh");
    expect(user::kernel_call(kSysSpawn, &m), kECallDenied, "spawn (kSysSpawn)");
    m = Message{};
    m.u64[0] = 4, m.u64[1] = 1;
    expect(user::kernel_call(kSysIrqCtl, &m), kECallDenied, "take IRQ 4 (kSysIrqCtl)");
    m = Message{};
    m.u64[0] = static_cast<uint64_t>(user::self()), m.u64[1] = kPrivMem;
    m.u64[2] = 0xc0000000, m.u64[3] = 0x4000;
    expect(user::kernel_call(kSysPrivCtl, &m), kECallDenied,
           "grant itself device memory (kSysPrivCtl)");
    m = Message{};
    m.u64[0] = static_cast<uint64_t>(user::find("pm")), m.u64[3] = 8, m.u64[4] = kGrantRead;
    expect(user::kernel_call(kSysUmapGrant, &m), kECallDenied,
           "physical addresses of a grant (kSysUmapGrant)");
    m = Message{};
    m.u64[1] = 4096, m.u64[2] = kMapWritable | kMapContiguous;
    expect(user::kernel_call(kSysMapAnon, &m), kEPerm, "DMA memory (kMapContiguous)");
    expect(user::notify(user::find("pm")), kETrapDenied, "NOTIFY");
    expect(user::receive(kAny, &m), kETrapDenied, "RECEIVE");
    Endpoint sh = user::find("sh");
    m = Message{};
    expect(user::sendrec(sh, &m), kECallDenied, "SENDREC to another user (sh)");
    expect(user::sendrec(user::find("pm"), reinterpret_cast<Message*>(0x100000)), kEFault,
           "a message in kernel memory");
    m = Message{};
    m.m_type = ukvm::hc::kConsoleWrite;
    m.u64[0] = 0x100000, m.u64[1] = 64;
    user::sendrec(kVmm, &m);
    expect(m.m_type, ukvm::hc::kEFault, "print kernel memory through the VMM");
    m = Message{};
    m.m_type = ukvm::hc::kHalt;
    user::sendrec(kVmm, &m);
    expect(m.m_type, kEPerm, "halt the machine through the VMM");
    print("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed;
}

}  // namespace

int main(const char* args) {
    if (strcmp(args, "kernel") == 0) {
        print("isolate: reading kernel memory at 0x100000\n");
        print("isolate: read %lx (must not get here)\n",
              *reinterpret_cast<volatile uint64_t*>(0x100000));
    } else if (strcmp(args, "phys") == 0) {
        // Other processes' frames lie in the first GiB, which the kernel maps
        // (supervisor-only) into every address space.
        print("isolate: reading physical memory at 0x2000000 through the kernel's map\n");
        print("isolate: read %lx (must not get here)\n",
              *reinterpret_cast<volatile uint64_t*>(0x2000000));
    } else if (strcmp(args, "write-text") == 0) {
        print("isolate: writing to its own code\n");
        *reinterpret_cast<volatile uint8_t*>(kUserImageBase) = 0xcc;
        print("isolate: wrote (must not get here)\n");
    } else {
        return calls();
    }
    return 100;
}
