// vnet, the virtio-net driver (program "vnet", argument: the device's index among the
// virtio-net functions, default 0; RS runs it as "vnet0"). INET is its only client
// (kNet* in lib/proto_inet.hpp): INET calls it with SENDREC and it answers at once — a
// frame to send is copied from INET's grant into a transmit buffer (dropped with
// kEInetAgain when the ring is full), received frames are handed over in batches — and it
// NOTIFYs INET when frames have arrived, when the link changed and once at start (a new
// INET finds it with kSysFindProc). With no such device it stays up answering kENoDev.
#include <ukvm/virtio/virtqueue.h>

#include "sys.hpp"
#include "virtio_pci.hpp"

using namespace ukvm::kernel;
using namespace ukvm::virtio;
using user::print;

namespace {

// virtio-net (5.1): queues, features, configuration, the per-frame header.
constexpr uint16_t kRxQueue = 0, kTxQueue = 1;
constexpr unsigned kFeatureMac = 5, kFeatureStatus = 16;
constexpr uint16_t kLinkUp = 1;
struct NetHeader {  // with VERSION_1 always 12 bytes (num_buffers included)
    uint8_t flags, gso_type;
    uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
};
static_assert(sizeof(NetHeader) == 12);

constexpr uint16_t kQueueSize = 128;
constexpr uint32_t kSlot = 2048;  // one frame buffer: header + up to 1514 bytes (+ slack)
constexpr uint64_t kPage = 4096;

virtio_pci::Device g_dev;
DriverQueue g_rx, g_tx;
virtio_pci::Dma g_dma;  // rx ring, tx ring, then kQueueSize rx slots and kQueueSize tx slots
uint64_t g_rx_ring_bytes, g_tx_ring_bytes;
uint8_t* g_rx_slots;
uint8_t* g_tx_slots;
uint64_t g_rx_slots_pa, g_tx_slots_pa;
uint16_t g_tx_slot_of_head[kQueueSize];  // the tx slot each in-flight chain uses
uint16_t g_rx_slot_of_head[kQueueSize];
uint16_t g_tx_free[kQueueSize];
int g_tx_nfree = 0;
uint8_t g_mac[6];
bool g_has_status = false, g_has_irq = false, g_link = true;
int32_t g_state = proto::kENoDev;
int g_index = 0;
Endpoint g_inet = kNone;
uint64_t g_rx_frames = 0, g_tx_frames = 0, g_tx_dropped = 0;
alignas(16) uint8_t g_batch[64 * 1024];  // frames on their way to INET

uint64_t align(uint64_t v, uint64_t a) {
    return (v + a - 1) & ~(a - 1);
}

bool post_rx(uint16_t slot) {
    DriverBuffer b{g_rx_slots_pa + uint64_t{slot} * kSlot, kSlot, true};
    int32_t head = g_rx.add(&b, 1);
    if (head < 0) return false;
    g_rx_slot_of_head[head] = slot;
    return true;
}

int32_t init_device() {
    if (int32_t r = g_dev.open(VIRTIO_ID_NET, g_index); r != kOk) return r;
    uint64_t features = 0;
    if (int32_t r = g_dev.negotiate(feature(kFeatureMac) | feature(kFeatureStatus), &features);
        r != kOk)
        return r;
    g_has_status = features & feature(kFeatureStatus);
    // The kernel routes the line edge-triggered and QEMU's INTx is a level: an edge the
    // IOAPIC did not see (the line rising while still masked) never comes again, and the
    // driver, waiting for it to read the ISR, would never lower the line (a restarted
    // driver mid-transfer: frames QEMU held arrive as soon as receive buffers are
    // posted). So take the line before the device can interrupt (the reset lowered it)...
    g_has_irq = g_dev.enable_irq() == kOk;
    g_rx_ring_bytes = align(DriverQueue::ring_bytes(kQueueSize), kPage);
    g_tx_ring_bytes = align(DriverQueue::ring_bytes(kQueueSize), kPage);
    uint64_t total = g_rx_ring_bytes + g_tx_ring_bytes + 2ull * kQueueSize * kSlot;
    if (int32_t r = virtio_pci::dma_alloc(total, &g_dma); r != kOk) return r;
    virtio_pci::Dma rx_ring{g_dma.va, g_dma.pa, g_rx_ring_bytes};
    virtio_pci::Dma tx_ring{g_dma.va + g_rx_ring_bytes, g_dma.pa + g_rx_ring_bytes,
                            g_tx_ring_bytes};
    if (int32_t r = g_dev.setup_queue(kRxQueue, kQueueSize, rx_ring, &g_rx); r != kOk) return r;
    if (int32_t r = g_dev.setup_queue(kTxQueue, kQueueSize, tx_ring, &g_tx); r != kOk) return r;
    uint64_t off = g_rx_ring_bytes + g_tx_ring_bytes;
    g_rx_slots = g_dma.va + off, g_rx_slots_pa = g_dma.pa + off;
    off += uint64_t{kQueueSize} * kSlot;
    g_tx_slots = g_dma.va + off, g_tx_slots_pa = g_dma.pa + off;
    for (uint16_t i = 0; i < kQueueSize; ++i) g_tx_free[g_tx_nfree++] = i;
    if (features & feature(kFeatureMac)) {
        g_dev.read_config(0, g_mac, 6);
    } else {  // a locally administered address of our own
        uint64_t t = user::rdtsc();
        uint8_t mac[6] = {0x02,
                          0x75,
                          0x6b,
                          static_cast<uint8_t>(t >> 16),
                          static_cast<uint8_t>(t >> 8),
                          static_cast<uint8_t>(t)};
        memcpy(g_mac, mac, 6);
    }
    for (uint16_t i = 0; i < g_rx.size(); ++i) post_rx(i);
    g_dev.driver_ok();
    if (g_rx.publish()) g_dev.notify(kRxQueue);
    // ...and read the ISR once before INET's first kNetRecv: a line still raised (by a
    // device that did not lower it on reset, or another function on it) is lowered, so
    // the next used buffer makes an edge; what arrived so far INET takes when it attaches.
    g_dev.isr();
    if (!g_has_irq) print("vnet%d: no interrupt; polling\n", g_index);
    return kOk;
}

bool read_link() {
    if (!g_has_status) return true;
    uint16_t status = 0;
    g_dev.read_config(6, &status, 2);
    return status & kLinkUp;
}

// Takes back transmit buffers the device is done with.
bool reap_tx() {
    bool any = false;
    for (;;) {
        uint16_t head;
        uint32_t written;
        auto r = g_tx.take_used(head, written);
        if (r == DriverQueue::UsedResult::kBadDevice) {
            g_state = proto::kEIo;
            return any;
        }
        if (r != DriverQueue::UsedResult::kTaken) return any;
        g_tx_free[g_tx_nfree++] = g_tx_slot_of_head[head % kQueueSize];
        any = true;
    }
}

void tell_inet() {
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (g_inet == kNone) g_inet = user::find("inet");
        if (g_inet == kNone) return;
        if (user::notify(g_inet) == kOk) return;
        g_inet = kNone;
    }
}

