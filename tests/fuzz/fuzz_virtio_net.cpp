// Fuzzes virtio-net frame and descriptor handling on the device side: the input is guest
// RAM holding a 16-entry receive queue (descriptors 0x0, available ring 0x100, used ring
// 0x200) and a 16-entry transmit queue (0x400, 0x500, 0x600) with whatever chains, headers
// and frames the fuzzer makes up; the tail of the input (after RAM) is what the backend
// delivers: [len:le16][bytes] per frame, lengths beyond the bytes given are oversized
// frames. Transmit, then receive, then transmit again. Beyond "no crash", every frame the
// device hands to the backend must be a legal Ethernet frame.
#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

#include "tests/fuzz/byte_memory.hpp"
#include "vmm/devices/virtio_net.hpp"

namespace {
constexpr std::size_t kRam = 0x4000;

class FuzzBackend : public ukvm::NetBackend {
public:
    std::deque<std::vector<std::uint8_t>> frames;
    std::deque<std::size_t> lengths;  // claimed lengths (may exceed the bytes)

    int rx_fd() const override { return -1; }
    std::optional<std::size_t> receive(std::span<std::uint8_t> buf) override {
        if (frames.empty()) return std::nullopt;
        const auto f = std::move(frames.front());
        const std::size_t claimed = lengths.front();
        frames.pop_front();
        lengths.pop_front();
        if (!f.empty()) std::memcpy(buf.data(), f.data(), std::min(f.size(), buf.size()));
        return claimed;
    }
    void send(std::span<const std::uint8_t> frame) override {
        if (frame.size() < 14 || frame.size() > 1514) std::abort();
    }
    std::string describe() const override { return "fuzz"; }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool quiet = [] {
        spdlog::set_level(spdlog::level::off);  // drops are expected by the thousand
        return true;
    }();
    (void)quiet;
    ukvm::testing::ByteMemory mem(kRam);
    std::memcpy(mem.at(0), data, std::min(size, kRam));
    auto backend = std::make_unique<FuzzBackend>();
    for (std::size_t at = kRam; at + 2 <= size && backend->frames.size() < 32;) {
        const std::size_t len = data[at] | (data[at + 1] << 8);
        at += 2;
        const std::size_t have = std::min(len, size - at);
        backend->frames.emplace_back(data + at, data + at + have);
        // A frame cut short by the end of the input stands for an oversized one.
        backend->lengths.push_back(have < len ? len + 65536 : len);
        at += have;
    }
    ukvm::VirtioNet net(std::move(backend), mem, {0x52, 0x54, 0, 0, 0, 1});
    bool watching = false;
    net.set_rx_watch([&](bool on) { watching = on; });
    net.activate(0);
    ukvm::VirtQueue rx(mem), tx(mem);
    if (rx.enable(16, 0x0, 0x100, 0x200) != ukvm::virtio::QueueError::kNone) std::abort();
    if (tx.enable(16, 0x400, 0x500, 0x600) != ukvm::virtio::QueueError::kNone) std::abort();
    if (net.process(ukvm::VirtioNet::kTxQueue, tx) == nullptr) {
        net.process(ukvm::VirtioNet::kRxQueue, rx);
        net.process(ukvm::VirtioNet::kTxQueue, tx);
    }
    net.reset();
    if (watching) std::abort();  // a reset device does not listen
    return 0;
}
