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

namespace {

// KVM's pvclock page states the TSC's exact scale (ns = ticks * mul * 2^shift / 2^32).
struct PvClock {
    uint32_t version, pad0;
    uint64_t tsc_timestamp, system_time;
    uint32_t tsc_to_system_mul;
    int8_t tsc_shift;
    uint8_t flags, pad[2];
};
alignas(64) volatile PvClock g_pvclock;

uint64_t kvmclock_tsc_hz() {
    constexpr uint32_t kMsrKvmSystemTimeNew = 0x4b564d01;
    auto sig = cpu::cpuid(0x40000000);
    if (sig.ebx != 0x4b4d564b || sig.ecx != 0x564b4d56 || sig.edx != 0x4d || sig.eax < 0x40000001)
        return 0;                                             // not "KVMKVMKVM"
    if (!(cpu::cpuid(0x40000001).eax & (1u << 3))) return 0;  // no KVM_FEATURE_CLOCKSOURCE2
    cpu::wrmsr(kMsrKvmSystemTimeNew, reinterpret_cast<uintptr_t>(&g_pvclock) | 1);
    uint32_t mul = g_pvclock.tsc_to_system_mul;
    int shift = g_pvclock.tsc_shift;
    cpu::wrmsr(kMsrKvmSystemTimeNew, 0);
    if (!mul) return 0;
    unsigned __int128 hz = (static_cast<unsigned __int128>(1000000000ull) << 32) / mul;
    return static_cast<uint64_t>(shift >= 0 ? hz >> shift : hz << -shift);
}

uint64_t median_of_three(uint64_t a, uint64_t b, uint64_t c) {
    return a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
}

}  // namespace

void init() {
    // Prefer KVM's own statement of the TSC rate; measuring it against the LAPIC timer
    // sometimes comes out wildly off on the PVM host, hence the median of three.
    uint64_t hz = kvmclock_tsc_hz();
    if (!hz)
        hz = median_of_three(lapic::calibrate_tsc_hz(), lapic::calibrate_tsc_hz(),
                             lapic::calibrate_tsc_hz());
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
