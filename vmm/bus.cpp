#include "vmm/bus.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace ukvm {

namespace {
constexpr std::uint64_t kPostPort = 0x80;         // BIOS POST codes: written by many guests
constexpr std::uint64_t kMmioWarningBudget = 16;  // then one note, then silence
}  // namespace

void Bus::add(std::uint64_t base, std::uint64_t length, Device& device, std::string name) {
    if (length == 0 || base + length - 1 < base) {
        throw BusError(
            fmt::format("{}: range [{:#x}, +{:#x}) is empty or wraps", name, base, length));
    }
    std::lock_guard lock(mutex_);
    auto next = ranges_.lower_bound(base);
    if (next != ranges_.end() && next->first <= base + length - 1) {
        throw BusError(fmt::format("{}: range [{:#x}, +{:#x}) overlaps {}", name, base, length,
                                   next->second.name));
    }
    if (next != ranges_.begin()) {
        auto prev = std::prev(next);
        if (base - prev->first < prev->second.length) {
            throw BusError(fmt::format("{}: range [{:#x}, +{:#x}) overlaps {}", name, base, length,
                                       prev->second.name));
        }
    }
    ranges_.emplace(base, Entry{length, &device, std::move(name)});
}

Bus::Match Bus::find(std::uint64_t addr) const {
    auto it = ranges_.upper_bound(addr);
    if (it == ranges_.begin()) return {nullptr, 0};
    --it;
    std::uint64_t offset = addr - it->first;
    if (offset >= it->second.length) return {nullptr, 0};
    return {it->second.device, offset};
}

bool Bus::read(std::uint64_t addr, std::span<std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    if (auto [device, offset] = find(addr); device != nullptr) {
        device->read(offset, data);
        return true;
    }
    std::fill(data.begin(), data.end(), 0xFF);
    unmapped("read", addr, data.size());
    return false;
}

bool Bus::write(std::uint64_t addr, std::span<const std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    if (auto [device, offset] = find(addr); device != nullptr) {
        device->write(offset, data);
        return true;
    }
    unmapped("write", addr, data.size());
    return false;
}

void Bus::unmapped(const char* what, std::uint64_t addr, std::size_t size) {
    if (kind_ == BusKind::Pio) {
        if (addr == kPostPort) return;
        ++unmapped_;
        spdlog::debug("unmapped port {} of {} bytes at {:#x}", what, size, addr);
        return;
    }
    // A guest polling an absent MMIO device must not flood the log.
    ++unmapped_;
    if (unmapped_ <= kMmioWarningBudget) {
        spdlog::warn("unmapped MMIO {} of {} bytes at {:#x}", what, size, addr);
    }
    if (unmapped_ == kMmioWarningBudget) {
        spdlog::warn("further unmapped MMIO accesses are not reported");
    }
}

}  // namespace ukvm
