// virtio-net (virtio 1.x, 5.1): one receive and one transmit queue, a MAC address, link
// status and the MTU; frames go to and come from a NetBackend. No offloads (no checksum,
// no GSO, no mergeable receive buffers): every frame is 14..1514 bytes behind a 12-byte
// virtio_net_hdr_v1 that carries nothing.
//
// Both queues run on the I/O thread: transmit when the guest notifies queue 1, receive when
// the backend has frames or the guest notifies queue 0 with new buffers. While the guest
// has no receive buffer the device stops watching the backend (set_rx_watch(false)), so
// frames wait in the backend (a tap's queue, a socket's buffer) instead of spinning the
// I/O thread, and it watches again as soon as buffers arrive.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "ukvm/virtio/net.h"
#include "vmm/devices/virtio_device.hpp"
#include "vmm/net/backend.hpp"

namespace ukvm {

class VirtioNet : public VirtioDevice {
public:
    static constexpr std::uint16_t kRxQueue = virtio::kNetRxQueue;
    static constexpr std::uint16_t kTxQueue = virtio::kNetTxQueue;
    static constexpr std::size_t kHeaderBytes = sizeof(virtio::NetHeader);

    VirtioNet(std::unique_ptr<NetBackend> backend, VirtioMemory& memory, const MacAddress& mac);

    std::uint16_t device_id() const override { return VIRTIO_ID_NET; }
    std::uint8_t pci_class() const override { return 0x02; }     // network controller
    std::uint8_t pci_subclass() const override { return 0x00; }  // Ethernet
    std::uint64_t device_features() const override;
    std::uint16_t num_queues() const override { return 2; }
    std::span<const std::uint8_t> config_bytes() const override;
    void activate(std::uint64_t features) override;
    void reset() override;
    const char* process(std::uint16_t index, VirtQueue& queue) override;
    void idle(std::uint16_t index) override;

    NetBackend& backend() { return *backend_; }
    // How the device starts and stops watching the backend's rx_fd (the machine connects
    // it to the I/O thread; tests to a flag). Called with the transport's lock held.
    void set_rx_watch(std::function<void(bool)> on_change);

    // Per-device counters, for tests and diagnostics.
    struct Stats {
        std::uint64_t rx_frames = 0;
        std::uint64_t rx_dropped = 0;  // bad length from the backend, or no room in the chain
        std::uint64_t tx_frames = 0;
        std::uint64_t tx_dropped = 0;  // bad length or a header asking for an offload
        std::uint64_t rx_paused = 0;   // times the guest ran out of receive buffers
    };
    const Stats& stats() const { return stats_; }

private:
    const char* transmit(VirtQueue& queue);
    const char* receive(VirtQueue& queue);
    // Copies the staged frame into one receive chain; returns the bytes written.
    std::uint32_t deliver(const virtio::Chain& chain);
    void watch(bool on);
    void note_drop(const char* what, std::size_t len);

    std::unique_ptr<NetBackend> backend_;
    VirtioMemory& memory_;
    virtio::NetConfig config_{};
    std::function<void(bool)> watch_;
    bool watching_ = false;
    // One frame read from the backend and not yet delivered (the guest had no buffer).
    std::vector<std::uint8_t> rx_frame_;
    std::size_t rx_len_ = 0;
    bool rx_staged_ = false;
    std::vector<std::uint8_t> tx_frame_;
    Stats stats_;
    std::uint64_t drops_logged_ = 0;
};

}  // namespace ukvm
