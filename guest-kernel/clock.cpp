#include "clock.hpp"

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/lapic.hpp"
#include "ipc.hpp"

namespace kernel::clock {

namespace {
uint64_t g_tsc0;
uint64_t g_ns_per_tsc_32;  // ns per TSC tick, 32.32 fixed point
uint64_t g_tsc_hz;
}  // namespace

void init() {
    uint64_t hz = lapic::calibrate_tsc_hz();
    g_tsc_hz = hz ? hz : 1000000000ull;
    g_ns_per_tsc_32 = (1000000000ull << 32) / (hz ? hz : 1000000000ull);
    g_tsc0 = cpu::rdtsc();
}

uint64_t tsc_hz() {
    return g_tsc_hz;
}

uint64_t uptime_ns() {
    unsigned __int128 d = cpu::rdtsc() - g_tsc0;
    return static_cast<uint64_t>((d * g_ns_per_tsc_32) >> 32) + 1;  // never 0
}

void set_alarm(Proc* p, uint64_t delay_ns) {
    p->alarm_ns = delay_ns ? uptime_ns() + delay_ns : 0;
}

void cancel_alarm(Proc* p) {
    p->alarm_ns = 0;
}

uint64_t next_alarm_ns() {
    uint64_t next = 0;
    for (Proc& p : proc::table)
        if (p.alarm_ns && (!next || p.alarm_ns < next)) next = p.alarm_ns;
    return next;
}

void expire_alarms() {
    uint64_t now = uptime_ns();
    Proc* clock = proc::by_slot(ukvm::kernel::kClock);
    for (Proc& p : proc::table) {
        if (!p.alarm_ns || p.alarm_ns > now) continue;
        p.alarm_ns = 0;
        ipc::notify(clock, &p);
    }
}

}  // namespace kernel::clock
