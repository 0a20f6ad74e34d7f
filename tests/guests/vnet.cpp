// vnet: drives the first (or nic=N-th) virtio-net PCI device with the shared driver-side
// queue, polling, in ring 3 with IOPL 3 (native speed on hosts that emulate ring 0). It is
// a tiny IPv4 host without a stack: it answers ARP and ICMP echo for ip=A.B.C.D, echoes UDP
// datagrams sent to port 7, and can ping or send UDP itself. Prints what it does and exits
// with 0 when every goal was met. Command line:
//   ip=A.B.C.D        its address (default 10.0.0.2)
//   ping=A.B.C.D      ARP for the address, then ICMP echo until count= (3) replies
//   udp=A.B.C.D port=N  ARP for the address (or gw=), then one datagram "hello from vnet"
//   gw=A.B.C.D        send off-subnet traffic (udp=) to this router's MAC
//   time=S            run this many seconds (default 10), then exit
//   until_done=1      exit as soon as the ping/udp goals are met
//   bad=N             a misbehaving driver, see bad_driver(): the device must set
//                     DEVICE_NEEDS_RESET; the guest then resets it and sends an ARP request
//   rxbuf=N           receive buffer size (default 1526)
//   interval_ms=N     between pings and retries (default 500); a reply sends the next at once
#include <ukvm/virtio/net.h>
#include <ukvm/virtio/virtqueue.h>

#include "rt/rt.hpp"

