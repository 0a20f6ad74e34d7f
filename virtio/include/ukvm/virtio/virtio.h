// Virtio 1.x facts shared by the VMM's devices and the guest's drivers: the Linux uapi
// definitions (rings, PCI capabilities, status and feature bits, block requests), the
// memory-accessor contract the device side is written against, and ring layout sizes.
//
// Freestanding: <stdint.h>, <stddef.h> and the uapi headers only; no exceptions, no library.
#pragma once

#include <stddef.h>
#include <stdint.h>

// Legacy (pre-1.0) ring and PCI layouts are not used: ukvm speaks virtio 1.x only.
// virtio_blk.h's "legacy" block is kept: it holds VIRTIO_BLK_F_FLUSH, a 1.x feature.
#ifndef VIRTIO_RING_NO_LEGACY
#define VIRTIO_RING_NO_LEGACY
#endif
#ifndef VIRTIO_PCI_NO_LEGACY
#define VIRTIO_PCI_NO_LEGACY
#endif

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

namespace ukvm::virtio {

// Virtio 1.x is little-endian on the wire; so is x86, which both sides of ukvm run on.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio 1.x fields are little-endian");

static_assert(sizeof(vring_desc) == 16);
static_assert(sizeof(vring_used_elem) == 8);
static_assert(sizeof(virtio_pci_common_cfg) == 56);
static_assert(sizeof(virtio_pci_cap) == 16);
static_assert(sizeof(virtio_pci_notify_cap) == 20);
static_assert(sizeof(virtio_blk_outhdr) == 16);

inline constexpr uint64_t feature(unsigned bit) {
    return uint64_t{1} << bit;
}

// Device status bits (virtio 1.x, 2.1).
inline constexpr uint8_t kStatusAcknowledge = VIRTIO_CONFIG_S_ACKNOWLEDGE;
inline constexpr uint8_t kStatusDriver = VIRTIO_CONFIG_S_DRIVER;
inline constexpr uint8_t kStatusDriverOk = VIRTIO_CONFIG_S_DRIVER_OK;
inline constexpr uint8_t kStatusFeaturesOk = VIRTIO_CONFIG_S_FEATURES_OK;
inline constexpr uint8_t kStatusNeedsReset = VIRTIO_CONFIG_S_NEEDS_RESET;
inline constexpr uint8_t kStatusFailed = VIRTIO_CONFIG_S_FAILED;

// The split ring's limit (2.7): queue sizes are powers of two up to 32768.
inline constexpr uint32_t kMaxQueueSize = 32768;

inline constexpr bool valid_queue_size(uint32_t size) {
    return size != 0 && size <= kMaxQueueSize && (size & (size - 1)) == 0;
}

// Bytes each part of a split ring occupies for a queue of `size` entries (2.7, without
// VIRTIO_F_EVENT_IDX, which neither side offers).
inline constexpr uint64_t desc_table_bytes(uint32_t size) {
    return uint64_t{16} * size;
}
inline constexpr uint64_t avail_ring_bytes(uint32_t size) {
    return 4 + uint64_t{2} * size;
}
inline constexpr uint64_t used_ring_bytes(uint32_t size) {
    return 4 + uint64_t{8} * size;
}

// Alignment each part must have (2.7, table "Virtqueue Part Alignment").
inline constexpr uint64_t kDescAlign = 16;
inline constexpr uint64_t kAvailAlign = 2;
inline constexpr uint64_t kUsedAlign = 4;

// The virtio-pci identity (4.1.2): vendor 0x1af4, modern device ID 0x1040 + virtio ID.
inline constexpr uint16_t kPciVendor = 0x1af4;
inline constexpr uint16_t kPciModernDeviceBase = 0x1040;

template <typename T>
concept Boolean = requires(T t) {
    static_cast<bool>(t);
};

// What the device side needs from guest memory: every access names a guest-physical range
// and is refused (false) unless the whole range is guest RAM. The VMM plugs in its
// GuestMemory, the fuzzer and unit tests a byte buffer. Accesses copy: the guest can change
// its memory at any time, so the device validates its own copy, never guest memory twice.
template <typename M>
concept MemoryAccessor = requires(M& m, uint64_t gpa, void* out, const void* in, size_t len) {
    { m.contains(gpa, len) } -> Boolean;  // whether [gpa, gpa + len) is all RAM
    { m.read(gpa, out, len) } -> Boolean;
    { m.write(gpa, in, len) } -> Boolean;
};

}  // namespace ukvm::virtio
