// virtio-net (virtio 1.x, 5.1) definitions shared by the VMM's device and the guest's
// driver. Linux's uapi <linux/virtio_net.h> cannot be included from C++ (a member named
// `class`), so the few parts ukvm uses are spelled out here, with the spec's layouts.
//
// Freestanding, like virtio.h.
#pragma once

#include "ukvm/virtio/virtio.h"

namespace ukvm::virtio {

// Queues: receive is 0, transmit is 1 (one pair, no control queue).
inline constexpr uint16_t kNetRxQueue = 0;
inline constexpr uint16_t kNetTxQueue = 1;

// Feature bits (5.1.3).
inline constexpr unsigned kNetFCsum = 0;       // not offered by ukvm
inline constexpr unsigned kNetFGuestCsum = 1;  // not offered by ukvm
inline constexpr unsigned kNetFMtu = 3;        // config.mtu is valid
inline constexpr unsigned kNetFMac = 5;        // config.mac is valid
inline constexpr unsigned kNetFMrgRxbuf = 15;  // not offered by ukvm
inline constexpr unsigned kNetFStatus = 16;    // config.status is valid
inline constexpr unsigned kNetFCtrlVq = 17;    // not offered by ukvm

// config.status bits.
inline constexpr uint16_t kNetStatusLinkUp = 1;
inline constexpr uint16_t kNetStatusAnnounce = 2;

// The device configuration (5.1.4), as far as ukvm fills it.
struct [[gnu::packed]] NetConfig {
    uint8_t mac[6];
    uint16_t status;
    uint16_t max_virtqueue_pairs;
    uint16_t mtu;
    uint32_t speed;  // Mb/s; 0xFFFFFFFF: unknown
    uint8_t duplex;  // 0 half, 1 full, 0xFF unknown
};
static_assert(sizeof(NetConfig) == 17);
static_assert(offsetof(NetConfig, status) == 6);
static_assert(offsetof(NetConfig, mtu) == 10);

// The header in front of every frame in both directions (5.1.6; with VERSION_1 it always
// has num_buffers, 12 bytes).
struct NetHeader {
    uint8_t flags;  // kNetHdrFNeedsCsum, kNetHdrFDataValid
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};
static_assert(sizeof(NetHeader) == 12);

inline constexpr uint8_t kNetHdrFNeedsCsum = 1;
inline constexpr uint8_t kNetHdrFDataValid = 2;
inline constexpr uint8_t kNetHdrGsoNone = 0;

// Ethernet frame bounds without VLAN tags or offloads.
inline constexpr uint32_t kEthHeaderBytes = 14;
inline constexpr uint32_t kEthMaxFrameBytes = 1514;
inline constexpr uint16_t kEthMtu = 1500;

}  // namespace ukvm::virtio
