#include "vmm/guest_memory.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <limits>

namespace ukvm {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

TEST(GuestMemory, SmallRamIsOneLowRegion) {
    GuestMemory mem(16 * kMiB);
    ASSERT_EQ(mem.regions().size(), 1u);
    EXPECT_EQ(mem.regions()[0].gpa, 0u);
    EXPECT_EQ(mem.regions()[0].size, 16 * kMiB);
    EXPECT_EQ(mem.low_size(), 16 * kMiB);
    EXPECT_EQ(mem.high_size(), 0u);
}

TEST(GuestMemory, ResidentBytesCountsOnlyTouchedPages) {
    GuestMemory memory(64 << 20);
    const std::uint64_t before = memory.resident_bytes();
    EXPECT_LT(before, 64u << 20);
    memory.fill(8 << 20, 4 << 20, 0xAB);  // 4 MiB written: at least that much is backed now
    EXPECT_GE(memory.resident_bytes(), before + (4u << 20));
    EXPECT_LT(memory.resident_bytes(), 64u << 20);
}

TEST(GuestMemory, RejectsBadSizes) {
    EXPECT_THROW(GuestMemory(0), std::invalid_argument);
    EXPECT_THROW(GuestMemory(4096 + 1), std::invalid_argument);
}

TEST(GuestMemory, LastByteAndOnePast) {
    GuestMemory mem(2 * kMiB);
    const std::uint64_t end = 2 * kMiB;
    mem.write<std::uint8_t>(end - 1, 0xAB);
    EXPECT_EQ(mem.read<std::uint8_t>(end - 1), 0xAB);
    EXPECT_TRUE(mem.contains(end - 1, 1));
    EXPECT_FALSE(mem.contains(end, 1));
    EXPECT_FALSE(mem.contains(end - 1, 2));
    EXPECT_THROW(mem.read<std::uint8_t>(end), GuestMemoryError);
    EXPECT_THROW(mem.write<std::uint16_t>(end - 1, 0), GuestMemoryError);
    EXPECT_THROW(mem.span(0, end + 1), GuestMemoryError);
    EXPECT_EQ(mem.span(0, end).size(), end);
}

TEST(GuestMemory, WrapAt64BitsIsRejected) {
    GuestMemory mem(2 * kMiB);
    EXPECT_FALSE(mem.contains(kMax, 2));
    EXPECT_FALSE(mem.contains(16, kMax));
    EXPECT_FALSE(mem.contains(kMax - 3, 8));
    EXPECT_THROW(mem.span(1, kMax), GuestMemoryError);
    std::array<std::uint8_t, 8> buf{};
    EXPECT_THROW(mem.read(kMax - 3, buf), GuestMemoryError);
}

TEST(GuestMemory, ZeroLengthTouchesNothingAndIsValid) {
    GuestMemory mem(2 * kMiB);
    EXPECT_TRUE(mem.contains(kMax, 0));
    EXPECT_TRUE(mem.span(kMax, 0).empty());
    mem.write(5 * kMiB, std::span<const std::uint8_t>{});
}

TEST(GuestMemory, FailureNamesTheRangeAndLeavesMemoryAlone) {
    GuestMemory mem(2 * kMiB);
    std::array<std::uint8_t, 4> data{1, 2, 3, 4};
    try {
        mem.write(2 * kMiB - 2, data);
        FAIL() << "write across the end of RAM succeeded";
    } catch (const GuestMemoryError& e) {
        EXPECT_EQ(e.gpa(), 2 * kMiB - 2);
        EXPECT_EQ(e.length(), 4u);
        EXPECT_NE(std::string(e.what()).find("0x1ffffe"), std::string::npos) << e.what();
    }
    EXPECT_EQ(mem.read<std::uint16_t>(2 * kMiB - 2), 0u);
}

TEST(GuestMemory, TypedRoundTrip) {
    GuestMemory mem(2 * kMiB);
    struct Pair {
        std::uint32_t a;
        std::uint64_t b;
    };
    mem.write(0x1000, Pair{7, 0x1122334455667788});
    Pair p = mem.read<Pair>(0x1000);
    EXPECT_EQ(p.a, 7u);
    EXPECT_EQ(p.b, 0x1122334455667788u);
    EXPECT_EQ(mem.read<std::uint8_t>(0x1000 + offsetof(Pair, b)), 0x88);
}

// 4 GiB + 8 MiB of RAM (reserved lazily, never touched beyond a few pages).
class HoleTest : public ::testing::Test {
protected:
    GuestMemory mem{kLowRamLimit + 8 * kMiB};
};

TEST_F(HoleTest, LayoutSplitsAroundTheHole) {
    ASSERT_EQ(mem.regions().size(), 2u);
    EXPECT_EQ(mem.regions()[0].gpa, 0u);
    EXPECT_EQ(mem.regions()[0].size, kLowRamLimit);
    EXPECT_EQ(mem.regions()[1].gpa, kHighRamBase);
    EXPECT_EQ(mem.regions()[1].size, 8 * kMiB);
}

TEST_F(HoleTest, StraddlingTheHoleIsRejected) {
    EXPECT_TRUE(mem.contains(kLowRamLimit - 4, 4));
    EXPECT_FALSE(mem.contains(kLowRamLimit - 4, 8));
    EXPECT_FALSE(mem.contains(kLowRamLimit, 1));
    EXPECT_FALSE(mem.contains(kHighRamBase - 1, 1));
    EXPECT_FALSE(mem.contains(kHighRamBase - 4, 8));
    EXPECT_FALSE(mem.contains(kLowRamLimit - 4, kHighRamBase - kLowRamLimit + 8));
    EXPECT_TRUE(mem.contains(kHighRamBase, 8 * kMiB));
    EXPECT_FALSE(mem.contains(kHighRamBase, 8 * kMiB + 1));
}

TEST_F(HoleTest, HighRamIsDistinctFromLowRam) {
    mem.write<std::uint32_t>(kHighRamBase, 0xCAFEF00D);
    mem.write<std::uint32_t>(kLowRamLimit - 4, 0x12345678);
    EXPECT_EQ(mem.read<std::uint32_t>(kHighRamBase), 0xCAFEF00Du);
    EXPECT_EQ(mem.read<std::uint32_t>(kLowRamLimit - 4), 0x12345678u);
    EXPECT_EQ(mem.read<std::uint32_t>(0), 0u);
}

}  // namespace
}  // namespace ukvm
