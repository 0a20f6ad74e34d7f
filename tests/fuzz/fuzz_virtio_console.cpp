// Fuzzes virtio-console on the device side: the input is guest RAM holding two 16-entry
// queues at fixed places (receiveq: descriptors 0x0, available 0x100, used 0x200;
// transmitq: 0x400, 0x500, 0x600) and whatever buffers the fuzzer makes up; its last 64
// bytes are also typed as host input. Anything but a clean return is a bug.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tests/fuzz/byte_memory.hpp"
#include "vmm/console.hpp"
#include "vmm/devices/virtio_console.hpp"

namespace {
constexpr std::size_t kRam = 0x4000;

class CountingSink : public ukvm::ConsoleSink {
public:
    void write(std::span<const std::uint8_t> bytes) override { total += bytes.size(); }
    std::size_t total = 0;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ukvm::testing::ByteMemory mem(kRam);
    std::memcpy(mem.at(0), data, std::min(size, kRam));
    CountingSink sink;
    ukvm::VirtioConsole console(mem, sink);
    console.activate(0);
    ukvm::VirtQueue rx(mem), tx(mem);
    if (rx.enable(16, 0x0, 0x100, 0x200) != ukvm::virtio::QueueError::kNone) std::abort();
    if (tx.enable(16, 0x400, 0x500, 0x600) != ukvm::virtio::QueueError::kNone) std::abort();
    const std::size_t typed = std::min<std::size_t>(size, 64);
    console.queue_input({data + size - typed, typed});
    console.process(ukvm::VirtioConsole::kTransmitQueue, tx);
    console.process(ukvm::VirtioConsole::kReceiveQueue, rx);
    if (console.stats().received > typed) std::abort();
    return 0;
}
