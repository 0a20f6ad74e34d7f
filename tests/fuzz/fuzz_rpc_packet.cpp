// libFuzzer target for ukvmd's libvirt RPC decoding: packet framing (PacketAssembler,
// decode_header) fed in input-chosen chunk sizes, then each packet's payload decoded as
// the argument shapes the server reads (strings, uuids, optional strings, arrays, bools)
// and as a remote_error. Anything malformed must surface as ProtocolError/XdrError, never
// as a crash, a hang or an allocation the input does not back.
#include <cstddef>
#include <cstdint>
#include <span>

#include "vmm/libvirt/rpc_packet.hpp"
#include "vmm/libvirt/xdr.hpp"

using namespace ukvm::libvirt;

namespace {

// Decodes a payload the way the server's procedures do, steered by the procedure number.
void decode_arguments(const Packet& p) {
    XdrDecoder d(p.payload);
    switch (p.header.proc % 8) {
        case 0:  // remote_nonnull_domain + flags (GET_STATE, GET_XML_DESC, ...)
            d.string(4096);
            d.uuid();
            d.i32();
            d.u32();
            break;
        case 1:  // CONNECT_OPEN: optional name + flags
            d.optional_string(4096);
            d.u32();
            break;
        case 2:  // DEFINE_XML_FLAGS: a big string + flags
            d.string();
            d.u32();
            break;
        case 3:  // an array of domains (a LIST_ALL_DOMAINS reply, as the client reads it)
            for (std::uint32_t n = d.array_count(16384, 24); n > 0; --n) {
                d.string(4096);
                d.uuid();
                d.i32();
            }
            d.u32();
            break;
        case 4:
            (void)decode_error(p.payload);
            return;
        case 5:
            d.boolean();
            d.u64();
            d.i64();
            break;
        case 6:
            d.opaque(1024);
            break;
        default:
            d.optional_string(4096);
            break;
    }
    d.expect_end();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    // The first byte picks the chunk size the stream is delivered in (1..256 bytes).
    const std::size_t chunk = std::size_t{data[0]} + 1;
    std::span<const std::uint8_t> rest(data + 1, size - 1);
    PacketAssembler assembler;
    try {
        while (!rest.empty()) {
            const std::size_t n = rest.size() < chunk ? rest.size() : chunk;
            assembler.feed(rest.first(n));
            rest = rest.subspan(n);
            while (auto p = assembler.next()) {
                try {
                    decode_arguments(*p);
                } catch (const XdrError&) {
                    // Malformed arguments: the server closes the connection.
                }
                // Re-encoding what was decoded must reproduce the header.
                const auto again = encode_packet(p->header, p->payload);
                PacketAssembler check;
                check.feed(again);
                const auto back = check.next();
                if (!back || back->header.proc != p->header.proc ||
                    back->header.serial != p->header.serial || back->payload != p->payload) {
                    __builtin_trap();
                }
            }
        }
    } catch (const ProtocolError&) {
        // Bad framing: the server closes the connection.
    }
    // Never more than one maximal packet plus one chunk is held.
    if (assembler.buffered() > kMaxPacketBytes + 256) __builtin_trap();
    return 0;
}