// Queues a batch of frames from INET: the count queued (a full ring drops the rest).
int32_t do_send(Message& m) {
    uint64_t bytes = m.u64[1], count = m.u64[2];
    if (bytes > sizeof g_batch || count > bytes / 16) return kEInval;
    Message c{};
    c.u64[0] = static_cast<uint64_t>(m.m_source), c.u64[1] = m.u64[0], c.u64[2] = 0;
    c.u64[3] = reinterpret_cast<uint64_t>(g_batch), c.u64[4] = bytes;
    if (int32_t r = user::kernel_call(kSysSafeCopyFrom, &c); r != kOk) return r;
    reap_tx();
    int32_t queued = 0;
    uint64_t off = 0;
    for (uint64_t i = 0; i < count && off + 2 <= bytes; ++i) {
        uint16_t len;
        memcpy(&len, g_batch + off, 2);
        off += 2;
        if (len < 14 || len > proto::kNetFrameMax || len > bytes - off) break;
        if (g_tx_nfree == 0) {
            ++g_tx_dropped;
        } else {
            uint16_t slot = g_tx_free[--g_tx_nfree];
            uint8_t* buf = g_tx_slots + uint64_t{slot} * kSlot;
            memset(buf, 0, sizeof(NetHeader));
            memcpy(buf + sizeof(NetHeader), g_batch + off, len);
            DriverBuffer b{g_tx_slots_pa + uint64_t{slot} * kSlot,
                           static_cast<uint32_t>(sizeof(NetHeader) + len), false};
            int32_t head = g_tx.add(&b, 1);
            if (head < 0) {
                g_tx_free[g_tx_nfree++] = slot;
                ++g_tx_dropped;
            } else {
                g_tx_slot_of_head[head] = slot;
                ++queued;
            }
        }
        off += (len + 1u) & ~1u;
    }
    if (queued && g_tx.publish()) g_dev.notify(kTxQueue);
    g_tx_frames += static_cast<uint64_t>(queued);
    return queued;
}

