// What a virtio device model gives its transport, and the guest memory it works on.
//
// Device models (virtio_blk.cpp, ...) see guest memory only through VirtioMemory, which
// satisfies virtio::MemoryAccessor: the VMM passes guest RAM, unit tests and the fuzzer a
// byte buffer. One virtual interface rather than a template keeps each device one .cpp file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "ukvm/virtio/virtqueue.h"

namespace ukvm {

class VirtioMemory {
public:
    virtual ~VirtioMemory() = default;
    // Whether [gpa, gpa + len) is all RAM (a zero-length range always is).
    virtual bool contains(std::uint64_t gpa, std::size_t len) const = 0;
    virtual bool read(std::uint64_t gpa, void* out, std::size_t len) = 0;
    virtual bool write(std::uint64_t gpa, const void* in, std::size_t len) = 0;
    // The host view of [gpa, gpa + len) for bulk I/O, or nullptr unless contains().
    virtual std::uint8_t* host(std::uint64_t gpa, std::size_t len) = 0;
};

inline constexpr std::uint16_t kVirtQueueMaxSize = 256;
using VirtQueue = virtio::DeviceQueue<VirtioMemory, kVirtQueueMaxSize>;

class VirtioDevice {
public:
    virtual ~VirtioDevice() = default;

    virtual std::uint16_t device_id() const = 0;  // VIRTIO_ID_*
    // PCI class, subclass (virtio 1.x leaves them to the device type).
    virtual std::uint8_t pci_class() const = 0;
    virtual std::uint8_t pci_subclass() const = 0;
    // Features the device offers; the transport adds VIRTIO_F_VERSION_1.
    virtual std::uint64_t device_features() const = 0;
    virtual std::uint16_t num_queues() const = 0;
    // The device-specific configuration structure, read-only to the driver.
    virtual std::span<const std::uint8_t> config_bytes() const = 0;

    // The driver set DRIVER_OK having negotiated `features`.
    virtual void activate(std::uint64_t features) { (void)features; }
    // The driver reset the device.
    virtual void reset() {}

    // Handles every available chain on queue `index`. Returns nullptr, or why the driver's
    // requests cannot be answered at all (the transport then sets DEVICE_NEEDS_RESET).
    // Errors a request can report (bad sector, I/O error) go into its status instead.
    virtual const char* process(std::uint16_t index, VirtQueue& queue) = 0;
    // Queue `index` was due to be processed but cannot run (no DRIVER_OK, DEVICE_NEEDS_RESET,
    // queue disabled or stopped): a device fed from outside (a network backend) stops
    // listening there until activate(), rather than being woken again and again.
    virtual void idle(std::uint16_t index) { (void)index; }
};

}  // namespace ukvm
