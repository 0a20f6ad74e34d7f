// hcbench: the cost of a hypercall against a bare port-I/O exit, side by side in one run.
// n (cmdline "n=", default 10000) kVersion hypercalls, then n `out`s to port 0x80, timed
// with the TSC; the TSC is converted to ns against kTime (on ukvm) or the CMOS RTC's
// seconds (elsewhere, where only the bare exit is measured).
//
// The loops run in ring 0 (emulated on PVM hosts: a few instructions per iteration on top
// of the exit), or with "ring3=1" in ring 3 with IOPL 3. On PVM, port I/O from ring 3 has
// measured slower than from ring 0, so ring 0 is the default.
#include "rt/rt.hpp"

namespace hc = ukvm::hc;

namespace {

constexpr uint16_t kPostPort = 0x80;

uint64_t n;
bool ring3;
alignas(16) uint8_t ring3_stack[16384];

uint64_t monotonic_ns() {
    hc::Message m = rt::make_message(hc::kTime);
    if (rt::hypercall(m) != hc::kOk) return 0;
    hc::TimeReply reply;
    __builtin_memcpy(&reply, m.payload, sizeof reply);
    return reply.monotonic_ns;
}

uint8_t cmos_seconds() {
    rt::outb(0x70, 0x00);
    return rt::inb(0x71);
}

// TSC ticks between two CMOS seconds edges: one to three seconds of polling.
uint64_t tsc_hz_from_rtc() {
    uint8_t s = cmos_seconds();
    while (cmos_seconds() == s) {
    }
    const uint64_t start = rt::rdtsc();
    s = cmos_seconds();
    while (cmos_seconds() == s) {
    }
    return rt::rdtsc() - start;
}

uint64_t time_hypercalls() {
    // Only m_type needs resetting (the reply overwrote it): keep the loop as short as the
    // bare one, since on PVM every guest instruction here is emulated.
    static hc::Message m;
    m = rt::make_message(hc::kVersion);
    const uint32_t addr = uint32_t(reinterpret_cast<uintptr_t>(&m));
    const uint64_t start = rt::rdtsc();
    for (uint64_t i = 0; i < n; ++i) {
        m.m_type = hc::kVersion;
        rt::hypercall_at(addr);
    }
    return rt::rdtsc() - start;
}

uint64_t time_bare_exits() {
    const uint64_t start = rt::rdtsc();
    for (uint64_t i = 0; i < n; ++i) rt::outb(kPostPort, 0);
    return rt::rdtsc() - start;
}

// ticks * 1e9 / hz / n without overflowing: ticks < 2^40 and hz < 2^36 in practice.
uint64_t per_op_ns(uint64_t ticks, uint64_t hz) {
    return hz ? ticks * 1000 / (hz / 1000000) / n : 0;
}

[[noreturn]] void bench() {
    const bool ukvm = rt::on_ukvm();
    // Warm up both paths.
    const uint64_t wanted = n;
    n = 16;
    if (ukvm) time_hypercalls();
    time_bare_exits();
    n = wanted;

    const uint64_t ns0 = ukvm ? monotonic_ns() : 0;
    const uint64_t tsc0 = rt::rdtsc();
    const uint64_t hypercall_ticks = ukvm ? time_hypercalls() : 0;
    const uint64_t bare_ticks = time_bare_exits();
    const uint64_t tsc1 = rt::rdtsc();
    const uint64_t ns1 = ukvm ? monotonic_ns() : 0;

    uint64_t hz = 0;
    if (ukvm && ns1 / 1000 > ns0 / 1000) {
        hz = (tsc1 - tsc0) * 1000000 / (ns1 / 1000 - ns0 / 1000);  // ticks per µs, scaled
    } else if (!ukvm) {
        hz = tsc_hz_from_rtc();
    }
    const uint64_t hypercall_ns = per_op_ns(hypercall_ticks, hz);
    const uint64_t bare_ns = per_op_ns(bare_ticks, hz);
    rt::printf("hcbench: n=%lu mode=%s tsc_mhz=%lu\n", n, ring3 ? "ring3" : "ring0", hz / 1000000);
    if (ukvm) {
        const uint64_t ratio100 = bare_ticks ? hypercall_ticks * 100 / bare_ticks : 0;
        rt::printf("hypercall_ns=%lu bare_exit_ns=%lu ratio=%lu.%02lu\n", hypercall_ns, bare_ns,
                   ratio100 / 100, ratio100 % 100);
    } else {
        rt::printf("hypercall_ns=none bare_exit_ns=%lu ratio=none\n", bare_ns);
    }
    rt::exit(0);
}

}  // namespace

extern "C" int guest_main(uint32_t, uint32_t) {
    n = rt::cmdline_number("n", 10000);
    if (n == 0) n = 1;
    ring3 = rt::cmdline_number("ring3", 0) != 0;
    if (ring3) rt::enter_ring3(bench, ring3_stack + sizeof ring3_stack);
    bench();
}
