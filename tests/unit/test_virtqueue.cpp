// The split virtqueue: a driver-side queue and a device-side queue over one byte buffer,
// a round trip, index wrap-around, notification suppression, and every rule the device
// side enforces against a misbehaving driver.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tests/fuzz/byte_memory.hpp"
#include "ukvm/virtio/virtqueue.h"

namespace {

using ukvm::testing::ByteMemory;
using ukvm::virtio::Chain;
using ukvm::virtio::DeviceQueue;
using ukvm::virtio::DriverBuffer;
using ukvm::virtio::DriverQueue;
using ukvm::virtio::QueueError;

constexpr std::uint64_t kRing = 0x1000;     // where the driver puts its rings
constexpr std::uint64_t kBuffers = 0x8000;  // where request buffers go
constexpr std::size_t kMemory = 0x20000;

class VirtqueueTest : public ::testing::Test {
protected:
    static constexpr std::uint16_t kSize = 8;

    void SetUp() override {
        ASSERT_TRUE(driver.init(mem.at(kRing), kRing, kSize));
        ASSERT_EQ(enable(), QueueError::kNone);
    }

    QueueError enable() {
        return device.enable(kSize, driver.desc_addr(), driver.avail_addr(), driver.used_addr());
    }

    // Adds and publishes a chain; returns its head.
    std::uint16_t offer(std::vector<DriverBuffer> bufs) {
        const std::int32_t head = driver.add(bufs.data(), static_cast<std::uint16_t>(bufs.size()));
        EXPECT_GE(head, 0);
        driver.publish();
        return static_cast<std::uint16_t>(head);
    }

    // Makes descriptor chain starting at `head` available by hand (a misbehaving driver).
    void make_available(std::uint16_t head) {
        auto* avail = driver.avail();
        avail->ring[avail->idx % kSize] = head;
        ++avail->idx;
    }

    QueueError pop_error() {
        Chain chain;
        EXPECT_FALSE(device.pop(chain));
        return device.error();
    }

