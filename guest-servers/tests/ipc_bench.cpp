// ipc_bench: measurements for bench/: null system call, kernel call and SENDREC round trips (two
// ways of replying), as "measure:" and "bench:" lines. One area of the in-guest test suite
// (harness.hpp), started by ipc_test; prints "N passed, M failed" and exits with M.
#include "harness.hpp"

using namespace ukvm::kernel;
using t::g_echo;
using t::request;
using user::print;

namespace {

void measure() {
    constexpr int kRounds = 200;
    Message m{};
    uint64_t t0 = user::uptime_ns();
    for (int i = 0; i < kRounds; ++i) user::ipc(0, kNone, &m);  // EBADCALL: a null call
    uint64_t t1 = user::uptime_ns();
    for (int i = 0; i < kRounds; ++i) {
        m = request(proto::kEchoPlain);
        user::sendrec(g_echo, &m);
    }
    uint64_t t2 = user::uptime_ns();
    for (int i = 0; i < kRounds; ++i) {
        m = request(proto::kEcho);
        user::sendrec(g_echo, &m);
    }
    uint64_t t2b = user::uptime_ns();
    for (int i = 0; i < kRounds; ++i) {
        m = Message{};
        user::kernel_call(kSysGetInfo, &m);
    }
    uint64_t t3 = user::uptime_ns();
    constexpr int kLoop = 1 << 20;
    uint64_t c0 = user::rdtsc();
    for (int i = 0; i < kLoop; ++i) asm volatile("" : : "r"(i));
    uint64_t c1 = user::rdtsc();
    print(
        "measure: null syscall %lu ns, kernel call (SENDREC to SYSTEM) %lu ns, SENDREC round "
        "trip to a server %lu ns (server replies with SEND+RECEIVE) / %lu ns (with REPLYRECV) "
        "(%d rounds); user loop %lu TSC ticks per 1M iterations\n",
        (t1 - t0) / kRounds, (t3 - t2b) / kRounds, (t2 - t1) / kRounds, (t2b - t2) / kRounds,
        kRounds, c1 - c0);
    // The same figures as one parsable line for bench/ (key=value, nanoseconds, means over
    // kRounds): sendrec_ns is the round trip to a server replying with SEND+RECEIVE.
    print(
        "bench: sendrec_ns=%lu null_syscall_ns=%lu replyrecv_ns=%lu kernel_call_ns=%lu rounds=%d\n",
        (t2 - t1) / kRounds, (t1 - t0) / kRounds, (t2b - t2) / kRounds, (t3 - t2b) / kRounds,
        kRounds);
}

}  // namespace

int main(const char*) {
    t::begin("ipc_bench");
    measure();
    return t::finish();
}
