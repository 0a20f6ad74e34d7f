// Fuzzes virtio-blk request handling end to end on the device side: the input is guest RAM
// holding a 16-entry queue at fixed places (descriptors at 0x0, available ring at 0x100,
// used ring at 0x200) and whatever requests and buffers the fuzzer makes up; the disk is
// 64 sectors in memory. Anything but a clean return is a bug.
#include <cstdint>
#include <cstring>
#include <vector>

#include "tests/fuzz/byte_memory.hpp"
#include "vmm/devices/virtio_blk.hpp"

namespace {
constexpr std::size_t kRam = 0x4000;
constexpr std::uint64_t kDisk = 64 * 512;

class MemoryDisk : public ukvm::BlockBackend {
public:
    std::uint64_t size() const override { return bytes_.size(); }
    int read(std::uint64_t offset, std::span<std::uint8_t> out) override {
        if (offset > bytes_.size() || out.size() > bytes_.size() - offset) std::abort();
        std::memcpy(out.data(), bytes_.data() + offset, out.size());
        return 0;
    }
    int write(std::uint64_t offset, std::span<const std::uint8_t> in) override {
        if (offset > bytes_.size() || in.size() > bytes_.size() - offset) std::abort();
        std::memcpy(bytes_.data() + offset, in.data(), in.size());
        return 0;
    }
    int flush() override { return 0; }

private:
    std::vector<std::uint8_t> bytes_ = std::vector<std::uint8_t>(kDisk);
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ukvm::testing::ByteMemory mem(kRam);
    std::memcpy(mem.at(0), data, std::min(size, kRam));
    // The last input byte picks a read-only disk, so both kinds get exercised.
    const bool read_only = size > 0 && (data[size - 1] & 1);
    ukvm::VirtioBlk blk(std::make_unique<MemoryDisk>(), mem, read_only, "fuzz");
    ukvm::VirtQueue queue(mem);
    if (queue.enable(16, 0x0, 0x100, 0x200) != ukvm::virtio::QueueError::kNone) std::abort();
    blk.process(0, queue);
    return 0;
}
