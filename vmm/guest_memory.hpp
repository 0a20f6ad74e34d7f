// Guest RAM and the one checked way to reach it.
//
// RAM is laid out as a PC does: [0, min(size, 3 GiB)) and the rest from 4 GiB, leaving the
// 3-4 GiB hole for MMIO. Every access names a guest-physical range that is checked against
// RAM (bounds, holes, 64-bit wrap) before any byte is touched.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "vmm/kvm.hpp"

namespace ukvm {

// A guest-physical range that is not entirely inside guest RAM.
class GuestMemoryError : public std::out_of_range {
public:
    GuestMemoryError(std::uint64_t gpa, std::uint64_t len);
    std::uint64_t gpa() const { return gpa_; }
    std::uint64_t length() const { return len_; }

private:
    std::uint64_t gpa_;
    std::uint64_t len_;
};

inline constexpr std::uint64_t kLowRamLimit = 3ull << 30;  // start of the MMIO hole
inline constexpr std::uint64_t kHighRamBase = 4ull << 30;  // RAM resumes here

class GuestMemory {
public:
    // One contiguous guest-physical RAM range and where the host sees it.
    struct Region {
        std::uint64_t gpa;
        std::uint64_t size;
        std::uint8_t* host;
    };

    // size bytes of zeroed RAM; size must be a non-zero multiple of 4 KiB.
    explicit GuestMemory(std::uint64_t size);

    std::uint64_t size() const { return size_; }
    std::uint64_t low_size() const { return low_size_; }           // RAM below the hole
    std::uint64_t high_size() const { return size_ - low_size_; }  // RAM from 4 GiB
    std::span<const Region> regions() const { return regions_; }

    // Whether [gpa, gpa + len) lies inside one RAM region. A zero-length range touches no
    // memory and is always valid.
    bool contains(std::uint64_t gpa, std::uint64_t len) const noexcept;

    // The host view of [gpa, gpa + len); throws GuestMemoryError unless contains(gpa, len).
    std::span<std::uint8_t> span(std::uint64_t gpa, std::uint64_t len);
    std::span<const std::uint8_t> span(std::uint64_t gpa, std::uint64_t len) const;

    void read(std::uint64_t gpa, std::span<std::uint8_t> out) const;
    void write(std::uint64_t gpa, std::span<const std::uint8_t> in);
    void fill(std::uint64_t gpa, std::uint64_t len, std::uint8_t value);

    // How much of guest RAM the host has actually backed with pages (mincore), so the
    // VMM's own memory can be told apart from the guest's in the process's RSS.
    std::uint64_t resident_bytes() const;

    template <typename T>
    requires std::is_trivially_copyable_v<T> T read(std::uint64_t gpa)
    const {
        T value;
        std::memcpy(&value, span(gpa, sizeof(T)).data(), sizeof(T));
        return value;
    }

    // Containers are not trivially copyable and go to the span overload instead.
    template <typename T>
    requires std::is_trivially_copyable_v<T>
    void write(std::uint64_t gpa, const T& value) {
        std::memcpy(span(gpa, sizeof(T)).data(), &value, sizeof(T));
    }

private:
    std::uint8_t* find(std::uint64_t gpa, std::uint64_t len) const noexcept;

    std::uint64_t size_;
    std::uint64_t low_size_;
    Mapping ram_;
    std::vector<Region> regions_;
};

}  // namespace ukvm
