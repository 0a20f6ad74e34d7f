// vcon: drives the virtio-console PCI device with the shared driver-side queues
// (ukvm/virtio/virtqueue.h), polling: PCI scan, capabilities, features, receiveq 0 and
// transmitq 1. Writes a greeting through transmitq, then echoes each line it receives
// ("vcon got: LINE") until a line "quit"; exits with the number of failed checks.
// Command line:
//   bad=1   then posts a device-writable transmit buffer: the device must set
//           DEVICE_NEEDS_RESET (and the VMM keep running)
#include <ukvm/virtio/virtqueue.h>

#include "rt/rt.hpp"

namespace {
using namespace ukvm::virtio;

using rt::pci_read;
using rt::pci_write;

constexpr uint16_t kQueueSize = 16;
alignas(4096) uint8_t rx_ring[8192];
alignas(4096) uint8_t tx_ring[8192];
alignas(16) uint8_t rx_buf[kQueueSize][64];
alignas(16) uint8_t tx_buf[256];
volatile virtio_pci_common_cfg* common;
volatile uint8_t* notify;
uint32_t notify_mult;
DriverQueue rxq, txq;

void kick(uint16_t q) {
    *reinterpret_cast<volatile uint16_t*>(notify + q * notify_mult) = q;
}

void setup_queue(uint16_t index, DriverQueue& q, uint8_t* ring) {
    common->queue_select = index;
    common->queue_size = kQueueSize;
    q.init(ring, uint64_t(ring), kQueueSize);
    common->queue_desc_lo = uint32_t(q.desc_addr());
    common->queue_desc_hi = 0;
    common->queue_avail_lo = uint32_t(q.avail_addr());
    common->queue_avail_hi = 0;
    common->queue_used_lo = uint32_t(q.used_addr());
    common->queue_used_hi = 0;
    common->queue_enable = 1;
}

// Sends s through transmitq and waits until the device has used it.
bool send(const char* s) {
    size_t n = 0;
    while (s[n] && n < sizeof tx_buf) tx_buf[n] = uint8_t(s[n]), ++n;
    DriverBuffer b{uint64_t(tx_buf), uint32_t(n), false};
    if (txq.add(&b, 1) < 0) return false;
    if (txq.publish()) kick(1);
    for (uint64_t spin = 0; spin < 2000000000ull; ++spin) {
        uint16_t head;
        uint32_t len;
        auto r = txq.take_used(head, len);
        if (r == DriverQueue::UsedResult::kTaken) return true;
        if (r == DriverQueue::UsedResult::kBadDevice) return false;
        asm volatile("pause");
    }
    return false;
}

uint16_t rx_owner[kQueueSize];  // receive buffer by descriptor head

void post_rx(uint16_t i) {
    DriverBuffer b{uint64_t(rx_buf[i]), sizeof rx_buf[i], true};
    const int head = rxq.add(&b, 1);
    if (head >= 0) rx_owner[head] = i;
}
}  // namespace

extern "C" int guest_main(uint32_t, uint32_t) {
    int slot = -1;
    for (int s = 0; s < 32 && slot < 0; ++s)
        if (pci_read(uint8_t(s), 0) == 0x10431af4u) slot = s;
    if (slot < 0) {
        rt::printf("no virtio-console\n");
        return 1;
    }
    const uint64_t bar = pci_read(uint8_t(slot), 0x10) & ~0xFu;
    rt::printf("virtio-console at slot %d, class %x, irq line %u\n", slot,
               pci_read(uint8_t(slot), 0x08) >> 16, pci_read(uint8_t(slot), 0x3C) & 0xFF);
    pci_write(uint8_t(slot), 0x04, pci_read(uint8_t(slot), 0x04) | 0x6);  // memory, bus master
    for (uint8_t p = uint8_t(pci_read(uint8_t(slot), 0x34)); p != 0;
         p = uint8_t(pci_read(uint8_t(slot), p) >> 8)) {
        const uint32_t w0 = pci_read(uint8_t(slot), p);
        if ((w0 & 0xFF) != 0x09) continue;
        const uint8_t type = uint8_t(w0 >> 24);
        auto* at =
            reinterpret_cast<volatile uint8_t*>(bar + pci_read(uint8_t(slot), uint8_t(p + 8)));
        if (type == VIRTIO_PCI_CAP_COMMON_CFG)
            common = reinterpret_cast<volatile virtio_pci_common_cfg*>(at);
        if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
            notify = at;
            notify_mult = pci_read(uint8_t(slot), uint8_t(p + 16));
        }
    }
    if (!common || !notify) {
        rt::printf("capabilities missing\n");
        return 1;
    }
    common->device_status = 0;
    common->device_status = kStatusAcknowledge | kStatusDriver;
    common->device_feature_select = 0;
    rt::printf("features lo 0x%x, %u queues\n", common->device_feature, common->num_queues);
    common->guest_feature_select = 0;
    common->guest_feature = 0;
    common->guest_feature_select = 1;
    common->guest_feature = 1;  // VERSION_1
    common->device_status = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk;
    setup_queue(0, rxq, rx_ring);
    setup_queue(1, txq, tx_ring);
    for (uint16_t i = 0; i < kQueueSize; ++i) post_rx(i);
    rxq.publish();
    common->device_status =
        kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;
    kick(0);

    int failures = 0;
    failures += !send("hello from virtio-console\n");
    // Echo lines until "quit".
    char line[128];
    size_t len = 0;
    for (bool quit = false; !quit;) {
        uint16_t head;
        uint32_t used;
        auto r = rxq.take_used(head, used);
        if (r == DriverQueue::UsedResult::kBadDevice) return failures + 1;
        if (r != DriverQueue::UsedResult::kTaken) {
            asm volatile("pause");
            continue;
        }
        const uint16_t i = rx_owner[head % kQueueSize];
        for (uint32_t k = 0; k < used && k < 64; ++k) {
            const char c = char(rx_buf[i][k]);
            if (c != '\n') {
                if (len + 1 < sizeof line) line[len++] = c;
                continue;
            }
            line[len] = '\0';
            len = 0;
            char out[160] = "vcon got: ";
            size_t n = 10;
            for (size_t k2 = 0; line[k2]; ++k2) out[n++] = line[k2];
            out[n++] = '\n';
            out[n] = '\0';
            failures += !send(out);
            quit = line[0] == 'q' && line[1] == 'u' && line[2] == 'i' && line[3] == 't' && !line[4];
        }
        post_rx(i);
        if (rxq.publish()) kick(0);
    }
    if (rt::cmdline_number("bad", 0)) {
        // A transmit buffer the device would have to write: refused with NEEDS_RESET.
        DriverBuffer b{uint64_t(tx_buf), 8, true};
        txq.add(&b, 1);
        txq.publish();
        kick(1);
        for (int i = 0; i < 100000000 && !(common->device_status & kStatusNeedsReset); ++i)
            asm volatile("pause");
        rt::printf("after a writable transmit buffer: status 0x%x\n", common->device_status);
        return (common->device_status & kStatusNeedsReset) ? failures : failures + 1;
    }
    rt::printf("vcon: done, failures %d\n", failures);
    return failures;
}
