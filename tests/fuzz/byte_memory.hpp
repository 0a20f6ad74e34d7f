// Guest "RAM" as a plain byte buffer at guest-physical [base, base + size): what the unit
// tests and fuzzers give the virtio device side instead of a VM's memory.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "vmm/devices/virtio_device.hpp"

namespace ukvm::testing {

class ByteMemory final : public VirtioMemory {
public:
    explicit ByteMemory(std::size_t size, std::uint64_t base = 0) : base_(base), bytes_(size) {}

    bool contains(std::uint64_t gpa, std::size_t len) const override {
        if (len == 0) return true;
        return gpa >= base_ && gpa - base_ <= bytes_.size() && len <= bytes_.size() - (gpa - base_);
    }
    bool read(std::uint64_t gpa, void* out, std::size_t len) override {
        if (!contains(gpa, len)) return false;
        if (len != 0) std::memcpy(out, bytes_.data() + (gpa - base_), len);
        return true;
    }
    bool write(std::uint64_t gpa, const void* in, std::size_t len) override {
        if (!contains(gpa, len)) return false;
        if (len != 0) std::memcpy(bytes_.data() + (gpa - base_), in, len);
        return true;
    }
    std::uint8_t* host(std::uint64_t gpa, std::size_t len) override {
        if (len == 0 || !contains(gpa, len)) return nullptr;
        return bytes_.data() + (gpa - base_);
    }

    std::uint64_t base() const { return base_; }
    std::size_t size() const { return bytes_.size(); }
    // The host view of guest address gpa (must be inside).
    std::uint8_t* at(std::uint64_t gpa) { return bytes_.data() + (gpa - base_); }

private:
    std::uint64_t base_;
    std::vector<std::uint8_t> bytes_;
};

static_assert(virtio::MemoryAccessor<ByteMemory>);
static_assert(virtio::MemoryAccessor<VirtioMemory>);

}  // namespace ukvm::testing
