#include "harness.hpp"

namespace t {

using user::print;

Endpoint g_echo = kNone;
const char* g_skip_reason = nullptr;

namespace {

const char* g_area = "";
int g_passed = 0, g_failed = 0, g_skipped = 0;

// Records of dead children fetched from SYSTEM but not yet asked for.
struct Death {
    Endpoint child = kNone;
    uint64_t reason = 0, detail = 0;
};
Death g_deaths[16];

bool take_death(Endpoint child, uint64_t* reason, uint64_t* detail) {
    for (Death& d : g_deaths) {
        if (d.child != child) continue;
        if (reason) *reason = d.reason;
        if (detail) *detail = d.detail;
        d = Death{};
        return true;
    }
    return false;
}

}  // namespace

bool check(bool ok, const char* what, int line) {
    if (!ok) print("    check failed (line %d): %s\n", line, what);
    return ok;
}

bool check_eq(int64_t a, int64_t b, const char* what, int line) {
    if (a != b) print("    check failed (line %d): %s: %ld != %ld\n", line, what, a, b);
    return a == b;
}

void begin(const char* area) {
    g_area = area;
    print("%s: starting (endpoint %d)\n", area, user::self());
    g_echo = user::spawn("ipc_echo");
    if (g_echo < 0) print("%s: cannot start ipc_echo (%d)\n", area, g_echo);
}

void run(const char* name, bool (*test)()) {
    g_skip_reason = nullptr;
    bool ok = g_echo > 0 && test();
    if (ok && g_skip_reason) {
        ++g_skipped;
        print("SKIP %s (%s)\n", name, g_skip_reason);
        return;
    }
    ++(ok ? g_passed : g_failed);
    print("%s %s\n", ok ? "PASS" : "FAIL", name);
}

int finish() {
    if (g_echo > 0) kill(g_echo);
    if (g_skipped) print("(%d skipped)\n", g_skipped);
    print("%s: %d passed, %d failed\n", g_area, g_passed, g_failed);
    Message m = request(proto::kAreaReport, g_passed, g_failed, g_skipped);
    user::sendrec(user::parent(), &m);  // the runner adds it up (if it is the runner)
    return g_failed < 255 ? g_failed : 255;
}

Message request(int32_t type, int64_t a, int64_t b, int64_t c, int64_t d) {
    Message m{};
    m.m_type = type;
    m.i64[0] = a, m.i64[1] = b, m.i64[2] = c, m.i64[3] = d;
    return m;
}

bool wait_child(Endpoint child, uint64_t* reason, uint64_t* detail) {
    for (int tries = 0; tries < 16; ++tries) {
        if (take_death(child, reason, detail)) return true;
        Message k{};
        while (user::kernel_call(kSysGetKSig, &k) == kOk &&
               static_cast<Endpoint>(k.u64[0]) != kNone) {
            for (Death& d : g_deaths) {
                if (d.child != kNone) continue;
                d = {static_cast<Endpoint>(k.u64[0]), k.u64[1], k.u64[2]};
                break;
            }
        }
        if (take_death(child, reason, detail)) return true;
        Message n{};
        if (user::receive(kSystem, &n) != kOk) return false;
    }
    return false;
}

int32_t sync_echo() {
    Message s = request(proto::kEcho);
    return user::sendrec(g_echo, &s);
}

int32_t kill(Endpoint e) {
    Message k{};
    k.u64[0] = static_cast<uint64_t>(e);
    return user::kernel_call(kSysKill, &k);
}

bool kill_and_wait(Endpoint e, uint64_t* reason, uint64_t* detail) {
    CHECK_EQ(kill(e), kOk);
    CHECK(wait_child(e, reason, detail));
    return true;
}

}  // namespace t