namespace {
using namespace ukvm::virtio;

using rt::pci_read;
using rt::pci_write;

constexpr uint16_t kQueueSize = 16;
constexpr uint32_t kBufBytes = 2048;
alignas(4096) uint8_t rx_ring[4096];
alignas(4096) uint8_t tx_ring[4096];
alignas(16) uint8_t rx_bufs[kQueueSize][kBufBytes];
alignas(16) uint8_t tx_bufs[kQueueSize][kBufBytes];
alignas(16) uint8_t stack[65536];
volatile virtio_pci_common_cfg* common;
volatile uint8_t* devcfg;
volatile uint8_t* notify;
uint32_t notify_mult;
DriverQueue rxq, txq;
uint32_t rx_len = 1526;

uint8_t my_mac[6];
uint32_t my_ip;  // host byte order
const uint8_t kBroadcast[6] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

uint16_t be16(const uint8_t* p) {
    return uint16_t(p[0] << 8 | p[1]);
}
void put16(uint8_t* p, uint16_t v) {
    p[0] = uint8_t(v >> 8);
    p[1] = uint8_t(v);
}
uint32_t be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
void put32(uint8_t* p, uint32_t v) {
    put16(p, uint16_t(v >> 16));
    put16(p + 2, uint16_t(v));
}
uint16_t checksum(const uint8_t* p, uint32_t n, uint32_t sum = 0) {
    for (uint32_t i = 0; i + 1 < n; i += 2) sum += be16(p + i);
    if (n & 1) sum += uint32_t(p[n - 1]) << 8;
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return uint16_t(~sum);
}
bool same_mac(const uint8_t* a, const uint8_t* b) {
    for (int i = 0; i < 6; ++i)
        if (a[i] != b[i]) return false;
    return true;
}

// The value of "key=A.B.C.D" on the command line, or fallback.
uint32_t cmdline_ip(const char* key, uint32_t fallback) {
    const char* s = rt::cmdline();
    const size_t n = rt::strlen(key);
    for (const char* p = s; *p; ++p) {
        if ((p != s && p[-1] != ' ') || !rt::starts_with(p, key) || p[n] != '=') continue;
        p += n + 1;
        uint32_t ip = 0;
        for (int part = 0; part < 4; ++part) {
            uint32_t v = 0;
            while (*p >= '0' && *p <= '9') v = v * 10 + uint32_t(*p++ - '0');
            ip = ip << 8 | (v & 0xFF);
            if (*p == '.') ++p;
        }
        return ip;
    }
    return fallback;
}
void print_ip(const char* what, uint32_t ip) {
    rt::printf("%s%u.%u.%u.%u", what, ip >> 24, (ip >> 16) & 0xFF, (ip >> 8) & 0xFF, ip & 0xFF);
}

void kick(uint16_t q) {
    *reinterpret_cast<volatile uint16_t*>(notify + q * notify_mult) = 0;
}

void post_rx(uint16_t i) {
    DriverBuffer b{uint64_t(rx_bufs[i]), rx_len, true};
    rxq.add(&b, 1);
}

// Sends frame (Ethernet header on) of len bytes; reclaims finished transmit buffers.
uint16_t tx_next;
bool send_frame(const uint8_t* frame, uint32_t len) {
    uint16_t head;
    uint32_t written;
    while (txq.take_used(head, written) == DriverQueue::UsedResult::kTaken) {
    }
    if (txq.free_count() == 0) return false;
    uint8_t* buf = tx_bufs[tx_next++ % kQueueSize];
    for (uint32_t i = 0; i < sizeof(NetHeader); ++i) buf[i] = 0;
    for (uint32_t i = 0; i < len; ++i) buf[sizeof(NetHeader) + i] = frame[i];
    DriverBuffer b{uint64_t(buf), uint32_t(sizeof(NetHeader) + len), false};
    txq.add(&b, 1);
    if (txq.publish()) kick(kNetTxQueue);
    return true;
}

void eth_header(uint8_t* f, const uint8_t* dst, uint16_t type) {
    for (int i = 0; i < 6; ++i) f[i] = dst[i];
    for (int i = 0; i < 6; ++i) f[6 + i] = my_mac[i];
    put16(f + 12, type);
}

void send_arp(uint16_t op, const uint8_t* dst_mac, uint32_t target_ip) {
    uint8_t f[60] = {};
    eth_header(f, op == 1 ? kBroadcast : dst_mac, 0x0806);
    uint8_t* a = f + 14;
    put16(a, 1);
    put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    for (int i = 0; i < 6; ++i) a[8 + i] = my_mac[i];
    put32(a + 14, my_ip);
    for (int i = 0; i < 6; ++i) a[18 + i] = op == 1 ? 0 : dst_mac[i];
    put32(a + 24, target_ip);
    send_frame(f, 60);
}

// An IPv4 packet of `payload` bytes (already at f + 34) to dst; fills both headers.
void send_ipv4(uint8_t* f, const uint8_t* dst_mac, uint32_t dst_ip, uint8_t proto,
               uint32_t payload) {
    static uint16_t ident;
    eth_header(f, dst_mac, 0x0800);
    uint8_t* ip = f + 14;
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, uint16_t(20 + payload));
    put16(ip + 4, ident++);
    put16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = proto;
    put16(ip + 10, 0);
    put32(ip + 12, my_ip);
    put32(ip + 16, dst_ip);
    put16(ip + 10, checksum(ip, 20));
    uint32_t len = 34 + payload;
    if (len < 60) {
        for (uint32_t i = len; i < 60; ++i) f[i] = 0;
        len = 60;
    }
    send_frame(f, len);
}

struct Peer {
    uint32_t ip = 0;
    uint8_t mac[6] = {};
    bool known = false;
};
Peer ping_peer, udp_peer, router;
uint32_t ping_replies, udp_replies, served_arp, served_icmp, served_udp, frames_seen, not_for_me;
uint16_t ping_seq;
uint64_t ping_sent_ns, rtt_total_ns;
bool ping_due;

void send_ping(const Peer& p) {
    uint8_t f[128] = {};
    uint8_t* icmp = f + 34;
    icmp[0] = 8;
    put16(icmp + 4, 0x7e57);
    put16(icmp + 6, ++ping_seq);
    for (int i = 0; i < 32; ++i) icmp[8 + i] = uint8_t('a' + i % 26);
    put16(icmp + 2, checksum(icmp, 40));
    ping_sent_ns = rt::realtime_ns();
    send_ipv4(f, p.mac, p.ip, 1, 40);
}

