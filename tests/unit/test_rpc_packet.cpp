// libvirt RPC framing: captured packets, malformed and oversized lengths, split delivery.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "vmm/libvirt/rpc_packet.hpp"

namespace ukvm::libvirt {
namespace {

using Bytes = std::vector<std::uint8_t>;

// virsh's first two packets, captured from the wire: AUTH_LIST (proc 66, serial 0) and
// CONNECT_SUPPORTS_FEATURE (proc 60, serial 1) asking about feature 10 (keepalive).
const Bytes kAuthList = {0x00, 0x00, 0x00, 0x1c, 0x20, 0x00, 0x80, 0x86, 0x00, 0x00,
                         0x00, 0x01, 0x00, 0x00, 0x00, 0x42, 0x00, 0x00, 0x00, 0x00,
                         0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
const Bytes kSupportsKeepalive = {0x00, 0x00, 0x00, 0x20, 0x20, 0x00, 0x80, 0x86, 0x00, 0x00, 0x00,
                                  0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                  0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a};

TEST(RpcPacket, DecodesCapturedCalls) {
    PacketAssembler a;
    Bytes both = kAuthList;
    both.insert(both.end(), kSupportsKeepalive.begin(), kSupportsKeepalive.end());
    a.feed(both);
    auto p1 = a.next();
    ASSERT_TRUE(p1);
    EXPECT_EQ(p1->header.prog, kRemoteProgram);
    EXPECT_EQ(p1->header.vers, 1u);
    EXPECT_EQ(p1->header.proc, 66u);
    EXPECT_EQ(p1->header.type, MessageType::Call);
    EXPECT_EQ(p1->header.serial, 0u);
    EXPECT_EQ(p1->header.status, MessageStatus::Ok);
    EXPECT_TRUE(p1->payload.empty());
    auto p2 = a.next();
    ASSERT_TRUE(p2);
    EXPECT_EQ(p2->header.proc, 60u);
    EXPECT_EQ(p2->header.serial, 1u);
    EXPECT_EQ(p2->payload, (Bytes{0, 0, 0, 10}));
    EXPECT_FALSE(a.next());
    EXPECT_EQ(a.buffered(), 0u);
}

TEST(RpcPacket, AssemblesAPacketDeliveredByteByByte) {
    PacketAssembler a;
    for (std::size_t i = 0; i + 1 < kSupportsKeepalive.size(); ++i) {
        a.feed(std::span(kSupportsKeepalive).subspan(i, 1));
        EXPECT_FALSE(a.next()) << "complete after " << i + 1 << " bytes";
    }
    a.feed(std::span(kSupportsKeepalive).last(1));
    auto p = a.next();
    ASSERT_TRUE(p);
    EXPECT_EQ(p->header.proc, 60u);
}

TEST(RpcPacket, EncodesAReplyThatEchoesTheCall) {
    PacketAssembler a;
    a.feed(kAuthList);
    const Packet call = *a.next();
    const Bytes payload = {0, 0, 0, 1, 0, 0, 0, 0};  // types<20> = [REMOTE_AUTH_NONE]
    const Bytes reply = encode_packet(reply_header(call.header, MessageStatus::Ok), payload);
    EXPECT_EQ(reply, (Bytes{0x00, 0x00, 0x00, 0x24, 0x20, 0x00, 0x80, 0x86, 0x00, 0x00, 0x00, 0x01,
                            0x00, 0x00, 0x00, 0x42, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                            0x00, 0x00, 0x00, 0x00, 0,    0,    0,    1,    0,    0,    0,    0}));
}

TEST(RpcPacket, RejectsLengthBelowTheHeader) {
    PacketAssembler a;
    const Bytes b = {0, 0, 0, 27};
    EXPECT_THROW(a.feed(b), ProtocolError);
    PacketAssembler zero;
    EXPECT_THROW(zero.feed(Bytes{0, 0, 0, 0}), ProtocolError);
}

TEST(RpcPacket, RejectsOversizedLengthBeforeBufferingTheBody) {
    PacketAssembler a;
    // 0x02000005 = 32 MiB + 5: one byte over the maximum.
    EXPECT_THROW(a.feed(Bytes{0x02, 0x00, 0x00, 0x05}), ProtocolError);
    PacketAssembler b;
    EXPECT_THROW(b.feed(Bytes{0xff, 0xff, 0xff, 0xff, 0, 0}), ProtocolError);
    // Exactly the maximum is accepted as a length (the body would follow).
    PacketAssembler c;
    EXPECT_NO_THROW(c.feed(Bytes{0x02, 0x00, 0x00, 0x04}));
    EXPECT_FALSE(c.next());
}

TEST(RpcPacket, ASmallerLimitForRestrictedClients) {
    PacketAssembler a(1024);
    EXPECT_THROW(a.feed(Bytes{0x00, 0x00, 0x04, 0x01}), ProtocolError);  // 1025
    PacketAssembler b(1024);
    EXPECT_NO_THROW(b.feed(Bytes{0x00, 0x00, 0x04, 0x00}));
    PacketAssembler c(SIZE_MAX);  // never above the protocol's own maximum
    EXPECT_THROW(c.feed(Bytes{0x02, 0x00, 0x00, 0x05}), ProtocolError);
}

TEST(RpcPacket, RejectsABadSecondPacketAfterAGoodOne) {
    PacketAssembler a;
    Bytes b = kAuthList;
    b.insert(b.end(), {0xff, 0xff, 0xff, 0xff});
    a.feed(b);
    EXPECT_TRUE(a.next());
    EXPECT_THROW(a.next(), ProtocolError);
}

TEST(RpcPacket, RejectsUnknownTypeAndStatus) {
    Bytes bad_type = kAuthList;
    bad_type[19] = 7;
    PacketAssembler a;
    a.feed(bad_type);
    EXPECT_THROW(a.next(), ProtocolError);
    Bytes bad_status = kAuthList;
    bad_status[27] = 3;
    PacketAssembler b;
    b.feed(bad_status);
    EXPECT_THROW(b.next(), ProtocolError);
}

TEST(RpcPacket, ErrorPayloadLayout) {
    RemoteError err;
    err.code = 39;
    err.domain = 7;
    err.message = "unknown procedure: 999";
    const Bytes b = encode_error(err);
    XdrDecoder d(b);
    EXPECT_EQ(d.i32(), 39);
    EXPECT_EQ(d.i32(), 7);
    EXPECT_EQ(d.optional_string(), "unknown procedure: 999");
    EXPECT_EQ(d.i32(), 2);      // level
    EXPECT_FALSE(d.boolean());  // dom
    EXPECT_FALSE(d.boolean());  // str1
    EXPECT_FALSE(d.boolean());  // str2
    EXPECT_FALSE(d.boolean());  // str3
    EXPECT_EQ(d.i32(), 0);      // int1
    EXPECT_EQ(d.i32(), 0);      // int2
    EXPECT_FALSE(d.boolean());  // net
    EXPECT_NO_THROW(d.expect_end());
    const RemoteError back = decode_error(b);
    EXPECT_EQ(back.code, 39);
    EXPECT_EQ(back.message, "unknown procedure: 999");
}

}  // namespace
}  // namespace ukvm::libvirt
