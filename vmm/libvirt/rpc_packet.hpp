// libvirt RPC framing: a 4-byte big-endian length (the whole packet, itself included), a
// 24-byte header, then the payload. See docs/management.md for the protocol summary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vmm/libvirt/xdr.hpp"

namespace ukvm::libvirt {

inline constexpr std::uint32_t kRemoteProgram = 0x20008086;
inline constexpr std::uint32_t kRemoteVersion = 1;
inline constexpr std::uint32_t kKeepaliveProgram = 0x6b656570;
inline constexpr std::uint32_t kKeepaliveVersion = 1;
inline constexpr std::uint32_t kKeepalivePing = 1;
inline constexpr std::uint32_t kKeepalivePong = 2;

inline constexpr std::size_t kLengthBytes = 4;
inline constexpr std::size_t kHeaderBytes = 24;
// VIR_NET_MESSAGE_MAX: header and payload together.
inline constexpr std::size_t kMaxMessageBytes = 32 * 1024 * 1024;
inline constexpr std::size_t kMaxPacketBytes = kLengthBytes + kMaxMessageBytes;
inline constexpr std::size_t kMinPacketBytes = kLengthBytes + kHeaderBytes;
// Stream data is sent in chunks no larger than this (VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX).
inline constexpr std::size_t kMaxStreamChunk = 256 * 1024 - kMinPacketBytes;

enum class MessageType : std::uint32_t {
    Call = 0,
    Reply = 1,
    Message = 2,
    Stream = 3,
    CallWithFds = 4,
    ReplyWithFds = 5,
    StreamHole = 6,
};

enum class MessageStatus : std::uint32_t { Ok = 0, Error = 1, Continue = 2 };

// A framing or header violation: the connection it came from is closed.
class ProtocolError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Header {
    std::uint32_t prog = kRemoteProgram;
    std::uint32_t vers = kRemoteVersion;
    std::uint32_t proc = 0;
    MessageType type = MessageType::Call;
    std::uint32_t serial = 0;
    MessageStatus status = MessageStatus::Ok;
};

struct Packet {
    Header header;
    std::vector<std::uint8_t> payload;
};

// Decodes the 24 header bytes; rejects unknown types and statuses.
Header decode_header(std::span<const std::uint8_t> bytes);

// Length word + header + payload, ready to send.
std::vector<std::uint8_t> encode_packet(const Header& header,
                                        std::span<const std::uint8_t> payload);

// The reply header for a call: same program, version, procedure and serial.
Header reply_header(const Header& call, MessageStatus status);

// virErrorPtr as remote_error on the wire.
struct RemoteError {
    std::int32_t code = 1;    // virErrorNumber
    std::int32_t domain = 0;  // virErrorDomain
    std::string message;
    std::int32_t level = 2;  // VIR_ERR_ERROR
};
std::vector<std::uint8_t> encode_error(const RemoteError& error);
RemoteError decode_error(std::span<const std::uint8_t> payload);

// Cuts a byte stream into packets. Bytes are appended as they arrive; a complete packet
// is returned once all of it is there. A bad length throws ProtocolError before the
// body is buffered, so a peer cannot make us hold more than one maximal packet.
class PacketAssembler {
public:
    // max_packet: the largest packet accepted, at most kMaxPacketBytes (a server may want
    // less from clients that can only make small calls).
    explicit PacketAssembler(std::size_t max_packet = kMaxPacketBytes)
        : max_packet_(max_packet < kMaxPacketBytes ? max_packet : kMaxPacketBytes) {}
    void feed(std::span<const std::uint8_t> bytes);
    std::optional<Packet> next();
    // Bytes received that do not yet form a whole packet.
    std::size_t buffered() const { return buf_.size() - start_; }

private:
    void check_length(std::uint32_t len) const;
    std::size_t max_packet_;
    std::vector<std::uint8_t> buf_;
    std::size_t start_ = 0;
};

}  // namespace ukvm::libvirt
