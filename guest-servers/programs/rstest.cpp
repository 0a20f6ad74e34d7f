// rstest: RS restarts a killed service. Kills the service named in its arguments (default
// ds) through PM, waits for RS to bring it back, and checks that the new process has a
// new generation in the same slot and that DS maps the name to the new endpoint (and
// still knows the other services). Prints "N passed, M failed"; exits with M.
#include "sys.hpp"
#include "tally.hpp"

using namespace ukvm::kernel;
using tally::check;
using user::print;

namespace {

// Polls (users cannot sleep on an alarm) until pred holds or timeout_ns passed.
template <typename Pred>
bool wait_for(Pred pred, uint64_t timeout_ns) {
    uint64_t end = user::uptime_ns() + timeout_ns;
    while (user::uptime_ns() < end)
        if (pred()) return true;
    return pred();
}

}  // namespace

int main(const char* args) {
    const char* name = *args ? args : "ds";
    Endpoint before = user::find(name);
    check(before != kNone, "the service runs");
    check(sys::ds_lookup(name) == before, "DS maps the name to it");
    int32_t pid = sys::pid_of(name);
    check(pid > 0, "PM lists it");
    uint64_t t0 = user::uptime_ns();
    check(sys::kill(pid, proto::kSigKill) == kOk, "PM kills it");
    Endpoint after = kNone;
    bool back = wait_for(
        [&] {
            after = user::find(name);
            return after != kNone && after != before;
        },
        5000000000ull);
    uint64_t t1 = user::uptime_ns();
    check(back, "RS restarts it within 5 s");
    print("rstest: %s endpoint %d -> %d, generation %d -> %d, back after %lu ms\n", name, before,
          after, before / kGenerationSize, after / kGenerationSize, (t1 - t0) / 1000000);
    check(endpoint_slot(after) == endpoint_slot(before) &&
              after / kGenerationSize > before / kGenerationSize,
          "same slot, new generation");
    check(wait_for([&] { return sys::ds_lookup(name) == after; }, 2000000000ull),
          "DS maps the name to the new endpoint");
    check(sys::ds_lookup("pm") == user::find("pm"), "DS still maps pm");
    check(sys::ds_lookup("tty") == user::find("tty"), "DS still maps tty");
    check(sys::pid_of(name) > pid, "the new process has a new pid");
    return tally::finish();
}
