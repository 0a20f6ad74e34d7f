// XDR (RFC 4506) as libvirt's RPC protocol uses it: big-endian 4-byte units. The decoder
// trusts nothing: every length is checked against the bytes that remain and against the
// protocol's maxima before anything is allocated.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ukvm::libvirt {

// Malformed or oversized XDR from a peer.
class XdrError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// REMOTE_STRING_MAX: the longest string (domain XML included) either side accepts.
inline constexpr std::size_t kMaxStringBytes = 4 * 1024 * 1024;

using Uuid = std::array<std::uint8_t, 16>;

class XdrEncoder {
public:
    void u32(std::uint32_t v);
    void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
    void u64(std::uint64_t v);
    void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
    void boolean(bool v) { u32(v ? 1 : 0); }
    // Variable-length string or opaque: length, bytes, zero padding to 4.
    void string(std::string_view s);
    void opaque(std::span<const std::uint8_t> bytes);
    // Fixed-length opaque (e.g. a UUID): bytes and padding, no length.
    void fixed_opaque(std::span<const std::uint8_t> bytes);
    // Optional pointer: 0, or 1 and the value.
    void optional_string(const std::optional<std::string>& s);
    // Appends already-encoded bytes.
    void raw(std::span<const std::uint8_t> bytes);

    const std::vector<std::uint8_t>& bytes() const { return buf_; }
    std::vector<std::uint8_t> take() { return std::move(buf_); }
    std::size_t size() const { return buf_.size(); }
    // Overwrites a 4-byte unit already written (the packet length).
    void patch_u32(std::size_t offset, std::uint32_t v);

private:
    void pad(std::size_t n);
    std::vector<std::uint8_t> buf_;
};

class XdrDecoder {
public:
    explicit XdrDecoder(std::span<const std::uint8_t> data) : data_(data) {}

    std::uint32_t u32();
    std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
    std::uint64_t u64();
    std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
    // XDR bools are exactly 0 or 1; anything else is malformed.
    bool boolean();
    std::string string(std::size_t max_bytes = kMaxStringBytes);
    std::vector<std::uint8_t> opaque(std::size_t max_bytes);
    void fixed_opaque(std::span<std::uint8_t> out);
    Uuid uuid();
    std::optional<std::string> optional_string(std::size_t max_bytes = kMaxStringBytes);
    // A variable array's element count: at most max_count, and no more elements than the
    // remaining bytes can hold at min_element_bytes each (so a count cannot make us
    // reserve memory the packet does not back).
    std::uint32_t array_count(std::uint32_t max_count, std::size_t min_element_bytes = 4);

    std::size_t remaining() const { return data_.size() - pos_; }
    // Trailing bytes after a complete message are malformed too.
    void expect_end() const;

private:
    std::span<const std::uint8_t> take(std::size_t n, const char* what);
    std::size_t length(std::size_t max_bytes, const char* what);
    void skip_padding(std::size_t n);

    std::span<const std::uint8_t> data_;
    std::size_t pos_ = 0;
};

}  // namespace ukvm::libvirt
