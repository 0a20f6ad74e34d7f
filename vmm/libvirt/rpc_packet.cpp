#include "vmm/libvirt/rpc_packet.hpp"

namespace ukvm::libvirt {

Header decode_header(std::span<const std::uint8_t> bytes) {
    if (bytes.size() < kHeaderBytes) throw ProtocolError("packet shorter than its header");
    XdrDecoder d(bytes.first(kHeaderBytes));
    Header h;
    h.prog = d.u32();
    h.vers = d.u32();
    h.proc = d.u32();
    const std::uint32_t type = d.u32();
    h.serial = d.u32();
    const std::uint32_t status = d.u32();
    if (type > static_cast<std::uint32_t>(MessageType::StreamHole)) {
        throw ProtocolError("unknown message type " + std::to_string(type));
    }
    if (status > static_cast<std::uint32_t>(MessageStatus::Continue)) {
        throw ProtocolError("unknown message status " + std::to_string(status));
    }
    h.type = static_cast<MessageType>(type);
    h.status = static_cast<MessageStatus>(status);
    return h;
}

std::vector<std::uint8_t> encode_packet(const Header& h, std::span<const std::uint8_t> payload) {
    if (payload.size() > kMaxMessageBytes - kHeaderBytes) {
        throw ProtocolError("reply of " + std::to_string(payload.size()) +
                            " bytes exceeds the protocol's message limit");
    }
    XdrEncoder e;
    e.u32(static_cast<std::uint32_t>(kMinPacketBytes + payload.size()));
    e.u32(h.prog);
    e.u32(h.vers);
    e.u32(h.proc);
    e.u32(static_cast<std::uint32_t>(h.type));
    e.u32(h.serial);
    e.u32(static_cast<std::uint32_t>(h.status));
    e.raw(payload);
    return e.take();
}

Header reply_header(const Header& call, MessageStatus status) {
    Header h = call;
    h.type = MessageType::Reply;
    h.status = status;
    return h;
}

std::vector<std::uint8_t> encode_error(const RemoteError& error) {
    XdrEncoder e;
    e.i32(error.code);
    e.i32(error.domain);
    e.optional_string(error.message);
    e.i32(error.level);
    e.boolean(false);  // dom
    e.boolean(false);  // str1
    e.boolean(false);  // str2
    e.boolean(false);  // str3
    e.i32(0);          // int1
    e.i32(0);          // int2
    e.boolean(false);  // net
    return e.take();
}

RemoteError decode_error(std::span<const std::uint8_t> payload) {
    XdrDecoder d(payload);
    RemoteError r;
    r.code = d.i32();
    r.domain = d.i32();
    r.message = d.optional_string().value_or("");
    r.level = d.i32();
    return r;  // the optional extras are not needed by our callers (tests)
}

void PacketAssembler::check_length(std::uint32_t len) const {
    if (len < kMinPacketBytes) {
        throw ProtocolError("packet length " + std::to_string(len) + " is below the " +
                            std::to_string(kMinPacketBytes) + "-byte minimum");
    }
    if (len > max_packet_) {
        throw ProtocolError("packet length " + std::to_string(len) + " exceeds the maximum of " +
                            std::to_string(max_packet_));
    }
}

void PacketAssembler::feed(std::span<const std::uint8_t> bytes) {
    // Drop consumed bytes before growing, so the buffer stays at most one packet large.
    if (start_ > 0) {
        buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(start_));
        start_ = 0;
    }
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
    if (buffered() >= kLengthBytes) {
        // Validate the length as soon as it is known, before buffering the body.
        XdrDecoder d(std::span<const std::uint8_t>(buf_).subspan(start_, kLengthBytes));
        const std::uint32_t len = d.u32();
        check_length(len);
    }
}

std::optional<Packet> PacketAssembler::next() {
    if (buffered() < kLengthBytes) return std::nullopt;
    const auto avail = std::span<const std::uint8_t>(buf_).subspan(start_);
    XdrDecoder d(avail.first(kLengthBytes));
    const std::uint32_t len = d.u32();
    check_length(len);
    if (avail.size() < len) return std::nullopt;
    Packet p;
    p.header = decode_header(avail.subspan(kLengthBytes, kHeaderBytes));
    const auto body = avail.subspan(kMinPacketBytes, len - kMinPacketBytes);
    p.payload.assign(body.begin(), body.end());
    start_ += len;
    if (start_ == buf_.size()) {
        buf_.clear();
        start_ = 0;
    }
    return p;
}

}  // namespace ukvm::libvirt
