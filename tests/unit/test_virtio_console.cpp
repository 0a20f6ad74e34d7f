// virtio-console, driven by driver-side queues over a byte buffer: the guest's transmit
// buffers reach the output sink; host input waits until the guest posts receive buffers,
// fills them in order and split across buffers; a full pending buffer drops and counts;
// buffers in the wrong direction or outside RAM are refused; reset forgets input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/fuzz/byte_memory.hpp"
#include "vmm/console.hpp"
#include "vmm/devices/virtio_console.hpp"

namespace {

using ukvm::ConsoleSink;
using ukvm::VirtioConsole;
using ukvm::VirtQueue;
using ukvm::testing::ByteMemory;
using ukvm::virtio::DriverBuffer;
using ukvm::virtio::DriverQueue;
using ukvm::virtio::QueueError;

class StringSink : public ConsoleSink {
public:
    void write(std::span<const std::uint8_t> bytes) override {
        text.append(bytes.begin(), bytes.end());
    }
    std::string text;
};

constexpr std::uint64_t kRxRing = 0x1000;
constexpr std::uint64_t kTxRing = 0x3000;
constexpr std::uint64_t kData = 0x10000;
constexpr std::size_t kMemory = 0x40000;

std::span<const std::uint8_t> bytes(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

class VirtioConsoleTest : public ::testing::Test {
protected:
    void SetUp() override {
        for (auto [ring, driver, queue] :
             {std::tuple{kRxRing, &rx, &rxq}, std::tuple{kTxRing, &tx, &txq}}) {
            *queue = std::make_unique<VirtQueue>(mem);
            ASSERT_TRUE(driver->init(mem.at(ring), ring, 16));
            ASSERT_EQ((*queue)->enable(16, driver->desc_addr(), driver->avail_addr(),
                                       driver->used_addr()),
                      QueueError::kNone);
        }
        console.activate(0);
    }

    void post(DriverQueue& d, std::vector<DriverBuffer> bufs) {
        ASSERT_GE(d.add(bufs.data(), static_cast<std::uint16_t>(bufs.size())), 0);
        d.publish();
    }

    // The used length of the next used entry, or -1 if there is none.
    std::int64_t used(DriverQueue& d) {
        std::uint16_t head;
        std::uint32_t len = 0;
        if (d.take_used(head, len) != DriverQueue::UsedResult::kTaken) return -1;
        return len;
    }

    std::string at(std::uint64_t gpa, std::size_t n) {
        return {reinterpret_cast<const char*>(mem.at(gpa)), n};
    }

    ByteMemory mem{kMemory};
    StringSink sink;
    VirtioConsole console{mem, sink};
    DriverQueue rx, tx;
    std::unique_ptr<VirtQueue> rxq, txq;
};

TEST_F(VirtioConsoleTest, TransmitBuffersReachTheOutput) {
    std::memcpy(mem.at(kData), "hello, ", 7);
    std::memcpy(mem.at(kData + 0x100), "world\n", 6);
    post(tx, {{kData, 7, false}, {kData + 0x100, 6, false}});
    post(tx, {{kData + 0x100, 6, false}});
    EXPECT_EQ(console.process(VirtioConsole::kTransmitQueue, *txq), nullptr);
    EXPECT_EQ(sink.text, "hello, world\nworld\n");
    EXPECT_EQ(used(tx), 0);
    EXPECT_EQ(used(tx), 0);
    EXPECT_EQ(console.stats().transmitted, 19u);
}

TEST_F(VirtioConsoleTest, InputWaitsForReceiveBuffersAndFillsThemInOrder) {
    console.queue_input(bytes("abcdefghij"));
    EXPECT_EQ(console.process(VirtioConsole::kReceiveQueue, *rxq), nullptr);  // no buffers yet
    post(rx, {{kData, 4, true}});
    post(rx, {{kData + 0x100, 2, true}, {kData + 0x200, 8, true}});
    post(rx, {{kData + 0x300, 8, true}});
    EXPECT_EQ(console.process(VirtioConsole::kReceiveQueue, *rxq), nullptr);
    EXPECT_EQ(used(rx), 4);
    EXPECT_EQ(at(kData, 4), "abcd");
    EXPECT_EQ(used(rx), 6);  // split over two segments
    EXPECT_EQ(at(kData + 0x100, 2) + at(kData + 0x200, 4), "efghij");
    EXPECT_EQ(used(rx), -1);  // the third buffer waits for more input
    console.queue_input(bytes("k"));
    EXPECT_EQ(console.process(VirtioConsole::kReceiveQueue, *rxq), nullptr);
    EXPECT_EQ(used(rx), 1);
    EXPECT_EQ(at(kData + 0x300, 1), "k");
    EXPECT_EQ(console.stats().received, 11u);
}

TEST_F(VirtioConsoleTest, AFullPendingBufferDropsAndCounts) {
    std::string big(VirtioConsole::kMaxPendingInput + 10, 'x');
    console.queue_input(bytes(big));
    EXPECT_EQ(console.stats().dropped, 10u);
}

TEST_F(VirtioConsoleTest, ResetForgetsInputAndDeactivates) {
    console.queue_input(bytes("lost"));
    EXPECT_TRUE(console.active());
    console.reset();
    EXPECT_FALSE(console.active());
    post(rx, {{kData, 8, true}});
    EXPECT_EQ(console.process(VirtioConsole::kReceiveQueue, *rxq), nullptr);
    EXPECT_EQ(used(rx), -1);
}

TEST_F(VirtioConsoleTest, WrongDirectionsAndAddressesAreRefused) {
    post(tx, {{kData, 4, true}});  // a device-writable transmit buffer
    EXPECT_THAT(console.process(VirtioConsole::kTransmitQueue, *txq),
                ::testing::HasSubstr("device-writable"));
    console.queue_input(bytes("x"));
    post(rx, {{kData, 4, false}});  // a device-readable receive buffer
    EXPECT_THAT(console.process(VirtioConsole::kReceiveQueue, *rxq),
                ::testing::HasSubstr("not (only) device-writable"));
    EXPECT_EQ(sink.text, "");
}

}  // namespace
