#include "clock.hpp"

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/lapic.hpp"
#include "ipc.hpp"

namespace kernel::clock {

namespace {
uint64_t g_tsc0;
uint64_t g_ns_per_tsc_32;  // ns per TSC tick, 32.32 fixed point
uint64_t g_tsc_hz;
uint64_t g_next_alarm;  // cached: the kernel's exit path asks on every return to user mode

void recompute_next_alarm() {
    g_next_alarm = 0;
    for (Proc& p : proc::table)
        if (p.alarm_ns && (!g_next_alarm || p.alarm_ns < g_next_alarm)) g_next_alarm = p.alarm_ns;
}
}  // namespace

void init() {
    // The median of three 1 ms windows: one window occasionally comes out wildly off on
    // the PVM host.
    uint64_t a = lapic::calibrate_tsc_hz(), b = lapic::calibrate_tsc_hz(),
             c = lapic::calibrate_tsc_hz();
    uint64_t hz = a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
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
    recompute_next_alarm();
}

void cancel_alarm(Proc* p) {
    if (!p->alarm_ns) return;
    p->alarm_ns = 0;
    recompute_next_alarm();
}

uint64_t next_alarm_ns() {
    return g_next_alarm;
}

void expire_alarms() {
    uint64_t now = uptime_ns();
    if (!g_next_alarm || g_next_alarm > now) return;
    Proc* clock = proc::by_slot(ukvm::kernel::kClock);
    for (Proc& p : proc::table) {
        if (!p.alarm_ns || p.alarm_ns > now) continue;
        p.alarm_ns = 0;
        ipc::notify(clock, &p);
    }
    recompute_next_alarm();
}

}  // namespace kernel::clock