void send_udp(const Peer& p, uint16_t port) {
    uint8_t f[128] = {};
    const char msg[] = "hello from vnet";
    uint8_t* udp = f + 34;
    put16(udp, 40000);
    put16(udp + 2, port);
    put16(udp + 4, uint16_t(8 + sizeof msg - 1));
    for (uint32_t i = 0; i + 1 < sizeof msg; ++i) udp[8 + i] = uint8_t(msg[i]);
    send_ipv4(f, p.mac, p.ip, 17, 8 + sizeof msg - 1);  // no UDP checksum (0: none)
}

void handle(uint8_t* f, uint32_t len) {
    ++frames_seen;
    if (len < 14) return;
    if (!same_mac(f, my_mac) && !same_mac(f, kBroadcast)) {
        ++not_for_me;
        return;
    }
    const uint16_t type = be16(f + 12);
    if (type == 0x0806 && len >= 42) {
        uint8_t* a = f + 14;
        const uint16_t op = be16(a + 6);
        const uint32_t sender = be32(a + 14), target = be32(a + 24);
        Peer* peers[] = {&ping_peer, &udp_peer, &router};
        for (Peer* p : peers) {
            if (p->ip == sender && !p->known) {
                for (int i = 0; i < 6; ++i) p->mac[i] = a[8 + i];
                p->known = true;
                print_ip("arp: ", sender);
                rt::printf(" is at %x:%x:%x:%x:%x:%x\n", a[8], a[9], a[10], a[11], a[12], a[13]);
            }
        }
        if (op == 1 && target == my_ip) {
            ++served_arp;
            send_arp(2, a + 8, sender);
        }
        return;
    }
    if (type != 0x0800 || len < 34) return;
    uint8_t* ip = f + 14;
    const uint32_t ihl = (ip[0] & 0xF) * 4u;
    const uint32_t total = be16(ip + 2);
    if ((ip[0] >> 4) != 4 || ihl < 20 || total < ihl || 14 + total > len) return;
    if (be32(ip + 16) != my_ip) return;
    const uint32_t src = be32(ip + 12);
    uint8_t* l4 = ip + ihl;
    const uint32_t l4len = total - ihl;
    uint8_t reply[1600];
    if (ip[9] == 1 && l4len >= 8) {
        if (l4[0] == 8) {  // echo request: answer with the same data
            ++served_icmp;
            for (uint32_t i = 0; i < l4len && i < 1480; ++i) reply[34 + i] = l4[i];
            reply[34] = 0;
            put16(reply + 36, 0);
            put16(reply + 36, checksum(reply + 34, l4len));
            send_ipv4(reply, f + 6, src, 1, l4len);
        } else if (l4[0] == 0 && be16(l4 + 4) == 0x7e57 && src == ping_peer.ip) {
            ++ping_replies;
            const uint64_t rtt = rt::realtime_ns() - ping_sent_ns;
            rtt_total_ns += rtt;
            print_ip("ping: reply from ", src);
            rt::printf(" seq %u time %lu us\n", be16(l4 + 6), rtt / 1000);
            ping_due = true;  // the next one may go now
        }
    } else if (ip[9] == 17 && l4len >= 8) {
        const uint16_t sport = be16(l4), dport = be16(l4 + 2);
        if (dport == 7) {
            ++served_udp;
            for (uint32_t i = 0; i < l4len && i < 1480; ++i) reply[34 + i] = l4[i];
            put16(reply + 34, 7);
            put16(reply + 36, sport);
            put16(reply + 40, 0);
            send_ipv4(reply, f + 6, src, 17, l4len);
        } else if (dport == 40000) {
            ++udp_replies;
            rt::printf("udp: reply of %u bytes\n", l4len - 8);
        }
    }
}

