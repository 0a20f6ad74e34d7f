#include "vmm/bus.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace ukvm {
namespace {

// Records accesses; reads return the offset's low byte in every byte.
struct Recorder : Device {
    struct Access {
        bool write;
        std::uint64_t offset;
        std::vector<std::uint8_t> data;
    };
    std::vector<Access> log;
    void read(std::uint64_t offset, std::span<std::uint8_t> data) override {
        for (auto& b : data) b = static_cast<std::uint8_t>(offset);
        log.push_back({false, offset, {data.begin(), data.end()}});
    }
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override {
        log.push_back({true, offset, {data.begin(), data.end()}});
    }
};

TEST(Bus, DispatchesWithOffsets) {
    Bus bus(BusKind::Pio);
    Recorder a, b;
    bus.add(0x3F8, 8, a, "a");
    bus.add(0x400, 1, b, "b");
    std::array<std::uint8_t, 1> one{};
    EXPECT_TRUE(bus.read(0x3FD, one));
    EXPECT_EQ(one[0], 5);
    std::array<std::uint8_t, 4> four{1, 2, 3, 4};
    EXPECT_TRUE(bus.write(0x3F8, four));
    EXPECT_TRUE(bus.write(0x400, one));
    ASSERT_EQ(a.log.size(), 2u);
    EXPECT_FALSE(a.log[0].write);
    EXPECT_EQ(a.log[0].offset, 5u);
    EXPECT_TRUE(a.log[1].write);
    EXPECT_EQ(a.log[1].offset, 0u);
    EXPECT_EQ(a.log[1].data, (std::vector<std::uint8_t>{1, 2, 3, 4}));
    ASSERT_EQ(b.log.size(), 1u);
    EXPECT_EQ(b.log[0].offset, 0u);
}

TEST(Bus, RangeEdges) {
    Bus bus(BusKind::Mmio);
    Recorder a;
    bus.add(0x1000, 0x100, a, "a");
    EXPECT_EQ(bus.find(0x1000).device, &a);
    EXPECT_EQ(bus.find(0x10FF).device, &a);
    EXPECT_EQ(bus.find(0x10FF).offset, 0xFFu);
    EXPECT_EQ(bus.find(0x1100).device, nullptr);
    EXPECT_EQ(bus.find(0xFFF).device, nullptr);
    EXPECT_EQ(bus.find(0).device, nullptr);
}

TEST(Bus, RejectsOverlapsAndBadRanges) {
    Bus bus(BusKind::Mmio);
    Recorder a, b;
    bus.add(0x1000, 0x100, a, "a");
    EXPECT_THROW(bus.add(0x1000, 1, b, "b"), BusError);      // same base
    EXPECT_THROW(bus.add(0x10FF, 1, b, "b"), BusError);      // last byte
    EXPECT_THROW(bus.add(0xF00, 0x101, b, "b"), BusError);   // tail into a
    EXPECT_THROW(bus.add(0xF00, 0x1000, b, "b"), BusError);  // covers a
    EXPECT_THROW(bus.add(0x2000, 0, b, "b"), BusError);
    EXPECT_THROW(bus.add(~0ull, 2, b, "b"), BusError);
    bus.add(0xF00, 0x100, b, "b");    // adjacent below
    bus.add(0x1100, 0x100, b, "b2");  // adjacent above
    bus.add(~0ull, 1, b, "top");      // the very last address
    EXPECT_EQ(bus.find(0xFFF).device, &b);
    EXPECT_EQ(bus.find(0x1100).device, &b);
    EXPECT_EQ(bus.find(~0ull).device, &b);
    try {
        bus.add(0x1050, 4, b, "late");
        FAIL();
    } catch (const BusError& e) {
        EXPECT_NE(std::string(e.what()).find("overlaps a"), std::string::npos) << e.what();
    }
}

TEST(Bus, UnmappedReadsAllOnesAndWritesAreDropped) {
    for (BusKind kind : {BusKind::Pio, BusKind::Mmio}) {
        Bus bus(kind);
        Recorder a;
        bus.add(0x100, 4, a, "a");
        std::array<std::uint8_t, 4> data{0, 0, 0, 0};
        EXPECT_FALSE(bus.read(0x104, data));
        EXPECT_EQ(data, (std::array<std::uint8_t, 4>{0xFF, 0xFF, 0xFF, 0xFF}));
        EXPECT_FALSE(bus.write(0x99, data));
        EXPECT_TRUE(a.log.empty());
        EXPECT_EQ(bus.unmapped_accesses(), 2u);
    }
}

TEST(Bus, PostPortIsSilentlyIgnored) {
    Bus bus(BusKind::Pio);
    std::array<std::uint8_t, 1> data{0x42};
    EXPECT_FALSE(bus.write(0x80, data));
    EXPECT_EQ(bus.unmapped_accesses(), 0u);
}

}  // namespace
}  // namespace ukvm
