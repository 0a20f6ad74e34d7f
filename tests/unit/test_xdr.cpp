// XDR codec against hand-written byte sequences, and its bounds checks.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "vmm/libvirt/xdr.hpp"

namespace ukvm::libvirt {
namespace {

using Bytes = std::vector<std::uint8_t>;

TEST(Xdr, EncodesIntegersBigEndian) {
    XdrEncoder e;
    e.u32(0x01020304);
    e.i32(-2);
    e.u64(0x1122334455667788ull);
    e.i64(-1);
    e.boolean(true);
    EXPECT_EQ(e.bytes(), (Bytes{0x01, 0x02, 0x03, 0x04, 0xff, 0xff, 0xff, 0xfe, 0x11, 0x22,
                                0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0xff, 0xff, 0xff, 0xff,
                                0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01}));
}

TEST(Xdr, EncodesStringsWithLengthAndPadding) {
    XdrEncoder e;
    e.string("ukvm");   // no padding
    e.string("hello");  // 3 bytes of padding
    e.string("");
    EXPECT_EQ(e.bytes(), (Bytes{0,   0,   0,   4,   'u', 'k', 'v', 'm', 0, 0, 0, 5,
                                'h', 'e', 'l', 'l', 'o', 0,   0,   0,   0, 0, 0, 0}));
}

TEST(Xdr, EncodesOptionalsAndFixedOpaque) {
    XdrEncoder e;
    e.optional_string(std::nullopt);
    e.optional_string("ab");
    const std::uint8_t three[3] = {9, 8, 7};
    e.fixed_opaque(three);
    EXPECT_EQ(e.bytes(), (Bytes{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 'a', 'b', 0, 0, 9, 8, 7, 0}));
}

// CONNECT_OPEN's payload as Debian 12's virsh sends it for ukvm+unix:///system?socket=...
// (captured from the wire): optional name "ukvm:///system", flags 0.
const Bytes kConnectOpenArgs = {0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0e, 'u', 'k',
                                'v',  'm',  ':',  '/',  '/',  '/',  's',  'y',  's', 't',
                                'e',  'm',  0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

TEST(Xdr, DecodesCapturedConnectOpenArguments) {
    XdrDecoder d(kConnectOpenArgs);
    EXPECT_EQ(d.optional_string(), "ukvm:///system");
    EXPECT_EQ(d.u32(), 0u);
    EXPECT_NO_THROW(d.expect_end());
}

TEST(Xdr, RoundTripsEveryType) {
    XdrEncoder e;
    e.u32(7);
    e.i32(-7);
    e.u64(UINT64_MAX);
    e.i64(INT64_MIN);
    e.boolean(false);
    e.string("domain");
    const Uuid uuid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    e.fixed_opaque(uuid);
    const std::uint8_t raw[5] = {1, 2, 3, 4, 5};
    e.opaque(raw);
    XdrDecoder d(e.bytes());
    EXPECT_EQ(d.u32(), 7u);
    EXPECT_EQ(d.i32(), -7);
    EXPECT_EQ(d.u64(), UINT64_MAX);
    EXPECT_EQ(d.i64(), INT64_MIN);
    EXPECT_FALSE(d.boolean());
    EXPECT_EQ(d.string(), "domain");
    EXPECT_EQ(d.uuid(), uuid);
    EXPECT_EQ(d.opaque(16), (Bytes{1, 2, 3, 4, 5}));
    EXPECT_NO_THROW(d.expect_end());
}

TEST(Xdr, RejectsTruncatedIntegers) {
    const Bytes three = {0, 0, 1};
    XdrDecoder d(three);
    EXPECT_THROW(d.u32(), XdrError);
    const Bytes six = {0, 0, 0, 1, 0, 0};
    XdrDecoder d64(six);
    EXPECT_THROW(d64.u64(), XdrError);
}

TEST(Xdr, RejectsStringLongerThanTheRemainingBytes) {
    const Bytes b = {0, 0, 0, 8, 'a', 'b', 'c', 'd'};
    XdrDecoder d(b);
    EXPECT_THROW(d.string(), XdrError);
}

TEST(Xdr, RejectsStringWithoutItsPadding) {
    const Bytes b = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 0};  // 2 of 3 padding bytes
    XdrDecoder d(b);
    EXPECT_THROW(d.string(), XdrError);
}

TEST(Xdr, RejectsNonZeroPadding) {
    const Bytes b = {0, 0, 0, 1, 'x', 0, 1, 0};
    XdrDecoder d(b);
    EXPECT_THROW(d.string(), XdrError);
}

TEST(Xdr, RejectsStringAboveTheLimitBeforeLookingForItsBytes) {
    const Bytes b = {0xff, 0xff, 0xff, 0xff};
    XdrDecoder d(b);
    try {
        d.string();
        FAIL() << "no exception";
    } catch (const XdrError& e) {
        EXPECT_NE(std::string(e.what()).find("exceeds the limit"), std::string::npos) << e.what();
    }
    const Bytes small = {0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e', 0, 0, 0};
    XdrDecoder d2(small);
    EXPECT_THROW(d2.string(4), XdrError);
}

TEST(Xdr, RejectsBoolsOtherThanZeroAndOne) {
    const Bytes b = {0, 0, 0, 2};
    XdrDecoder d(b);
    EXPECT_THROW(d.boolean(), XdrError);
}

TEST(Xdr, ArrayCountIsCheckedAgainstLimitAndRemainingBytes) {
    const Bytes over_limit = {0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    XdrDecoder d1(over_limit);
    EXPECT_THROW(d1.array_count(2), XdrError);
    // 1000 elements announced, 4 bytes present.
    const Bytes unbacked = {0, 0, 0x03, 0xe8, 0, 0, 0, 0};
    XdrDecoder d2(unbacked);
    EXPECT_THROW(d2.array_count(16384), XdrError);
    const Bytes ok = {0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2};
    XdrDecoder d3(ok);
    EXPECT_EQ(d3.array_count(2), 2u);
}

TEST(Xdr, TrailingBytesAreAnError) {
    const Bytes b = {0, 0, 0, 1, 0, 0, 0, 0};
    XdrDecoder d(b);
    d.u32();
    EXPECT_THROW(d.expect_end(), XdrError);
}

TEST(Xdr, OptionalStringRejectsBadDiscriminant) {
    const Bytes b = {0, 0, 0, 7};
    XdrDecoder d(b);
    EXPECT_THROW(d.optional_string(), XdrError);
}

}  // namespace
}  // namespace ukvm::libvirt