bool device_init(int slot) {
    common->device_status = 0;
    common->device_status = kStatusAcknowledge | kStatusDriver;
    common->device_feature_select = 1;
    const uint32_t hi = common->device_feature;
    common->device_feature_select = 0;
    const uint32_t lo = common->device_feature;
    common->guest_feature_select = 0;
    common->guest_feature = lo & ((1u << kNetFMac) | (1u << kNetFStatus) | (1u << kNetFMtu));
    common->guest_feature_select = 1;
    common->guest_feature = 1;  // VERSION_1
    common->device_status = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk;
    if (!(common->device_status & kStatusFeaturesOk)) {
        rt::printf("FEATURES_OK refused\n");
        return false;
    }
    for (uint16_t q = 0; q < 2; ++q) {
        DriverQueue& dq = q == 0 ? rxq : txq;
        common->queue_select = q;
        common->queue_size = kQueueSize;
        dq.init(q == 0 ? rx_ring : tx_ring, uint64_t(q == 0 ? rx_ring : tx_ring), kQueueSize);
        common->queue_desc_lo = uint32_t(dq.desc_addr());
        common->queue_desc_hi = 0;
        common->queue_avail_lo = uint32_t(dq.avail_addr());
        common->queue_avail_hi = 0;
        common->queue_used_lo = uint32_t(dq.used_addr());
        common->queue_used_hi = 0;
        common->queue_enable = 1;
    }
    for (int i = 0; i < 6; ++i) my_mac[i] = devcfg[i];
    static bool printed;
    if (!printed) {
        printed = true;
        const uint16_t status = uint16_t(devcfg[6] | devcfg[7] << 8);
        const uint16_t mtu = uint16_t(devcfg[10] | devcfg[11] << 8);
        rt::printf("virtio-net at slot %d, irq line %u, features 0x%x%08x\n", slot,
                   pci_read(uint8_t(slot), 0x3C) & 0xFF, hi, lo);
        rt::printf("mac %x:%x:%x:%x:%x:%x status %u mtu %u\n", my_mac[0], my_mac[1], my_mac[2],
                   my_mac[3], my_mac[4], my_mac[5], status, mtu);
    }
    return true;
}

void go() {
    common->device_status =
        kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;
}

void fill_rx() {
    for (uint16_t i = 0; i < kQueueSize; ++i) post_rx(i);
    if (rxq.publish()) kick(kNetRxQueue);
}

// Polls the receive queue once; returns whether a frame came.
bool poll_rx() {
    uint16_t head;
    uint32_t written;
    if (rxq.take_used(head, written) != DriverQueue::UsedResult::kTaken) return false;
    // Single-descriptor chains: the descriptor index is the buffer.
    uint8_t* buf = nullptr;
    for (uint16_t i = 0; i < kQueueSize; ++i) {
        if (rxq.descriptors()[head].addr == uint64_t(rx_bufs[i])) buf = rx_bufs[i];
    }
    if (buf != nullptr && written >= sizeof(NetHeader)) {
        handle(buf + sizeof(NetHeader), written - uint32_t(sizeof(NetHeader)));
    }
    DriverBuffer b{uint64_t(buf ? buf : rx_bufs[0]), rx_len, true};
    rxq.add(&b, 1);
    if (rxq.publish()) kick(kNetRxQueue);
    return true;
}

bool wait_needs_reset() {
    for (int i = 0; i < 200000000 && !(common->device_status & kStatusNeedsReset); ++i) {
        asm volatile("pause");
    }
    rt::printf("bad driver: device status 0x%x\n", common->device_status);
    return (common->device_status & kStatusNeedsReset) != 0;
}

