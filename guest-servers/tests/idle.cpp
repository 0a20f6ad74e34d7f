// Sleeps for the number of milliseconds in its arguments (default 2000) through CLOCK
// alarms, then halts the VM: with a tickless kernel the host should see ~no CPU use.
#include "user.hpp"

int main(const char* args) {
    uint64_t ms = 0;
    for (const char* p = args; *p >= '0' && *p <= '9'; ++p) ms = ms * 10 + (*p - '0');
    if (ms == 0) ms = 2000;
    uint64_t t0 = user::uptime_ns();
    user::sleep_ns(ms * 1000000);
    uint64_t t1 = user::uptime_ns();
    user::print("idle: slept %lu ms\n", (t1 - t0) / 1000000);
    user::halt(0);
}
