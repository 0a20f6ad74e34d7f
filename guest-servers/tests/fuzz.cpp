// Throws random system calls and kernel calls at the kernel — bad endpoints, pointers
// into the kernel, unmapped and read-only memory, absurd lengths and call numbers — and
// checks that each comes back with an error or success, never a crash: the kernel must
// survive anything a process can pass it. Calls that would block forever, end this
// process or halt the VM are left out. Args: the number of calls (default 3000) and a
// seed.
#include "user.hpp"

using namespace ukvm::kernel;

namespace {

uint64_t g_state = 0x9e3779b97f4a7c15ull;
uint64_t next_random() {  // xorshift64*
    g_state ^= g_state >> 12;
    g_state ^= g_state << 25;
    g_state ^= g_state >> 27;
    return g_state * 0x2545f4914f6cdd1dull;
}

alignas(4096) uint8_t g_page[2 * 4096];

template <typename T, size_t N>
T pick(const T (&values)[N]) {
    return values[next_random() % N];
}

uint64_t interesting_address() {
    const uint64_t values[] = {
        0,
        1,
        0xfff,
        0x100000,                                    // the kernel image
        0xb8000,                                     // low memory
        0x3fffffff,                                  // just below the user half
        kUserBase,                                   // unmapped guard area
        kUserImageBase,                              // our text: read-only
        reinterpret_cast<uintptr_t>(g_page),         // ours, writable
        reinterpret_cast<uintptr_t>(g_page) + 4090,  // straddles two pages
        reinterpret_cast<uintptr_t>(g_page) + 8190,  // runs off our data
        kHeapBase,
        kDeviceMapBase,
        kUserTop - 8,
        kUserTop,
        0xfec00000,
        0x7fffffffffffull,
        0xffff800000000000ull,
        ~0ull,
        next_random(),
    };
    return pick(values);
}

uint64_t interesting_value() {
    const uint64_t values[] = {
        0,  1,      2,      3,      4,       15,         16,         23,    24,           63,
        64, 0x7ace, 0x6ace, 0x8ace, 0x10000, 0x7fffffff, 0x80000000, ~0ull, next_random()};
    return next_random() % 2 ? interesting_address() : pick(values);
}

Endpoint interesting_endpoint() {
    const Endpoint values[] = {kAny,
                               kNone,
                               kSelf,
                               kVmm,
                               kIdle,
                               kClock,
                               kSystem,
                               kHardware,
                               -17,
                               0,
                               1,
                               47,
                               48,
                               0x10000,
                               0x10001,
                               0x7fff0000,
                               user::self(),
                               user::self() + 0x10000,
                               -1000000};
    return pick(values);
}

// One random IPC call that cannot block: bad arguments, or a non-blocking primitive.
void random_ipc() {
    auto* m = reinterpret_cast<Message*>(interesting_address());
    int32_t op = static_cast<int32_t>(next_random() % 9) - 1;
    Endpoint e = interesting_endpoint();
    bool may_block = op == kSend || op == kReceive || op == kSendRec || op == kReplyRecv;
    bool harmless_target = e == user::self() || e < -kNrTasks || e == kAny || e == kNone ||
                           e == kSelf || e > 0x7fff0000 || e == -17 || e == -1000000;
    if (may_block && !harmless_target) op = kSendNb;
    if (op == kReceive && (e == kAny || e == user::self())) op = kNotify;
    if (op == kReplyRecv) {
        user::reply_recv(e, interesting_endpoint() == kAny ? kNone : kNone, m);
        return;
    }
    user::ipc(op, e, m);
}

// One random kernel call (or VMM request) with interesting arguments.
void random_kernel_call() {
    Message m{};
    for (auto& w : m.u64) w = interesting_value();
    int32_t call = static_cast<int32_t>(next_random() % (kNrKernelCalls + 4)) - 2;  // and past
    if (next_random() % 4 == 0) {
        // The VMM: everything but halt, with short buffers (it prints what it reads).
        const int32_t vmm_calls[] = {0, 1, 2, 3, 5, 6, 7, 99, -1};
        m.m_type = pick(vmm_calls);
        // Buffers: our page of dots, or somewhere we may not read (printable output only).
        const uint64_t buffers[] = {
            reinterpret_cast<uintptr_t>(g_page), 0x100000, kUserBase, ~0ull, kUserTop - 8, 0};
        m.u64[0] = pick(buffers);
        m.u64[1] = next_random() % 24;  // BufferRequest.len
        if (m.m_type == 6) {
            m.u64[0] = next_random() % 4;   // LogRequest.level (reserved stays random)
            m.u64[1] = pick(buffers);       // LogRequest.addr
            m.u64[2] = next_random() % 24;  // LogRequest.len
        }
        user::sendrec(kVmm, &m);
        return;
    }
    // (kSysSigReturn would load our registers from a random frame: a fault, by design.)
    if (call == kSysExit || call == kSysSpawn || call == kSysSigReturn) return;
    if (call == kSysKill && static_cast<Endpoint>(m.u64[0]) == user::parent()) return;
    if (call == kSysSetAlarm) m.u64[0] %= 1000000;  // a real alarm only pends a notification
    user::kernel_call(call, &m);
}

}  // namespace

int main(const char* args) {
    uint64_t calls = 0, seed = 0;
    const char* p = args;
    for (; *p >= '0' && *p <= '9'; ++p) calls = calls * 10 + (*p - '0');
    while (*p == ' ') ++p;
    for (; *p >= '0' && *p <= '9'; ++p) seed = seed * 10 + (*p - '0');
    if (calls == 0) calls = 3000;
    memset(g_page, '.', sizeof g_page);
    g_state += seed * 0x9e3779b97f4a7c15ull;
    for (uint64_t i = 0; i < calls; ++i) {
        if (next_random() % 2)
            random_ipc();
        else
            random_kernel_call();
    }
    // Still a working kernel: a clean VMM call and a kernel call.
    Message m{};
    m.m_type = ukvm::hc::kTime;
    int32_t r = user::sendrec(kVmm, &m);
    uint64_t up = user::uptime_ns();
    user::print("fuzz: %lu random calls survived; time call %d, uptime %lu ms\n", calls, r,
                up / 1000000);
    user::halt(r == kOk && up > 0 ? 0 : 1);
}