    ByteMemory mem{kMemory};
    DriverQueue driver;
    DeviceQueue<ByteMemory, 256> device{mem};
};

TEST_F(VirtqueueTest, RoundTrip) {
    const std::uint16_t head = offer({{kBuffers, 16, false},
                                      {kBuffers + 16, 100, false},
                                      {kBuffers + 0x200, 512, true},
                                      {kBuffers + 0x400, 1, true}});
    EXPECT_EQ(driver.free_count(), kSize - 4);

    Chain chain;
    ASSERT_TRUE(device.pop(chain));
    EXPECT_EQ(chain.head, head);
    ASSERT_EQ(chain.count, 4);
    EXPECT_EQ(chain.readable, 2);
    EXPECT_EQ(chain.readable_bytes, 116u);
    EXPECT_EQ(chain.writable_bytes, 513u);
    EXPECT_EQ(chain.segments[1].addr, kBuffers + 16);
    EXPECT_EQ(chain.segments[1].len, 100u);
    EXPECT_FALSE(chain.segments[1].writable);
    EXPECT_TRUE(chain.segments[2].writable);
    EXPECT_EQ(device.in_flight(), 1);
    EXPECT_FALSE(device.pop(chain));  // nothing more
    EXPECT_EQ(device.error(), QueueError::kNone);

    ASSERT_TRUE(device.push(head, 513));
    std::uint16_t used_head = 0;
    std::uint32_t written = 0;
    ASSERT_EQ(driver.take_used(used_head, written), DriverQueue::UsedResult::kTaken);
    EXPECT_EQ(used_head, head);
    EXPECT_EQ(written, 513u);
    EXPECT_EQ(driver.free_count(), kSize);
    EXPECT_EQ(driver.take_used(used_head, written), DriverQueue::UsedResult::kNone);
}

TEST_F(VirtqueueTest, IndicesWrapAround16Bits) {
    // 70000 > 65536 requests, several in flight at a time, each returned in order.
    for (int i = 0; i < 70000; ++i) {
        const std::uint16_t head = offer({{kBuffers, 4, false}, {kBuffers + 8, 4, true}});
        Chain chain;
        ASSERT_TRUE(device.pop(chain)) << i;
        ASSERT_EQ(chain.head, head);
        ASSERT_TRUE(device.push(chain.head, static_cast<std::uint32_t>(i)));
        std::uint16_t h;
        std::uint32_t written;
        ASSERT_EQ(driver.take_used(h, written), DriverQueue::UsedResult::kTaken);
        ASSERT_EQ(written, static_cast<std::uint32_t>(i));
    }
    EXPECT_EQ(device.error(), QueueError::kNone);
    EXPECT_EQ(driver.free_count(), kSize);
}

TEST_F(VirtqueueTest, DriverRunsOutOfDescriptors) {
    std::vector<DriverBuffer> bufs(kSize, DriverBuffer{kBuffers, 1, false});
    EXPECT_EQ(driver.add(bufs.data(), kSize + 1), -1);
    EXPECT_EQ(driver.add(bufs.data(), 0), -1);
    EXPECT_GE(driver.add(bufs.data(), kSize), 0);
    EXPECT_EQ(driver.add(bufs.data(), 1), -1);
}

TEST_F(VirtqueueTest, InterruptSuppression) {
    offer({{kBuffers, 1, true}});
    Chain chain;
    ASSERT_TRUE(device.pop(chain));
    ASSERT_TRUE(device.push(chain.head, 1));
    EXPECT_TRUE(device.wants_interrupt());
    driver.set_interrupts(false);
    EXPECT_FALSE(device.wants_interrupt());
    driver.set_interrupts(true);
    EXPECT_TRUE(device.wants_interrupt());
}

TEST_F(VirtqueueTest, NotifySuppressionReachesTheDriver) {
    std::vector<DriverBuffer> one{{kBuffers, 1, true}};
    driver.add(one.data(), 1);
    EXPECT_TRUE(driver.publish());
    driver.used()->flags = VRING_USED_F_NO_NOTIFY;
    driver.add(one.data(), 1);
    EXPECT_FALSE(driver.publish());
}

TEST_F(VirtqueueTest, DriverRejectsAUsedIdTheDeviceMadeUp) {
    driver.used()->ring[0].id = kSize;  // beyond the table
    driver.used()->idx = 1;
    std::uint16_t h;
    std::uint32_t w;
    EXPECT_EQ(driver.take_used(h, w), DriverQueue::UsedResult::kBadDevice);
}

TEST(VirtqueueLayout, EnableChecksSizeAlignmentAndRange) {
    ByteMemory mem{kMemory};
    DeviceQueue<ByteMemory, 256> q{mem};
    EXPECT_EQ(q.enable(0, 0x1000, 0x2000, 0x3000), QueueError::kBadSize);
    EXPECT_EQ(q.enable(3, 0x1000, 0x2000, 0x3000), QueueError::kBadSize);
    EXPECT_EQ(q.enable(512, 0x1000, 0x2000, 0x3000), QueueError::kBadSize);  // above MaxSize
    EXPECT_FALSE(q.enabled());
    EXPECT_EQ(q.enable(8, 0x1008, 0x2000, 0x3000), QueueError::kMisaligned);
    EXPECT_EQ(q.enable(8, 0x1000, 0x2001, 0x3000), QueueError::kMisaligned);
    EXPECT_EQ(q.enable(8, 0x1000, 0x2000, 0x3002), QueueError::kMisaligned);
    // Each part just past the end of RAM, and one that wraps the address space.
    EXPECT_EQ(q.enable(8, kMemory - 0x70, 0x2000, 0x3000), QueueError::kRingOutOfRange);
    EXPECT_EQ(q.enable(8, 0x1000, kMemory - 0x12, 0x3000), QueueError::kRingOutOfRange);
    EXPECT_EQ(q.enable(8, 0x1000, 0x2000, kMemory - 0x40), QueueError::kRingOutOfRange);
    EXPECT_EQ(q.enable(8, 0xFFFFFFFFFFFFFFF0ull, 0x2000, 0x3000), QueueError::kRingOutOfRange);
    EXPECT_FALSE(q.ready());
    EXPECT_EQ(q.enable(8, kMemory - 0x80, kMemory - 0x14, kMemory - 0x44), QueueError::kNone);
    EXPECT_TRUE(q.ready());
}

TEST(VirtqueueLayout, RingsBelowRamBaseAreRefused) {
    ByteMemory mem{kMemory, 0x100000};
    DeviceQueue<ByteMemory, 256> q{mem};
    EXPECT_EQ(q.enable(8, 0x1000, 0x100000, 0x100100), QueueError::kRingOutOfRange);
    EXPECT_EQ(q.enable(8, 0x100000, 0x100100, 0x100200), QueueError::kNone);
}

TEST_F(VirtqueueTest, AvailIndexTooFarAhead) {
    driver.avail()->idx = kSize + 1;
    EXPECT_EQ(pop_error(), QueueError::kAvailIndex);
}

TEST_F(VirtqueueTest, AvailIndexExactlyAQueueAheadIsFine) {
    std::vector<DriverBuffer> one{{kBuffers, 1, true}};
    for (int i = 0; i < kSize; ++i) driver.add(one.data(), 1);
    driver.publish();
    Chain chain;
    for (int i = 0; i < kSize; ++i) ASSERT_TRUE(device.pop(chain));
    EXPECT_EQ(device.error(), QueueError::kNone);
}

TEST_F(VirtqueueTest, HeadOutOfRange) {
    make_available(kSize);
    EXPECT_EQ(pop_error(), QueueError::kHeadOutOfRange);
}

TEST_F(VirtqueueTest, NextOutOfRange) {
    auto* d = driver.descriptors();
    d[0] = {kBuffers, 4, VRING_DESC_F_NEXT, kSize};
    make_available(0);
    EXPECT_EQ(pop_error(), QueueError::kNextOutOfRange);
}

TEST_F(VirtqueueTest, BufferOutsideRam) {
    driver.descriptors()[0] = {kMemory - 4, 8, 0, 0};
    make_available(0);
    EXPECT_EQ(pop_error(), QueueError::kBufferOutOfRange);
}

TEST_F(VirtqueueTest, BufferWrappingTheAddressSpace) {
    driver.descriptors()[0] = {0xFFFFFFFFFFFFFFF0ull, 0x20, VRING_DESC_F_WRITE, 0};
    make_available(0);
    EXPECT_EQ(pop_error(), QueueError::kBufferOutOfRange);
}

TEST_F(VirtqueueTest, BufferInLaterDescriptorOutsideRam) {
    auto* d = driver.descriptors();
    d[0] = {kBuffers, 16, VRING_DESC_F_NEXT, 1};
    d[1] = {kMemory, 1, VRING_DESC_F_WRITE, 0};
    make_available(0);
    EXPECT_EQ(pop_error(), QueueError::kBufferOutOfRange);
}

TEST_F(VirtqueueTest, SelfLoop) {
    driver.descriptors()[3] = {kBuffers, 4, VRING_DESC_F_NEXT, 3};
    make_available(3);
    EXPECT_EQ(pop_error(), QueueError::kLoop);
}

TEST_F(VirtqueueTest, LongerLoop) {
    auto* d = driver.descriptors();
    d[0] = {kBuffers, 4, VRING_DESC_F_NEXT, 1};
    d[1] = {kBuffers, 4, VRING_DESC_F_NEXT, 2};
    d[2] = {kBuffers, 4, VRING_DESC_F_NEXT, 1};
    make_available(0);
    EXPECT_EQ(pop_error(), QueueError::kLoop);
}

TEST_F(VirtqueueTest, ChainUsingTheWholeTableIsFine) {
    auto* d = driver.descriptors();
    for (std::uint16_t i = 0; i < kSize; ++i) {
        d[i] = {kBuffers, 4, static_cast<std::uint16_t>(i + 1 < kSize ? VRING_DESC_F_NEXT : 0),
                static_cast<std::uint16_t>(i + 1)};
    }
    make_available(0);
    Chain chain;
    ASSERT_TRUE(device.pop(chain));
    EXPECT_EQ(chain.count, kSize);
}

TEST_F(VirtqueueTest, ChainLongerThanTheDeviceAccepts) {
    device.set_chain_limit(3);
    auto* d = driver.descriptors();
    for (std::uint16_t i = 0; i < 4; ++i) {
        d[i] = {kBuffers, 4, static_cast<std::uint16_t>(i < 3 ? VRING_DESC_F_NEXT : 0),
                static_cast<std::uint16_t>(i + 1)};
    }
    make_available(0);
    EXPECT_EQ(pop_error(), QueueError::kChainTooLong);
}

TEST_F(VirtqueueTest, ChainAtTheDeviceLimitIsFine) {
    device.set_chain_limit(3);
    offer({{kBuffers, 4, false}, {kBuffers, 4, false}, {kBuffers, 4, true}});
    Chain chain;
    EXPECT_TRUE(device.pop(chain));
}

TEST_F(VirtqueueTest, ReadableAfterWritable) {
    auto* d = driver.descriptors();
    d[0] = {kBuffers, 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1};
    d[1] = {kBuffers, 4, 0, 0};
    make_available(0);
    EXPECT_EQ(pop_error(), QueueError::kWrongDirection);
}

TEST_F(VirtqueueTest, IndirectNotOffered) {
    driver.descriptors()[0] = {kBuffers, 32, VRING_DESC_F_INDIRECT, 0};
    make_available(0);
    EXPECT_EQ(pop_error(), QueueError::kIndirect);
}

TEST_F(VirtqueueTest, ErrorIsStickyUntilReset) {
    driver.descriptors()[0] = {kMemory, 1, 0, 0};
    make_available(0);
    EXPECT_EQ(pop_error(), QueueError::kBufferOutOfRange);
    // Fixing the descriptor does not restart the queue: the driver must reset it.
    driver.descriptors()[0] = {kBuffers, 1, 0, 0};
    EXPECT_EQ(pop_error(), QueueError::kBufferOutOfRange);
    EXPECT_FALSE(device.push(0, 0));
    EXPECT_FALSE(device.wants_interrupt());
    device.reset();
    EXPECT_FALSE(device.enabled());
    EXPECT_EQ(device.error(), QueueError::kNone);
}

TEST_F(VirtqueueTest, DeviceNeverWritesOutsideTheUsedRing) {
    // Snapshot everything but the used ring; a full cycle must leave it untouched.
    offer({{kBuffers, 4, false}});
    std::vector<std::uint8_t> before(mem.at(0), mem.at(0) + mem.size());
    Chain chain;
    ASSERT_TRUE(device.pop(chain));
    ASSERT_TRUE(device.push(chain.head, 0));
    const std::uint64_t used = driver.used_addr();
    const std::uint64_t used_end = used + ukvm::virtio::used_ring_bytes(kSize);
    for (std::uint64_t a = 0; a < mem.size(); ++a) {
        if (a >= used && a < used_end) continue;
        ASSERT_EQ(mem.at(a)[0], before[a]) << "byte " << a;
    }
}

}  // namespace