// A misbehaving driver; each must end in DEVICE_NEEDS_RESET (1-6) or a dropped frame (7).
//   1 transmit buffer outside RAM      2 transmit descriptor loop
//   3 transmit chain with a writable buffer     4 zero-length transmit chain
//   5 available ring names descriptor 200       6 read-only receive buffer (needs a frame)
//   7 a 1515-byte frame and a 5-byte frame (dropped; the device keeps working)
bool bad_driver(int kind) {
    vring_desc* d = txq.descriptors();
    auto make_available = [&](uint16_t head) {
        txq.avail()->ring[txq.avail()->idx % kQueueSize] = head;
        __atomic_store_n(&txq.avail()->idx, uint16_t(txq.avail()->idx + 1), __ATOMIC_RELEASE);
        kick(kNetTxQueue);
    };
    switch (kind) {
        case 1:
            d[0] = {0x7FFFFFFF000ull, 100, 0, 0};
            make_available(0);
            return wait_needs_reset();
        case 2:
            d[0] = {uint64_t(tx_bufs[0]), 12, VRING_DESC_F_NEXT, 1};
            d[1] = {uint64_t(tx_bufs[1]), 60, VRING_DESC_F_NEXT, 0};
            make_available(0);
            return wait_needs_reset();
        case 3:
            d[0] = {uint64_t(tx_bufs[0]), 72, VRING_DESC_F_NEXT, 1};
            d[1] = {uint64_t(tx_bufs[1]), 60, VRING_DESC_F_WRITE, 0};
            make_available(0);
            return wait_needs_reset();
        case 4:
            d[0] = {uint64_t(tx_bufs[0]), 0, 0, 0};
            make_available(0);
            return wait_needs_reset();
        case 5:
            make_available(200);
            return wait_needs_reset();
        case 6: {
            vring_desc* r = rxq.descriptors();
            r[0] = {uint64_t(rx_bufs[0]), 1526, 0, 0};
            rxq.avail()->ring[rxq.avail()->idx % kQueueSize] = 0;
            __atomic_store_n(&rxq.avail()->idx, uint16_t(rxq.avail()->idx + 1), __ATOMIC_RELEASE);
            kick(kNetRxQueue);
            return wait_needs_reset();
        }
        case 7: {
            static uint8_t big[1600];
            eth_header(big, kBroadcast, 0x88B5);
            // Two descriptors: the header and 1515 bytes of frame; then 5 bytes of frame.
            for (int i = 0; i < 12; ++i) tx_bufs[0][i] = 0;
            d[0] = {uint64_t(tx_bufs[0]), 12, VRING_DESC_F_NEXT, 1};
            d[1] = {uint64_t(big), 1515, 0, 0};
            make_available(0);
            d[2] = {uint64_t(tx_bufs[0]), 17, 0, 0};
            make_available(2);
            for (int i = 0; i < 10000000; ++i) asm volatile("pause");
            const bool alive = !(common->device_status & kStatusNeedsReset);
            rt::printf("bad driver: oversized frames, device status 0x%x\n", common->device_status);
            return alive;
        }
    }
    return false;
}

int net_slot = -1;

