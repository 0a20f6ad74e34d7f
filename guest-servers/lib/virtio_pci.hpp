// The guest's virtio-pci driver library (modern transport, virtio 1.x) for ring-3 drivers:
// claims a device from the PCI server, maps the BARs its capabilities point into, and
// wraps device initialization (2.1 and 3.1 of the spec), queue setup with the shared
// DriverQueue, notifications, the ISR and the device configuration. Interrupts arrive as
// notifications from kHardware once enable_irq() subscribed to the device's IOAPIC input.
//
//     virtio_pci::Device dev;
//     if (dev.open(VIRTIO_ID_BLOCK, 0) != kOk) ...          // the first virtio-blk
//     uint64_t features;
//     dev.negotiate(wanted, &features);                        // reset .. FEATURES_OK
//     virtio_pci::Dma ring;  virtio_pci::dma_alloc(DriverQueue::ring_bytes(n), &ring);
//     dev.setup_queue(0, n, ring, &queue);                     // then more queues
//     dev.driver_ok();  dev.enable_irq();
//     queue.add(...); if (queue.publish()) dev.notify(0);
//     receive(kHardware) -> dev.isr(); queue.take_used(...)
#pragma once

#include <stdint.h>

#include <ukvm/virtio/virtqueue.h>

#include "proto.hpp"

namespace virtio_pci {

using ukvm::kernel::Endpoint;

// Physically contiguous, zeroed memory the device can reach: va for the driver, pa for
// descriptors and queue registers (kSysMapAnon with kMapContiguous; drivers only).
struct Dma {
    uint8_t* va = nullptr;
    uint64_t pa = 0;
    uint64_t len = 0;
};
int32_t dma_alloc(uint64_t len, Dma* out);

class Device {
public:
    // Claims the index-th modern virtio device of type virtio_id (VIRTIO_ID_*) from the
    // PCI server and maps its structures. kENoDev when there is none; kEPerm when the
    // PCI server's table does not give it to this program.
    int32_t open(uint32_t virtio_id, int index);

    // Reset, ACKNOWLEDGE | DRIVER, then offers wanted & the device's features (plus
    // VIRTIO_F_VERSION_1) and sets FEATURES_OK. *got: what was accepted. kEIo when the
    // device has no VERSION_1 or refuses FEATURES_OK (then FAILED is set).
    int32_t negotiate(uint64_t wanted, uint64_t* got);
    // Queue q with size entries (at most the device's maximum; 0: that maximum, capped at
    // 256), rings in mem (DriverQueue::ring_bytes(size) bytes). kEInval on a bad size.
    int32_t setup_queue(uint16_t q, uint16_t size, const Dma& mem, ukvm::virtio::DriverQueue* dq);
    uint16_t queue_max(uint16_t q);  // 0: no such queue
    void driver_ok();
    void reset();            // device_status = 0, and waits until it reads back 0
    void fail();             // FAILED: the driver gave up on the device
    uint8_t status() const;  // e.g. & kStatusNeedsReset

    void notify(uint16_t q) { *reinterpret_cast<volatile uint16_t*>(notify_addr_[q & 7]) = q; }
    // Reads (and so clears) the ISR: bit 0 a queue interrupt, bit 1 a configuration change.
    uint8_t isr() const { return *isr_; }
    // Subscribes to the device's interrupt (kSysIrqCtl); kENoDev when it has none.
    int32_t enable_irq();
    uint32_t irq() const { return irq_; }  // IOAPIC input, proto::kPciNoIrq when none

    // Device configuration, read consistently (config_generation) byte by byte.
    void read_config(uint32_t offset, void* out, uint32_t len) const;
    uint16_t handle() const { return handle_; }

private:
    int32_t map_bar(uint32_t bar, uint64_t offset, uint64_t len, volatile uint8_t** out);

    uint16_t handle_ = 0;
    uint32_t irq_ = proto::kPciNoIrq;
    volatile virtio_pci_common_cfg* common_ = nullptr;
    volatile uint8_t* isr_ = nullptr;
    volatile uint8_t* device_cfg_ = nullptr;
    volatile uint8_t* notify_base_ = nullptr;
    uint32_t notify_mult_ = 0;
    uint64_t notify_len_ = 0;
    volatile uint8_t* notify_addr_[8] = {};
};

// PCI configuration access through the PCI server (for drivers that need more).
int32_t pci_config_read(uint16_t handle, uint32_t offset, uint32_t width, uint32_t* value);

}  // namespace virtio_pci
