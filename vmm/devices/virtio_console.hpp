// virtio-console (virtio 1.x, 5.3) with one port: receiveq (0) carries host input to the
// guest, transmitq (1) the guest's output to a ConsoleSink. No MULTIPORT, SIZE or
// EMERG_WRITE. Input arrives from any thread (queue_input); the transport then runs
// process_queue(0), which fills the guest's receive buffers.
#pragma once

#include <linux/virtio_console.h>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>

#include "vmm/devices/virtio_device.hpp"

namespace ukvm {

class ConsoleSink;

class VirtioConsole : public VirtioDevice {
public:
    static constexpr std::uint16_t kReceiveQueue = 0;
    static constexpr std::uint16_t kTransmitQueue = 1;
    // Input held for a driver that has not posted receive buffers yet; beyond it bytes are
    // dropped (and counted), as a UART's receiver overruns.
    static constexpr std::size_t kMaxPendingInput = 64 * 1024;

    VirtioConsole(VirtioMemory& memory, ConsoleSink& output);

    std::uint16_t device_id() const override { return VIRTIO_ID_CONSOLE; }
    std::uint8_t pci_class() const override { return 0x07; }     // communication
    std::uint8_t pci_subclass() const override { return 0x80; }  // other
    std::uint64_t device_features() const override { return 0; }
    std::uint16_t num_queues() const override { return 2; }
    std::span<const std::uint8_t> config_bytes() const override;
    void activate(std::uint64_t features) override;
    void reset() override;
    const char* process(std::uint16_t index, VirtQueue& queue) override;

    // Whether a driver runs the device (DRIVER_OK and not reset since): only then should
    // the console route input here.
    bool active() const { return active_.load(std::memory_order_acquire); }
    // Host input for the guest (any thread); the caller then has the transport process
    // kReceiveQueue.
    void queue_input(std::span<const std::uint8_t> bytes);

    struct Stats {
        std::uint64_t transmitted = 0;  // bytes the guest wrote
        std::uint64_t received = 0;     // bytes delivered into receive buffers
        std::uint64_t dropped = 0;      // input bytes lost to a full pending buffer
    };
    Stats stats() const;

private:
    const char* receive(VirtQueue& queue);
    const char* transmit(VirtQueue& queue);

    VirtioMemory& memory_;
    ConsoleSink& output_;
    virtio_console_config config_{};
    std::atomic<bool> active_{false};
    mutable std::mutex mutex_;  // pending_ and stats_ (input comes from another thread)
    std::deque<std::uint8_t> pending_;
    Stats stats_;
};

}  // namespace ukvm
