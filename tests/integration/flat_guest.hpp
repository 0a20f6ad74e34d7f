// Hand-assembled test guests: a few bytes of 32-bit code (and optional data) wrapped in a
// Multiboot image with the a.out-kludge header, so tests need no toolchain for the guest.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "vmm/boot/multiboot.hpp"

namespace ukvm::test {

using Bytes = std::vector<std::uint8_t>;

// Code at 0x100000 (entry), data from 0x100100, the Multiboot header at 0x1001C0.
inline constexpr std::uint32_t kFlatLoad = 0x100000;
inline constexpr std::size_t kFlatDataOffset = 0x100;
inline constexpr std::size_t kFlatHeaderOffset = 0x1C0;

inline Bytes flat_guest_image(const Bytes& code, const std::string& data = "") {
    EXPECT_LE(code.size(), kFlatDataOffset);
    EXPECT_LE(data.size(), kFlatHeaderOffset - kFlatDataOffset);
    Bytes b(kFlatHeaderOffset + 32, 0);
    std::copy(code.begin(), code.end(), b.begin());
    auto put32 = [&b](std::size_t off, std::uint32_t v) { std::memcpy(b.data() + off, &v, 4); };
    const std::uint32_t flags = 0x3 | (1u << 16);
    const std::size_t h = kFlatHeaderOffset;
    put32(h, kMultibootHeaderMagic);
    put32(h + 4, flags);
    put32(h + 8, static_cast<std::uint32_t>(-(kMultibootHeaderMagic + flags)));
    put32(h + 12, kFlatLoad + kFlatHeaderOffset);  // header_addr
    put32(h + 16, kFlatLoad);                      // load_addr
    put32(h + 20, 0);                              // load_end: the whole file
    put32(h + 24, 0);                              // no bss
    put32(h + 28, kFlatLoad);                      // entry
    std::copy(data.begin(), data.end(), b.begin() + kFlatDataOffset);
    return b;
}

}  // namespace ukvm::test
