// The legacy devices through their register interfaces.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "vmm/devices/cmos_rtc.hpp"
#include "vmm/devices/i8042.hpp"
#include "vmm/devices/uart8250.hpp"

namespace ukvm {
namespace {

struct Recorder : ConsoleSink {
    std::string out;
    void write(std::span<const std::uint8_t> b) override { out.append(b.begin(), b.end()); }
};

std::uint8_t in8(Device& d, std::uint64_t off) {
    std::array<std::uint8_t, 1> b{};
    d.read(off, b);
    return b[0];
}
void out8(Device& d, std::uint64_t off, std::uint8_t v) {
    std::array<std::uint8_t, 1> b{v};
    d.write(off, b);
}

class UartTest : public ::testing::Test {
protected:
    Recorder sink;
    std::vector<bool> irq;  // every level change
    Uart8250 uart{sink, [this](bool level) { irq.push_back(level); }};
    bool line() const { return !irq.empty() && irq.back(); }
};

TEST_F(UartTest, TransmitsToTheSink) {
    for (char c : std::string("hi\n")) out8(uart, 0, static_cast<std::uint8_t>(c));
    EXPECT_EQ(sink.out, "hi\n");
    EXPECT_EQ(in8(uart, 5) & 0x60, 0x60);  // THRE | TEMT: always ready
}

TEST_F(UartTest, RegistersReadBack) {
    out8(uart, 1, 0x0F);
    EXPECT_EQ(in8(uart, 1), 0x0F);
    out8(uart, 1, 0xFF);
    EXPECT_EQ(in8(uart, 1), 0x0F);  // upper bits are reserved
    out8(uart, 3, 0x1B);
    EXPECT_EQ(in8(uart, 3), 0x1B);
    out8(uart, 7, 0xA5);
    EXPECT_EQ(in8(uart, 7), 0xA5);
    out8(uart, 4, 0x0B);
    EXPECT_EQ(in8(uart, 4), 0x0B);
}

TEST_F(UartTest, DivisorLatch) {
    out8(uart, 1, 0x00);
    out8(uart, 3, 0x83);  // DLAB
    out8(uart, 0, 0x01);
    out8(uart, 1, 0x02);
    EXPECT_EQ(in8(uart, 0), 0x01);
    EXPECT_EQ(in8(uart, 1), 0x02);
    out8(uart, 3, 0x03);
    EXPECT_EQ(in8(uart, 1), 0x00);  // IER again, untouched by the divisor writes
    EXPECT_EQ(sink.out, "");        // the divisor write did not transmit
}

TEST_F(UartTest, ThrEmptyInterrupt) {
    EXPECT_EQ(in8(uart, 2) & 0x0F, 0x01);  // nothing pending
    out8(uart, 1, 0x02);                   // enable THRE interrupt: THR is empty, so it fires
    EXPECT_TRUE(line());
    EXPECT_EQ(in8(uart, 2) & 0x0F, 0x02);
    EXPECT_FALSE(line());  // reading IIR acknowledged it
    EXPECT_EQ(in8(uart, 2) & 0x0F, 0x01);
    out8(uart, 0, 'x');  // transmitted at once: THR empty again
    EXPECT_TRUE(line());
    EXPECT_EQ(in8(uart, 2) & 0x0F, 0x02);
}

TEST_F(UartTest, ReceiveRaisesRxInterruptWhenEnabled) {
    uart.receive(std::vector<std::uint8_t>{'a'});
    EXPECT_FALSE(line());  // IER off
    EXPECT_EQ(in8(uart, 5) & 0x01, 0x01);
    out8(uart, 1, 0x01);
    EXPECT_TRUE(line());
    EXPECT_EQ(in8(uart, 2) & 0x0F, 0x04);
    EXPECT_EQ(in8(uart, 0), 'a');
    EXPECT_FALSE(line());
    EXPECT_EQ(in8(uart, 5) & 0x01, 0x00);
    EXPECT_EQ(in8(uart, 2) & 0x0F, 0x01);
}

TEST_F(UartTest, FifoEnableShowsInIirAndClearsRx) {
    uart.receive(std::vector<std::uint8_t>{'a', 'b'});
    out8(uart, 2, 0x07);
    EXPECT_EQ(in8(uart, 2) & 0xC0, 0xC0);
    EXPECT_EQ(in8(uart, 5) & 0x01, 0x00);
}

TEST_F(UartTest, OverrunIsReportedOnce) {
    std::vector<std::uint8_t> lots(Uart8250::kRxBufferBytes + 1, 'z');
    uart.receive(lots);
    EXPECT_EQ(in8(uart, 5) & 0x02, 0x02);
    EXPECT_EQ(in8(uart, 5) & 0x02, 0x00);
}

TEST_F(UartTest, Loopback) {
    out8(uart, 4, 0x10 | 0x03);  // loopback, DTR, RTS
    out8(uart, 0, 'q');
    EXPECT_EQ(sink.out, "");
    EXPECT_EQ(in8(uart, 0), 'q');
    EXPECT_EQ(in8(uart, 6) & 0x30, 0x30);  // CTS, DSR follow RTS, DTR
}

TEST(I8042, ResetCommandEndsTheVm) {
    int resets = 0;
    I8042 kbd([&] { ++resets; });
    EXPECT_EQ(in8(kbd.command_port(), 0) & 0x03, 0x00);  // both buffers empty
    out8(kbd.command_port(), 0, 0xAA);
    EXPECT_EQ(in8(kbd.command_port(), 0) & 0x01, 0x01);
    EXPECT_EQ(in8(kbd.data_port(), 0), 0x55);
    EXPECT_EQ(in8(kbd.command_port(), 0) & 0x01, 0x00);
    out8(kbd.command_port(), 0, 0x60);
    out8(kbd.data_port(), 0, 0x20);
    out8(kbd.command_port(), 0, 0x20);
    EXPECT_EQ(in8(kbd.data_port(), 0), 0x20);
    EXPECT_EQ(resets, 0);
    out8(kbd.command_port(), 0, 0xFE);
    EXPECT_EQ(resets, 1);
}

TEST(I8042, OutputPortResetLine) {
    int resets = 0;
    I8042 kbd([&] { ++resets; });
    out8(kbd.command_port(), 0, 0xD1);
    out8(kbd.data_port(), 0, 0x01);  // reset line high: nothing happens
    EXPECT_EQ(resets, 0);
    out8(kbd.command_port(), 0, 0xD1);
    out8(kbd.data_port(), 0, 0x00);
    EXPECT_EQ(resets, 1);
}

// 2024-02-29 13:45:30 UTC, a Thursday.
constexpr std::time_t kFixed = 1709214330;

class RtcTest : public ::testing::Test {
protected:
    CmosRtc rtc{256ull << 20, 0, [] { return kFixed; }};
    std::uint8_t reg(std::uint8_t index) {
        out8(rtc, 0, index);
        return in8(rtc, 1);
    }
    void set(std::uint8_t index, std::uint8_t v) {
        out8(rtc, 0, index);
        out8(rtc, 1, v);
    }
};

TEST_F(RtcTest, BcdTimeByDefault) {
    EXPECT_EQ(reg(0x00), 0x30);
    EXPECT_EQ(reg(0x02), 0x45);
    EXPECT_EQ(reg(0x04), 0x13);
    EXPECT_EQ(reg(0x06), 0x05);  // Thursday, 1 = Sunday
    EXPECT_EQ(reg(0x07), 0x29);
    EXPECT_EQ(reg(0x08), 0x02);
    EXPECT_EQ(reg(0x09), 0x24);
    EXPECT_EQ(reg(0x32), 0x20);
}

TEST_F(RtcTest, BinaryAnd12HourModes) {
    set(0x0B, 0x06);  // binary, 24h
    EXPECT_EQ(reg(0x00), 30);
    EXPECT_EQ(reg(0x04), 13);
    EXPECT_EQ(reg(0x09), 24);
    set(0x0B, 0x04);                 // binary, 12h
    EXPECT_EQ(reg(0x04), 0x80 | 1);  // 1 PM
    set(0x0B, 0x00);                 // BCD, 12h
    EXPECT_EQ(reg(0x04), 0x81);
    EXPECT_EQ(reg(0x0B), 0x00);
}

TEST_F(RtcTest, StatusRegisters) {
    EXPECT_EQ(reg(0x0A) & 0x80, 0);  // never in an update cycle
    EXPECT_EQ(reg(0x0B), 0x02);      // 24h, BCD
    EXPECT_EQ(reg(0x0C), 0x00);
    EXPECT_EQ(reg(0x0D), 0x80);
    set(0x0D, 0x00);
    EXPECT_EQ(reg(0x0D), 0x80);  // read-only
    set(0x0A, 0xA6);
    EXPECT_EQ(reg(0x0A), 0x26);  // UIP cannot be set
}

TEST_F(RtcTest, NmiBitIsIgnoredInTheIndex) {
    out8(rtc, 0, 0x80 | 0x0D);
    EXPECT_EQ(in8(rtc, 1), 0x80);
}

TEST_F(RtcTest, MemorySizes) {
    EXPECT_EQ(reg(0x15) | reg(0x16) << 8, 640);
    EXPECT_EQ(reg(0x17) | reg(0x18) << 8, 63 * 1024);  // capped at 63 MiB
    EXPECT_EQ(reg(0x30) | reg(0x31) << 8, 63 * 1024);
    EXPECT_EQ(reg(0x34) | reg(0x35) << 8, (256 - 16) * 16);  // 64 KiB units above 16 MiB
}

TEST(Rtc, SmallAndLargeMemory) {
    CmosRtc small(8ull << 20, 0);
    out8(small, 0, 0x17);
    EXPECT_EQ(in8(small, 1), (7 * 1024) & 0xFF);
    out8(small, 0, 0x34);
    EXPECT_EQ(in8(small, 1), 0);
    CmosRtc big(3ull << 30, 1ull << 30);
    out8(big, 0, 0x34);
    std::uint32_t v = in8(big, 1);
    out8(big, 0, 0x35);
    v |= in8(big, 1) << 8;
    EXPECT_EQ(v, (3072u - 16) * 16);  // 64 KiB units from 16 MiB up to the hole
    out8(big, 0, 0x5C);
    EXPECT_EQ(in8(big, 1), 0x40);  // 1 GiB = 0x4000 units of 64 KiB
}

TEST(Rtc, ClockFollowsTheHost) {
    CmosRtc rtc(64ull << 20, 0);
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    out8(rtc, 0, 0x09);
    const std::uint8_t year = in8(rtc, 1);
    EXPECT_EQ(year, ((tm.tm_year % 100) / 10) << 4 | (tm.tm_year % 10));
}

}  // namespace
}  // namespace ukvm
