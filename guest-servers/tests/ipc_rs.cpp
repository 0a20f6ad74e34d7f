// ipc_rs: kill and restart by RS. Starts RS ("--only hang": it supervises DS and the test
// service hang, nothing else), then: a killed DS comes back in the same slot with a new
// generation, its old endpoint says EDEADSRCDST, and RS has published every service in the
// new DS; hang, which stops answering RS's heartbeats, is killed and restarted the same
// way and DS maps its name to the new endpoint. One area of the in-guest test suite
// (harness.hpp), started by ipc_test; prints "N passed, M failed" and exits with M.
#include "harness.hpp"
#include "sys.hpp"

using namespace ukvm::kernel;
using user::print;

namespace {

constexpr uint64_t kMs = 1000000;
Endpoint g_rs = kNone;

// Polls (every 10 ms) until pred holds or timeout_ns passed.
template <typename Pred>
bool wait_until(Pred pred, uint64_t timeout_ns) {
    uint64_t end = user::uptime_ns() + timeout_ns;
    while (!pred()) {
        if (user::uptime_ns() >= end) return false;
        user::sleep_ns(10 * kMs);
    }
    return true;
}

// DS's answer for name, asked of the DS at endpoint ds: the IPC result; *out the endpoint.
int32_t lookup(Endpoint ds, const char* name, Endpoint* out) {
    Message m{};
    user::set_name(&m, name);
    m.m_type = proto::kDsLookup;
    int32_t r = user::sendrec(ds, &m);
    *out = r == kOk && m.m_type == kOk ? static_cast<Endpoint>(m.i64[2]) : kNone;
    return r;
}

Endpoint lookup(const char* name) {
    Endpoint e = kNone;
    lookup(user::find("ds"), name, &e);
    return e;
}

bool restarted(Endpoint before, Endpoint after) {
    return after != kNone && endpoint_slot(after) == endpoint_slot(before) &&
           after / kGenerationSize == before / kGenerationSize + 1;
}

bool test_start() {
    Message m{};
    user::set_name(&m, "rs");
    strncpy(reinterpret_cast<char*>(m.bytes + kSpawnArgsOffset), "--only hang", kSpawnArgsMax);
    CHECK_EQ(user::kernel_call(kSysSpawn, &m), kOk);
    g_rs = static_cast<Endpoint>(m.u64[0]);
    // RS starts DS, then hang, and publishes both.
    CHECK(wait_until([] { return lookup("hang") != kNone; }, 2000 * kMs));
    CHECK_EQ(lookup("hang"), user::find("hang"));
    CHECK_EQ(lookup("ds"), user::find("ds"));
    return true;
}

bool test_killed_service() {
    Endpoint before = user::find("ds");
    CHECK(before != kNone);
    Message k{};
    k.u64[0] = static_cast<uint64_t>(before);
    k.u64[1] = proto::kSigKill;
    CHECK_EQ(user::kernel_call(kSysKill, &k), kOk);
    Endpoint e;
    CHECK_EQ(lookup(before, "hang", &e), kEDeadSrcDst);  // mail for the dead one fails
    Endpoint after = kNone;
    CHECK(wait_until(
        [&] {
            after = user::find("ds");
            return after != kNone && after != before;
        },
        5000 * kMs));
    print("ipc_rs: ds endpoint %d -> %d\n", before, after);
    CHECK(restarted(before, after));  // same slot, next generation
    CHECK_EQ(lookup(before, "hang", &e), kEDeadSrcDst);
    // RS publishes every service again in the new DS (itself included).
    CHECK(wait_until([&] { return lookup("hang") == user::find("hang"); }, 2000 * kMs));
    CHECK_EQ(lookup(after, "ds", &e), kOk);
    CHECK_EQ(e, after);
    return true;
}

bool test_hung_service() {
    // hang answers one heartbeat (RS pings every second) and then blocks; after three
    // unanswered pings RS kills it and starts it again.
    Endpoint before = user::find("hang");
    CHECK(before != kNone);
    Endpoint after = kNone;
    CHECK(wait_until(
        [&] {
            after = user::find("hang");
            return after != kNone && after != before;
        },
        10000 * kMs));
    print("ipc_rs: hang endpoint %d -> %d\n", before, after);
    CHECK(restarted(before, after));
    Message m{};
    CHECK_EQ(user::sendrec(before, &m), kEDeadSrcDst);
    CHECK(wait_until([&] { return lookup("hang") == after; }, 2000 * kMs));
    return true;
}

}  // namespace

int main(const char*) {
    t::begin("ipc_rs");
    t::run("RS starts DS and a service and publishes them", test_start);
    t::run("a killed service: same slot, new generation, old endpoint dead, DS follows",
           test_killed_service);
    t::run("a hung service is killed and restarted", test_hung_service);
    // The suite goes on without them: RS first, so that nothing is restarted.
    if (g_rs > 0) t::kill(g_rs);
    const char* const services[] = {"hang", "ds"};
    for (const char* name : services)
        if (Endpoint e = user::find(name); e != kNone) t::kill(e);
    return t::finish();
}
