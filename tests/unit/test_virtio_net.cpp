// virtio-net on the device side, driven by driver-side queues over a byte buffer: frames
// both ways with the header across descriptor boundaries, drops, receive backpressure
// (the device stops watching the backend without buffers and resumes on the next kick),
// and malformed chains.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "tests/fuzz/byte_memory.hpp"
#include "vmm/devices/virtio_net.hpp"

namespace {

using ukvm::VirtioNet;
using ukvm::VirtQueue;
using ukvm::testing::ByteMemory;
using ukvm::virtio::DriverBuffer;
using ukvm::virtio::DriverQueue;

class FakeBackend : public ukvm::NetBackend {
public:
    std::deque<std::string> inbound;  // frames the network delivers
    std::vector<std::string> sent;    // frames the guest sent
    int rx_fd() const override { return -1; }
    std::optional<std::size_t> receive(std::span<std::uint8_t> buf) override {
        if (inbound.empty()) return std::nullopt;
        const std::string f = inbound.front();
        inbound.pop_front();
        std::memcpy(buf.data(), f.data(), std::min(f.size(), buf.size()));
        return f.size();
    }
    void send(std::span<const std::uint8_t> frame) override {
        sent.emplace_back(reinterpret_cast<const char*>(frame.data()), frame.size());
    }
    std::string describe() const override { return "fake"; }
};

std::string frame(std::size_t len, char fill = 'f') {
    std::string f(len, fill);
    f.replace(0, 6, "\xff\xff\xff\xff\xff\xff");
    return f;
}

class VirtioNetTest : public ::testing::Test {
protected:
    static constexpr std::uint64_t kRxRing = 0x0000, kTxRing = 0x1000, kBufs = 0x4000;

    void SetUp() override {
        auto b = std::make_unique<FakeBackend>();
        backend = b.get();
        net = std::make_unique<VirtioNet>(std::move(b), mem, ukvm::MacAddress{2, 0, 0, 0, 0, 1});
        net->set_rx_watch([this](bool on) {
            watching = on;
            ++watch_changes;
        });
        ASSERT_TRUE(rxd.init(mem.at(kRxRing), kRxRing, 16));
        ASSERT_TRUE(txd.init(mem.at(kTxRing), kTxRing, 16));
        ASSERT_EQ(rx.enable(16, rxd.desc_addr(), rxd.avail_addr(), rxd.used_addr()),
                  ukvm::virtio::QueueError::kNone);
        ASSERT_EQ(tx.enable(16, txd.desc_addr(), txd.avail_addr(), txd.used_addr()),
                  ukvm::virtio::QueueError::kNone);
        net->activate(0);
    }

    // One receive buffer of len bytes at kBufs + 0x800 * slot.
    void post_rx(int slot, std::uint32_t len = 1526) {
        DriverBuffer b{kBufs + 0x800 * static_cast<std::uint64_t>(slot), len, true};
        ASSERT_GE(rxd.add(&b, 1), 0);
        rxd.publish();
    }
    // Sends header + frame split after `split` bytes into two descriptors.
    void transmit(const std::string& f, std::uint32_t split = 12) {
        const std::uint64_t gpa = kBufs + 0x8000 + 0x800 * tx_count++;
        std::uint8_t* at = mem.at(gpa);
        std::memset(at, 0, 12);
        std::memcpy(at + 12, f.data(), f.size());
        DriverBuffer b[2] = {
            {gpa, split, false},
            {gpa + split, static_cast<std::uint32_t>(12 + f.size() - split), false}};
        ASSERT_GE(txd.add(b, 2), 0);
        txd.publish();
    }

