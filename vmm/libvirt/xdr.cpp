#include "vmm/libvirt/xdr.hpp"

#include <algorithm>

namespace ukvm::libvirt {
namespace {

constexpr std::size_t padding(std::size_t n) {
    return (4 - n % 4) % 4;
}

}  // namespace

void XdrEncoder::u32(std::uint32_t v) {
    buf_.push_back(static_cast<std::uint8_t>(v >> 24));
    buf_.push_back(static_cast<std::uint8_t>(v >> 16));
    buf_.push_back(static_cast<std::uint8_t>(v >> 8));
    buf_.push_back(static_cast<std::uint8_t>(v));
}

void XdrEncoder::u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v >> 32));
    u32(static_cast<std::uint32_t>(v));
}

void XdrEncoder::pad(std::size_t n) {
    buf_.insert(buf_.end(), padding(n), 0);
}

void XdrEncoder::string(std::string_view s) {
    // Our own strings: an oversized one is a bug in the caller, not peer input.
    if (s.size() > kMaxStringBytes) throw XdrError("string too long to encode");
    u32(static_cast<std::uint32_t>(s.size()));
    buf_.insert(buf_.end(), s.begin(), s.end());
    pad(s.size());
}

void XdrEncoder::opaque(std::span<const std::uint8_t> bytes) {
    if (bytes.size() > UINT32_MAX) throw XdrError("opaque too long to encode");
    u32(static_cast<std::uint32_t>(bytes.size()));
    fixed_opaque(bytes);
}

void XdrEncoder::fixed_opaque(std::span<const std::uint8_t> bytes) {
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
    pad(bytes.size());
}

void XdrEncoder::optional_string(const std::optional<std::string>& s) {
    boolean(s.has_value());
    if (s) string(*s);
}

void XdrEncoder::raw(std::span<const std::uint8_t> bytes) {
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

void XdrEncoder::patch_u32(std::size_t offset, std::uint32_t v) {
    if (offset + 4 > buf_.size()) throw XdrError("patch_u32 past the end");
    buf_[offset] = static_cast<std::uint8_t>(v >> 24);
    buf_[offset + 1] = static_cast<std::uint8_t>(v >> 16);
    buf_[offset + 2] = static_cast<std::uint8_t>(v >> 8);
    buf_[offset + 3] = static_cast<std::uint8_t>(v);
}

std::span<const std::uint8_t> XdrDecoder::take(std::size_t n, const char* what) {
    if (n > remaining()) {
        throw XdrError(std::string("truncated ") + what + ": need " + std::to_string(n) +
                       " bytes, " + std::to_string(remaining()) + " left");
    }
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
}

std::uint32_t XdrDecoder::u32() {
    auto b = take(4, "integer");
    return std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 |
           std::uint32_t{b[3]};
}

std::uint64_t XdrDecoder::u64() {
    if (remaining() < 8) take(8, "hyper");  // throws with the message
    const std::uint64_t hi = u32();
    return hi << 32 | u32();
}

bool XdrDecoder::boolean() {
    const std::uint32_t v = u32();
    if (v > 1) throw XdrError("bool is " + std::to_string(v) + ", not 0 or 1");
    return v == 1;
}

std::size_t XdrDecoder::length(std::size_t max_bytes, const char* what) {
    const std::uint32_t n = u32();
    if (n > max_bytes) {
        throw XdrError(std::string(what) + " length " + std::to_string(n) + " exceeds the limit " +
                       std::to_string(max_bytes));
    }
    // Data and padding must both be present.
    if (n > remaining() || padding(n) > remaining() - n) {
        throw XdrError(std::string(what) + " length " + std::to_string(n) + " exceeds the " +
                       std::to_string(remaining()) + " bytes left");
    }
    return n;
}

void XdrDecoder::skip_padding(std::size_t n) {
    // RFC 4506 requires zero padding; rejecting junk keeps one accepted encoding per value.
    for (std::uint8_t b : take(padding(n), "padding")) {
        if (b != 0) throw XdrError("non-zero padding");
    }
}

std::string XdrDecoder::string(std::size_t max_bytes) {
    const std::size_t n = length(max_bytes, "string");
    auto b = take(n, "string");
    skip_padding(n);
    return std::string(b.begin(), b.end());
}

std::vector<std::uint8_t> XdrDecoder::opaque(std::size_t max_bytes) {
    const std::size_t n = length(max_bytes, "opaque");
    auto b = take(n, "opaque");
    skip_padding(n);
    return {b.begin(), b.end()};
}

void XdrDecoder::fixed_opaque(std::span<std::uint8_t> out) {
    auto b = take(out.size(), "fixed opaque");
    std::copy(b.begin(), b.end(), out.begin());
    skip_padding(out.size());
}

Uuid XdrDecoder::uuid() {
    Uuid u{};
    fixed_opaque(u);
    return u;
}

std::optional<std::string> XdrDecoder::optional_string(std::size_t max_bytes) {
    if (!boolean()) return std::nullopt;
    return string(max_bytes);
}

std::uint32_t XdrDecoder::array_count(std::uint32_t max_count, std::size_t min_element_bytes) {
    const std::uint32_t n = u32();
    if (n > max_count) {
        throw XdrError("array of " + std::to_string(n) + " elements exceeds the limit " +
                       std::to_string(max_count));
    }
    if (min_element_bytes != 0 && n > remaining() / min_element_bytes) {
        throw XdrError("array of " + std::to_string(n) + " elements cannot fit in the " +
                       std::to_string(remaining()) + " bytes left");
    }
    return n;
}

void XdrDecoder::expect_end() const {
    if (remaining() != 0) {
        throw XdrError(std::to_string(remaining()) + " unexpected bytes after the message");
    }
}

}  // namespace ukvm::libvirt
