// Micro-benchmarks (Google Benchmark) of the VMM's own share of a hypercall: what ukvm
// spends between the KVM exit and re-entering the guest, next to the bus dispatch that
// precedes it. Compare with ukvm-bench's hypercall round trip (an exit costs ~10 µs here).
#include <benchmark/benchmark.h>

#include <cstring>

#include "ukvm/hypercall.h"
#include "vmm/bus.hpp"
#include "vmm/console.hpp"
#include "vmm/devices/hypercall.hpp"
#include "vmm/guest_memory.hpp"

namespace {

namespace hc = ukvm::hc;

class NullSink : public ukvm::ConsoleSink {
public:
    void write(std::span<const std::uint8_t> bytes) override {
        benchmark::DoNotOptimize(bytes.data());
    }
};

constexpr std::uint64_t kMessage = 0x10000;
constexpr std::uint64_t kText = 0x20000;

struct Fixture {
    ukvm::GuestMemory memory{16 << 20};
    NullSink sink;
    ukvm::HypercallHandler handler{memory, sink, {memory.size(), 1, "bench"}};
    ukvm::HypercallPort port{handler, [](int) {}};

    void put(hc::Call call, const void* payload = nullptr, std::size_t len = 0) {
        hc::Message m{};
        m.m_type = call;
        if (payload) std::memcpy(m.payload, payload, len);
        memory.write(kMessage, m);
    }
};

void handle(benchmark::State& state, hc::Call call, bool through_bus) {
    Fixture f;
    ukvm::Bus pio{ukvm::BusKind::Pio};
    pio.add(hc::kPort, 1, f.port, "hypercall");
    const hc::BufferRequest text{kText, 64};
    std::uint8_t doorbell[4];
    const auto gpa = static_cast<std::uint32_t>(kMessage);
    std::memcpy(doorbell, &gpa, sizeof gpa);
    for (auto _ : state) {
        // The reply overwrites the request, as in a guest; restore it each time.
        f.put(call, &text, sizeof text);
        if (through_bus) {
            pio.write(hc::kPort, doorbell);
        } else {
            benchmark::DoNotOptimize(f.handler.handle(kMessage));
        }
    }
}

void BM_HypercallVersion(benchmark::State& s) {
    handle(s, hc::kVersion, false);
}
void BM_HypercallTime(benchmark::State& s) {
    handle(s, hc::kTime, false);
}
void BM_HypercallConsoleWrite64(benchmark::State& s) {
    handle(s, hc::kConsoleWrite, false);
}
void BM_HypercallVersionThroughBus(benchmark::State& s) {
    handle(s, hc::kVersion, true);
}

void BM_GuestMemoryReadMessage(benchmark::State& state) {
    ukvm::GuestMemory memory(16 << 20);
    for (auto _ : state) benchmark::DoNotOptimize(memory.read<hc::Message>(kMessage));
}

BENCHMARK(BM_HypercallVersion);
BENCHMARK(BM_HypercallTime);
BENCHMARK(BM_HypercallConsoleWrite64);
BENCHMARK(BM_HypercallVersionThroughBus);
BENCHMARK(BM_GuestMemoryReadMessage);

}  // namespace

BENCHMARK_MAIN();
