#include "vmm/guest_memory.hpp"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

namespace ukvm {

GuestMemoryError::GuestMemoryError(std::uint64_t gpa, std::uint64_t len)
    : std::out_of_range(
          fmt::format("guest-physical range [{:#x}, +{:#x}) is not inside guest RAM", gpa, len)),
      gpa_(gpa),
      len_(len) {}

GuestMemory::GuestMemory(std::uint64_t size)
    : size_(size), low_size_(std::min(size, kLowRamLimit)) {
    if (size == 0 || size % 4096 != 0) {
        throw std::invalid_argument(
            fmt::format("guest RAM size {:#x} is not a non-zero multiple of 4 KiB", size));
    }
    ram_ = Mapping::anonymous(size);
    auto* base = static_cast<std::uint8_t*>(ram_.get());
    regions_.push_back({0, low_size_, base});
    if (high_size() > 0) regions_.push_back({kHighRamBase, high_size(), base + low_size_});
}

std::uint8_t* GuestMemory::find(std::uint64_t gpa, std::uint64_t len) const noexcept {
    for (const Region& r : regions_) {
        // Written so that nothing can wrap: gpa >= r.gpa first, then compare lengths.
        if (gpa >= r.gpa && gpa - r.gpa <= r.size && len <= r.size - (gpa - r.gpa)) {
            return r.host + (gpa - r.gpa);
        }
    }
    return nullptr;
}

bool GuestMemory::contains(std::uint64_t gpa, std::uint64_t len) const noexcept {
    return len == 0 || find(gpa, len) != nullptr;
}

std::span<std::uint8_t> GuestMemory::span(std::uint64_t gpa, std::uint64_t len) {
    if (len == 0) return {};
    std::uint8_t* p = find(gpa, len);
    if (p == nullptr) throw GuestMemoryError(gpa, len);
    return {p, static_cast<std::size_t>(len)};
}

std::span<const std::uint8_t> GuestMemory::span(std::uint64_t gpa, std::uint64_t len) const {
    return const_cast<GuestMemory*>(this)->span(gpa, len);
}

void GuestMemory::read(std::uint64_t gpa, std::span<std::uint8_t> out) const {
    auto src = span(gpa, out.size());
    std::copy(src.begin(), src.end(), out.begin());
}

void GuestMemory::write(std::uint64_t gpa, std::span<const std::uint8_t> in) {
    auto dst = span(gpa, in.size());
    std::copy(in.begin(), in.end(), dst.begin());
}

void GuestMemory::fill(std::uint64_t gpa, std::uint64_t len, std::uint8_t value) {
    auto dst = span(gpa, len);
    std::fill(dst.begin(), dst.end(), value);
}

std::uint64_t GuestMemory::resident_bytes() const {
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> pages;
    std::uint64_t resident = 0;
    for (const Region& r : regions_) {
        pages.assign((r.size + page - 1) / page, 0);
        if (::mincore(r.host, r.size, pages.data()) != 0) continue;  // unknown: count none
        for (unsigned char p : pages) resident += (p & 1) ? page : 0;
    }
    return resident;
}

}  // namespace ukvm