void run() {
    my_ip = cmdline_ip("ip", 0x0A000002);
    ping_peer.ip = cmdline_ip("ping", 0);
    udp_peer.ip = cmdline_ip("udp", 0);
    const uint32_t gw = cmdline_ip("gw", 0);
    const uint16_t udp_port = uint16_t(rt::cmdline_number("port", 7));
    const uint32_t ping_count = uint32_t(rt::cmdline_number("count", 3));
    const uint64_t seconds = rt::cmdline_number("time", 10);
    const bool until_done = rt::cmdline_number("until_done", 0) != 0;
    const int bad = int(rt::cmdline_number("bad", 0));
    const uint64_t interval_ns = rt::cmdline_number("interval_ms", 500) * 1000000ull;
    rx_len = uint32_t(rt::cmdline_number("rxbuf", 1526));
    if (rx_len > kBufBytes) rx_len = kBufBytes;

    if (!device_init(net_slot)) rt::exit(1);
    if (bad != 6) fill_rx();
    go();
    print_ip("vnet: up as ", my_ip);
    rt::printf("\n");
    if (bad) {
        const bool ok = bad_driver(bad);
        // Reset and start over: the device must work again, which the host sees as an
        // ARP request for the ping peer (or our own address) on the wire.
        common->device_status = 0;
        if (!device_init(net_slot)) rt::exit(1);
        fill_rx();
        go();
        send_arp(1, kBroadcast, ping_peer.ip ? ping_peer.ip : my_ip);
        // Wait until the device took it, so the host sees it before the VM ends.
        for (int i = 0; i < 100000000 && txq.free_count() != kQueueSize; ++i) {
            uint16_t head;
            uint32_t written;
            txq.take_used(head, written);
            asm volatile("pause");
        }
        rt::printf("bad driver: after reset status 0x%x, announced\n", common->device_status);
        if (!ping_peer.ip) rt::exit(ok ? 0 : 1);
        if (!ok) rt::exit(1);
    }
    // A path to udp_peer: its own MAC on the subnet, the router's otherwise.
    Peer* udp_via = &udp_peer;
    if (udp_peer.ip && gw) {
        router.ip = gw;
        udp_via = &router;
    }

    const uint64_t start = rt::realtime_ns();
    uint64_t last_action = 0;
    bool udp_sent = false;
    for (;;) {
        while (poll_rx()) {
        }
        const uint64_t now = rt::realtime_ns();
        if (now - start > seconds * 1000000000ull) break;
        if (now - last_action > interval_ns || ping_due) {
            last_action = now;
            ping_due = false;
            if (ping_peer.ip && ping_replies < ping_count) {
                if (!ping_peer.known) {
                    send_arp(1, kBroadcast, ping_peer.ip);
                } else {
                    send_ping(ping_peer);
                }
            }
            if (udp_peer.ip && !udp_sent) {
                if (!udp_via->known) {
                    send_arp(1, kBroadcast, udp_via->ip);
                } else {
                    Peer to = udp_peer;
                    for (int i = 0; i < 6; ++i) to.mac[i] = udp_via->mac[i];
                    send_udp(to, udp_port);
                    udp_sent = true;
                    rt::printf("udp: sent to port %u\n", udp_port);
                }
            }
        }
        const bool done = (!ping_peer.ip || ping_replies >= ping_count) &&
                          (!udp_peer.ip || udp_sent) && (ping_peer.ip || udp_peer.ip);
        if (until_done && done) break;
        for (int i = 0; i < 2000; ++i) asm volatile("pause");
    }
    rt::printf("served: arp %u icmp %u udp %u; seen %u frames, %u not for us\n", served_arp,
               served_icmp, served_udp, frames_seen, not_for_me);
    rt::printf("ping: %u replies, udp replies %u\n", ping_replies, udp_replies);
    if (ping_replies) rt::printf("ping: rtt avg %lu us\n", rtt_total_ns / ping_replies / 1000);
    const bool ok = (!ping_peer.ip || ping_replies >= ping_count) && (!udp_peer.ip || udp_sent);
    rt::exit(ok ? 0 : 1);
}

void ring3_main() {
    run();
}

}  // namespace

extern "C" int guest_main(uint32_t, uint32_t) {
    const int index = int(rt::cmdline_number("nic", 0));
    int seen = 0;
    for (int s = 0; s < 32; ++s) {
        if (pci_read(uint8_t(s), 0) == 0x10411af4u && seen++ == index) {
            net_slot = s;
            break;
        }
    }
    if (net_slot < 0) {
        rt::printf("no virtio-net\n");
        return 1;
    }
    const uint8_t slot = uint8_t(net_slot);
    const uint64_t bar = pci_read(slot, 0x10) & ~0xFu;
    pci_write(slot, 0x04, pci_read(slot, 0x04) | 0x6);  // memory, bus master
    for (uint8_t p = uint8_t(pci_read(slot, 0x34)); p != 0; p = uint8_t(pci_read(slot, p) >> 8)) {
        const uint32_t w0 = pci_read(slot, p);
        if ((w0 & 0xFF) != 0x09) continue;
        const uint8_t type = uint8_t(w0 >> 24);
        const uint32_t off = pci_read(slot, uint8_t(p + 8));
        auto* at = reinterpret_cast<volatile uint8_t*>(bar + off);
        if (type == VIRTIO_PCI_CAP_COMMON_CFG)
            common = reinterpret_cast<volatile virtio_pci_common_cfg*>(at);
        if (type == VIRTIO_PCI_CAP_DEVICE_CFG) devcfg = at;
        if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
            notify = at;
            notify_mult = pci_read(slot, uint8_t(p + 16));
        }
    }
    if (!common || !devcfg || !notify) {
        rt::printf("capabilities missing\n");
        return 1;
    }
    rt::enter_ring3(ring3_main, stack + sizeof stack);
}