    ByteMemory mem{0x10000};
    FakeBackend* backend = nullptr;
    std::unique_ptr<VirtioNet> net;
    DriverQueue rxd, txd;
    VirtQueue rx{mem}, tx{mem};
    bool watching = false;
    int watch_changes = 0;
    int tx_count = 0;
};

TEST_F(VirtioNetTest, OffersMacStatusMtuAndTheConfig) {
    using ukvm::virtio::feature;
    EXPECT_EQ(net->device_features(), feature(ukvm::virtio::kNetFMac) |
                                          feature(ukvm::virtio::kNetFStatus) |
                                          feature(ukvm::virtio::kNetFMtu));
    ukvm::virtio::NetConfig cfg;
    ASSERT_EQ(net->config_bytes().size(), sizeof cfg);
    std::memcpy(&cfg, net->config_bytes().data(), sizeof cfg);
    EXPECT_EQ(cfg.mac[0], 2);
    EXPECT_EQ(cfg.mac[5], 1);
    EXPECT_EQ(cfg.status, ukvm::virtio::kNetStatusLinkUp);
    EXPECT_EQ(cfg.mtu, 1500);
}

TEST_F(VirtioNetTest, TransmitsFramesWhateverTheDescriptorBoundaries) {
    transmit(frame(60), 12);
    transmit(frame(1514, 'g'), 5);  // header split across descriptors
    transmit(frame(100, 'h'), 40);  // header and frame in one descriptor, then the rest
    EXPECT_EQ(net->process(VirtioNet::kTxQueue, tx), nullptr);
    ASSERT_EQ(backend->sent.size(), 3u);
    EXPECT_EQ(backend->sent[0], frame(60));
    EXPECT_EQ(backend->sent[1], frame(1514, 'g'));
    EXPECT_EQ(backend->sent[2], frame(100, 'h'));
    EXPECT_EQ(net->stats().tx_frames, 3u);
}

TEST_F(VirtioNetTest, DropsTransmitFramesOutsideTheBoundsAndOffloadHeaders) {
    transmit(frame(13));
    transmit(frame(1515));
    transmit(frame(60));
    mem.at(kBufs + 0x8000 + 0x800 * 2)[0] = ukvm::virtio::kNetHdrFNeedsCsum;  // asks for csum
    EXPECT_EQ(net->process(VirtioNet::kTxQueue, tx), nullptr);
    EXPECT_TRUE(backend->sent.empty());
    EXPECT_EQ(net->stats().tx_dropped, 3u);
    EXPECT_EQ(tx.used_index(), 3);  // every chain was returned
}

TEST_F(VirtioNetTest, ReceivesWithAHeaderAndStopsWatchingWithoutBuffers) {
    EXPECT_TRUE(watching);  // activated
    backend->inbound = {frame(60, 'a'), frame(1514, 'b'), frame(70, 'c')};
    post_rx(0);
    post_rx(1, 12);  // header, then the frame in the next descriptor
    EXPECT_EQ(net->process(VirtioNet::kRxQueue, rx), nullptr);
    EXPECT_EQ(net->stats().rx_frames, 1u);
    // Buffer 1 is too small: frame b is dropped and the buffer returned empty; frame c waits.
    EXPECT_EQ(net->stats().rx_dropped, 1u);
    EXPECT_FALSE(watching);
    EXPECT_EQ(net->stats().rx_paused, 1u);
    std::uint16_t head;
    std::uint32_t len;
    ASSERT_EQ(rxd.take_used(head, len), DriverQueue::UsedResult::kTaken);
    EXPECT_EQ(len, 12u + 60u);
    ukvm::virtio::NetHeader hdr;
    std::memcpy(&hdr, mem.at(kBufs), sizeof hdr);
    EXPECT_EQ(hdr.num_buffers, 1);
    EXPECT_EQ(hdr.flags, 0);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(mem.at(kBufs + 12)), 60), frame(60, 'a'));
    ASSERT_EQ(rxd.take_used(head, len), DriverQueue::UsedResult::kTaken);
    EXPECT_EQ(len, 0u);
    // The guest adds a buffer and notifies: the waiting frame arrives, watching resumes.
    post_rx(2);
    EXPECT_EQ(net->process(VirtioNet::kRxQueue, rx), nullptr);
    EXPECT_TRUE(watching);
    ASSERT_EQ(rxd.take_used(head, len), DriverQueue::UsedResult::kTaken);
    EXPECT_EQ(len, 12u + 70u);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(mem.at(kBufs + 0x1000 + 12)), 70),
              frame(70, 'c'));
}

TEST_F(VirtioNetTest, DropsBadFramesFromTheBackend) {
    backend->inbound = {std::string(5, 'x'), std::string(), frame(1515), frame(65536), frame(64)};
    post_rx(0);
    EXPECT_EQ(net->process(VirtioNet::kRxQueue, rx), nullptr);
    EXPECT_EQ(net->stats().rx_dropped, 4u);
    EXPECT_EQ(net->stats().rx_frames, 1u);
}

TEST_F(VirtioNetTest, MalformedChainsAreDeviceErrors) {
    DriverBuffer ro{kBufs, 1526, false};
    ASSERT_GE(rxd.add(&ro, 1), 0);
    rxd.publish();
    backend->inbound = {frame(60)};
    EXPECT_STREQ(net->process(VirtioNet::kRxQueue, rx),
                 "a virtio-net receive chain has a device-readable buffer");
    DriverBuffer w[2] = {{kBufs, 12, false}, {kBufs + 12, 60, true}};
    ASSERT_GE(txd.add(w, 2), 0);
    txd.publish();
    EXPECT_STREQ(net->process(VirtioNet::kTxQueue, tx),
                 "a virtio-net transmit chain has a device-writable buffer");
}

TEST_F(VirtioNetTest, IdleAndResetStopWatching) {
    EXPECT_TRUE(watching);
    net->idle(VirtioNet::kTxQueue);
    EXPECT_TRUE(watching);
    net->idle(VirtioNet::kRxQueue);
    EXPECT_FALSE(watching);
    net->activate(0);
    EXPECT_TRUE(watching);
    net->reset();
    EXPECT_FALSE(watching);
}

}  // namespace
