// ipc_timers: timers and scheduling: alarms, round robin between spinning processes. One area of
// the in-guest test suite (harness.hpp), started by ipc_test; prints "N passed, M failed" and exits
// with M.
#include "harness.hpp"

using namespace ukvm::kernel;
using t::request;
using user::print;

namespace {

bool test_round_robin() {
    // Two spinning processes at our priority: both make progress (quantum preemption),
    // and we still get to run when our alarm fires.
    Endpoint spinner[2];
    int64_t grant[2];
    for (int i = 0; i < 2; ++i) {
        spinner[i] = user::spawn("ipc_echo");
        CHECK(spinner[i] > 0);
        Message m = request(proto::kSpin);
        CHECK_EQ(user::sendrec(spinner[i], &m), kOk);
        CHECK(m.i64[0] >= 0);
        grant[i] = m.i64[0];
    }
    user::sleep_ns(300000000);
    for (int i = 0; i < 2; ++i) {
        uint64_t count = 0;
        Message k{};
        k.u64[0] = static_cast<uint64_t>(spinner[i]);
        k.u64[1] = static_cast<uint64_t>(grant[i]);
        k.u64[2] = 0;
        k.u64[3] = reinterpret_cast<uintptr_t>(&count);
        k.u64[4] = sizeof count;
        CHECK_EQ(user::kernel_call(kSysSafeCopyFrom, &k), kOk);
        print("    spinner %d counted to %lu\n", i, count);
        CHECK(count > 1000);
        CHECK(t::kill_and_wait(spinner[i]));
    }
    return true;
}

bool test_alarm() {
    uint64_t t0 = user::uptime_ns();
    user::sleep_ns(20000000);
    uint64_t t1 = user::uptime_ns();
    CHECK(t1 - t0 >= 20000000);
    CHECK(t1 - t0 < 2000000000);
    return true;
}

}  // namespace

int main(const char*) {
    t::begin("ipc_timers");
    t::run("round robin between spinning processes", test_round_robin);
    t::run("alarm", test_alarm);
    return t::finish();
}
