// The in-guest test suite's runner (boot module 0; configs/ipc-test.toml boots it with
// start=1): starts each area of the suite in turn, a program of its own (harness.hpp),
// collects its counts and its exit, and prints the area's and the overall
// "N passed, M failed"; halts the VM with status M (0 when everything passed). An area
// that dies without reporting counts as one failure.
#include "protocol.hpp"
#include "user.hpp"

using namespace ukvm::kernel;
using user::print;

namespace {

constexpr const char* kAreas[] = {
    "ipc_rules",  "ipc_deadlock", "ipc_notify", "ipc_grants", "ipc_faults",
    "ipc_timers", "ipc_devices",  "ipc_rs",     "ipc_bench",
};

struct Result {
    bool reported = false;
    int64_t passed = 0, failed = 0, skipped = 0;
    uint64_t reason = 0, detail = 0;
};

// Runs one area to its end: answers its report, waits for SYSTEM's news of its exit.
Result run_area(const char* area) {
    Result r;
    Endpoint e = user::spawn(area);
    if (e < 0) {
        print("ipc_test: cannot start %s (%d)\n", area, e);
        return r;
    }
    for (;;) {
        Message m{};
        if (user::receive(kAny, &m) != kOk) continue;
        if (m.m_source == e && m.m_type == proto::kAreaReport) {
            r.reported = true;
            r.passed = m.i64[0], r.failed = m.i64[1], r.skipped = m.i64[2];
            m.m_type = 0;
            user::send(e, &m);
            continue;
        }
        if (m.m_source != kSystem) continue;
        Message k{};
        while (user::kernel_call(kSysGetKSig, &k) == kOk &&
               static_cast<Endpoint>(k.u64[0]) != kNone) {
            if (static_cast<Endpoint>(k.u64[0]) == e) {
                r.reason = k.u64[1], r.detail = k.u64[2];
                return r;
            }
            k = Message{};
        }
    }
}

}  // namespace

int main(const char*) {
    print("ipc_test: starting (endpoint %d)\n", user::self());
    int64_t passed = 0, failed = 0, skipped = 0;
    for (const char* area : kAreas) {
        Result r = run_area(area);
        if (!r.reported) {
            print("FAIL %s ended without a report (reason %lu, detail %lu)\n", area, r.reason,
                  r.detail);
            ++failed;
            continue;
        }
        if (r.reason != kExitNormal ||
            static_cast<int64_t>(r.detail) != (r.failed < 255 ? r.failed : 255))
            print("ipc_test: %s exited with reason %lu, detail %lu\n", area, r.reason, r.detail);
        passed += r.passed, failed += r.failed, skipped += r.skipped;
    }
    if (skipped) print("(%ld skipped)\n", skipped);
    print("%ld passed, %ld failed\n", passed, failed);
    user::halt(failed < 255 ? static_cast<int>(failed) : 255);
}
