// vcons, the virtio-console driver (one port: receiveq 0, transmitq 1), the console's device
// while it runs. It keeps receive buffers posted and hands what the host types to TTY
// (kTtyInput), which treats it like input from COM1: the VMM routes console input to the
// virtio-console while a driver runs it, to COM1 otherwise. Output: TTY is the console's one
// writer; vcons takes TTY's queued output in batches (kTtyOutput: TTY copies into one of four
// transmit buffers through a grant) whenever TTY notifies it or a buffer comes back, and tells
// TTY how many bytes the device has sent, so that TTY can hand what a killed vcons had not sent
// to its successor. With no such device it stays up and idle (TTY then writes through the VMM
// endpoint), so RS has nothing to restart; the interrupt wakes it, or a 20 ms alarm when the
// device has none. Answers RS's heartbeats.
#include <ukvm/virtio/virtqueue.h>

#include "sys.hpp"
#include "virtio_pci.hpp"

using namespace ukvm::kernel;
using namespace ukvm::virtio;
using user::print;

namespace {

constexpr uint16_t kQueueSize = 16;
constexpr uint64_t kPage = 4096;
constexpr uint32_t kBufferBytes = 64;
constexpr uint64_t kPollNs = 20000000;
constexpr int kTxBuffers = 4;
constexpr uint64_t kTxBytes = 2 * kPage;

virtio_pci::Device g_dev;
DriverQueue g_rx, g_tx;
virtio_pci::Dma g_dma;  // page 0: receiveq; page 1: transmitq; page 2: receive buffers;
                        // pages 3..: the transmit buffers
bool g_has_irq = false;

virtio_pci::Dma page(int n) {
    return {g_dma.va + n * kPage, g_dma.pa + n * kPage, kPage};
}

uint16_t g_owner[kQueueSize];  // receive buffer by descriptor head

void post(uint16_t i) {
    DriverBuffer b{g_dma.pa + 2 * kPage + i * kBufferBytes, kBufferBytes, true};
    if (int head = g_rx.add(&b, 1); head >= 0) g_owner[head % kQueueSize] = i;
}

// The transmit buffers: free ones, and for those with the device, how many of TTY's bytes
// each holds (0: vcons's own) and from which TTY.
constexpr uint64_t kTxOffset = 3 * kPage;
bool g_tx_busy[kTxBuffers];
int g_tx_owner[kQueueSize];  // transmit buffer by descriptor head
uint64_t g_tx_tty_bytes[kTxBuffers];
Endpoint g_tx_tty[kTxBuffers];

// TTY, and the grant of the transmit buffers made for it (again after TTY is restarted).
Endpoint g_tty = kNone;
uint64_t g_grant = 0;
uint64_t g_done = 0;  // bytes of g_tty's the device has sent, not yet reported to it
bool g_more = false;  // TTY had more when the buffers ran out: it does not notify then

int free_tx() {
    for (int i = 0; i < kTxBuffers; ++i)
        if (!g_tx_busy[i]) return i;
    return -1;
}

void send_tx(int i, uint64_t n, uint64_t tty_bytes) {
    DriverBuffer b{g_dma.pa + kTxOffset + i * kTxBytes, static_cast<uint32_t>(n), false};
    const int head = g_tx.add(&b, 1);
    if (head < 0) return;
    g_tx_owner[head % kQueueSize] = i;
    g_tx_busy[i] = true;
    g_tx_tty_bytes[i] = tty_bytes;
    g_tx_tty[i] = g_tty;
    if (g_tx.publish()) g_dev.notify(1);
}

// Transmit buffers the device is done with.
void reclaim() {
    for (;;) {
        uint16_t head;
        uint32_t len;
        auto r = g_tx.take_used(head, len);
        if (r == DriverQueue::UsedResult::kBadDevice) {
            print("vcons: the device broke its transmit queue\n");
            return;
        }
        if (r != DriverQueue::UsedResult::kTaken) return;
        const int i = g_tx_owner[head % kQueueSize];
        g_tx_busy[i] = false;
        if (g_tx_tty[i] == g_tty) g_done += g_tx_tty_bytes[i];
    }
}

bool find_tty() {
    if (g_tty != kNone) {
        Message r{};
        r.u64[0] = g_grant;
        user::kernel_call(kSysGrantRevoke, &r);
    }
    g_tty = user::find("tty");
    g_done = 0;
    if (g_tty == kNone) return false;
    Message g{};
    g.u64[0] = static_cast<uint64_t>(g_tty);
    g.u64[1] = reinterpret_cast<uintptr_t>(g_dma.va + kTxOffset);
    g.u64[2] = kTxBuffers * kTxBytes;
    g.u64[3] = kGrantWrite;
    if (user::kernel_call(kSysGrantCreate, &g) != kOk) {
        g_tty = kNone;
        return false;
    }
    g_grant = g.u64[0];
    return true;
}

// Takes TTY's queued output into free transmit buffers until TTY has no more (it then
// notifies us when there is), reporting what the device has sent.
void pump_output() {
    reclaim();
    g_more = true;
    for (int i; (i = free_tx()) >= 0;) {
        g_more = false;
        Message m{};
        m.m_type = proto::kTtyOutput;
        m.u64[0] = g_grant, m.u64[1] = kTxBytes, m.u64[2] = g_done;
        m.u64[3] = static_cast<uint64_t>(i) * kTxBytes;
        int32_t r = g_tty == kNone ? kEDeadSrcDst : user::sendrec(g_tty, &m);
        if (r != kOk) {  // TTY restarted: the new one gets our grant
            if (!find_tty()) return;
            m.u64[0] = g_grant, m.u64[2] = 0;
            if (user::sendrec(g_tty, &m) != kOk) return;
        }
        g_done = 0;
        if (m.m_type <= 0 || static_cast<uint64_t>(m.m_type) > kTxBytes) return;
        send_tx(i, static_cast<uint64_t>(m.m_type), static_cast<uint64_t>(m.m_type));
        g_more = true;
    }
}

// After an interrupt or a poll: TTY hears of sent bytes, and is asked again if it had more.
void output_progress() {
    reclaim();
    if (g_done > 0 || g_more) pump_output();
}

// vcons's own line, through a free transmit buffer.
void transmit(const char* s) {
    const int i = free_tx();
    if (i < 0) return;
    size_t n = strlen(s);
    if (n > kTxBytes) n = kTxBytes;
    memcpy(g_dma.va + kTxOffset + i * kTxBytes, s, n);
    send_tx(i, n, 0);
}

int32_t init_device() {
    if (int32_t r = g_dev.open(VIRTIO_ID_CONSOLE, 0); r != kOk) return r;
    uint64_t features = 0;
    if (int32_t r = g_dev.negotiate(0, &features); r != kOk) return r;
    if (int32_t r = virtio_pci::dma_alloc(kTxOffset + kTxBuffers * kTxBytes, &g_dma); r != kOk)
        return r;
    if (int32_t r = g_dev.setup_queue(0, kQueueSize, page(0), &g_rx); r != kOk) return r;
    if (int32_t r = g_dev.setup_queue(1, kQueueSize, page(1), &g_tx); r != kOk) return r;
    for (uint16_t i = 0; i < kQueueSize; ++i) post(i);
    g_rx.publish();
    g_dev.driver_ok();
    g_has_irq = g_dev.enable_irq() == kOk;
    g_dev.notify(0);
    return kOk;
}

// Received input to TTY, 48 bytes a message; the buffers go back to the device.
void drain() {
    bool posted = false;
    for (;;) {
        uint16_t head;
        uint32_t len;
        auto r = g_rx.take_used(head, len);
        if (r == DriverQueue::UsedResult::kBadDevice) {
            print("vcons: the device broke its receive queue\n");
            return;
        }
        if (r != DriverQueue::UsedResult::kTaken) break;
        const uint16_t i = g_owner[head % kQueueSize];
        const uint8_t* data = g_dma.va + 2 * kPage + i * kBufferBytes;
        if (len > kBufferBytes) len = kBufferBytes;
        for (uint32_t at = 0; at < len;) {
            Message m{};
            m.m_type = proto::kTtyInput;
            uint32_t n = len - at < proto::kTtyDataMax ? len - at : proto::kTtyDataMax;
            m.u64[0] = n;
            memcpy(m.bytes + proto::kTtyDataOffset, data + at, n);
            sys::call("tty", &m);  // a TTY being restarted loses it, as typed-ahead input
            at += n;
        }
        post(i);
        posted = true;
    }
    if (posted && g_rx.publish()) g_dev.notify(0);
}

void arm_poll() {
    Message a{};
    a.u64[0] = kPollNs;
    user::kernel_call(kSysSetAlarm, &a);
}

}  // namespace

int main(const char*) {
    int32_t state = init_device();
    if (state == kOk) {
        print("vcons: virtio-console up, irq %d\n", g_has_irq ? static_cast<int>(g_dev.irq()) : -1);
        transmit("vcons: console input and output now go through virtio-console\n");
        if (!g_has_irq) arm_poll();
        drain();
        find_tty();
        pump_output();  // makes us TTY's console driver
    } else if (state != proto::kENoDev) {
        print("vcons: cannot use the device (%d)\n", state);
    }
    for (;;) {
        Message m{};
        if (user::receive(kAny, &m) != kOk) continue;
        if (m.m_type == kNotifyMessage) {
            if (m.m_source == user::parent()) {
                user::notify(m.m_source);  // RS's heartbeat
            } else if (state == kOk && m.m_source == kHardware) {
                (void)g_dev.isr();
                drain();
                output_progress();
            } else if (state == kOk && m.m_source == kClock) {
                drain();
                output_progress();
                arm_poll();
            } else if (state == kOk) {  // TTY: there is output
                pump_output();
            }
            continue;
        }
        m.m_type = state == kOk ? kENoSys : state;
        user::sendnb(m.m_source, &m);
    }
}