// Hands INET the frames received so far (as many as fit its buffer): their count.
int32_t do_recv(Message& m) {
    uint64_t room = m.u64[1] < sizeof g_batch ? m.u64[1] : sizeof g_batch;
    uint64_t used = 0;
    int32_t frames = 0;
    bool reposted = false;
    for (;;) {
        if (used + 2 + proto::kNetFrameMax + 1 > room) break;
        uint16_t head;
        uint32_t written;
        auto r = g_rx.take_used(head, written);
        if (r == DriverQueue::UsedResult::kBadDevice) {
            g_state = proto::kEIo;
            break;
        }
        if (r != DriverQueue::UsedResult::kTaken) break;
        uint16_t slot = g_rx_slot_of_head[head % kQueueSize];
        if (written > sizeof(NetHeader) && written - sizeof(NetHeader) <= proto::kNetFrameMax &&
            written <= kSlot) {
            auto len = static_cast<uint16_t>(written - sizeof(NetHeader));
            memcpy(g_batch + used, &len, 2);
            memcpy(g_batch + used + 2, g_rx_slots + uint64_t{slot} * kSlot + sizeof(NetHeader),
                   len);
            used += 2 + ((len + 1u) & ~1u);
            ++frames;
            ++g_rx_frames;
        }
        post_rx(slot);
        reposted = true;
    }
    if (reposted && g_rx.publish()) g_dev.notify(kRxQueue);
    if (frames) {
        Message c{};
        c.u64[0] = static_cast<uint64_t>(m.m_source), c.u64[1] = m.u64[0], c.u64[2] = 0;
        c.u64[3] = reinterpret_cast<uint64_t>(g_batch), c.u64[4] = used;
        if (int32_t r = user::kernel_call(kSysSafeCopyTo, &c); r != kOk) return r;
    }
    m.u64[1] = g_link;
    return frames;
}

int32_t handle(Message& m) {
    if (m.m_type < proto::kNetInit || m.m_type > proto::kNetRecv) return kENoSys;
    if (g_state != kOk) return g_state;
    switch (m.m_type) {
        case proto::kNetInit:
            g_inet = m.m_source;
            memset(m.bytes, 0, sizeof m.bytes);
            memcpy(m.bytes, g_mac, 6);
            m.u64[1] = g_link;
            m.u64[2] = 1500;
            return kOk;
        case proto::kNetSend:
            return do_send(m);
        case proto::kNetRecv:
            return do_recv(m);
        default:
            return kENoSys;
    }
}

// The device interrupted (or, without an interrupt, a poll): reading the ISR lowers a
// level-triggered line (QEMU's INTx); then whatever arrived is reported to INET.
void interrupt() {
    uint8_t isr = g_dev.isr();
    reap_tx();
    if (isr & 2) {
        bool link = read_link();
        if (link != g_link) {
            g_link = link;
            print("vnet%d: link %s\n", g_index, link ? "up" : "down");
        }
    }
    tell_inet();  // INET asks for the frames (kNetRecv answers 0 when there are none)
}

}  // namespace

int main(const char* args) {
    int64_t index = 0;
    if (args[0] && (!sys::parse_int(args, &index) || index < 0 || index > 7)) index = 0;
    g_index = static_cast<int>(index);
    g_state = init_device();
    if (g_state == kOk) {
        g_link = read_link();
        print("vnet%d: MAC %02x:%02x:%02x:%02x:%02x:%02x, link %s, irq %d\n", g_index, g_mac[0],
              g_mac[1], g_mac[2], g_mac[3], g_mac[4], g_mac[5], g_link ? "up" : "down",
              g_has_irq ? static_cast<int>(g_dev.irq()) : -1);
        tell_inet();  // a (re)started driver: INET attaches with kNetInit
    } else if (g_state != proto::kENoDev) {
        print("vnet%d: cannot use the device (%d)\n", g_index, g_state);
    }
    if (g_state == kOk && !g_has_irq) {
        Message a{};
        a.u64[0] = 5000000;  // poll every 5 ms
        user::kernel_call(kSysSetAlarm, &a);
    }
    Message m{};
    int32_t r = user::receive(kAny, &m);
    for (;;) {
        if (r != kOk) {
            r = user::receive(kAny, &m);
            continue;
        }
        if (m.m_type == kNotifyMessage) {
            if (m.m_source == kHardware && g_state == kOk) {
                interrupt();
            } else if (m.m_source == kClock && g_state == kOk) {
                interrupt();
                Message a{};
                a.u64[0] = 5000000;
                user::kernel_call(kSysSetAlarm, &a);
            } else if (m.m_source == user::parent()) {
                user::notify(m.m_source);  // RS's heartbeat
            }
            r = user::receive(kAny, &m);
            continue;
        }
        Endpoint client = m.m_source;
        m.m_type = handle(m);
        r = user::reply_recv(client, kAny, &m);
    }
}
