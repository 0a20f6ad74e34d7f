// vcons, the virtio-console driver (one port: receiveq 0, transmitq 1). It keeps receive
// buffers posted and hands what the host types to TTY (kTtyInput), which treats it like
// input from COM1: the VMM routes console input to the virtio-console while a driver runs
// it, to COM1 otherwise. Its greeting goes out through transmitq. Program output still
// goes through the VMM endpoint (the hypercall console), not through here. With no such
// device it stays up and idle, so RS has nothing to restart; the interrupt wakes it, or a
// 20 ms alarm when the device has none. Answers RS's heartbeats.
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

virtio_pci::Device g_dev;
DriverQueue g_rx, g_tx;
virtio_pci::Dma g_dma;  // page 0: receiveq; page 1: transmitq; page 2: receive buffers;
                        // page 3: the transmit buffer
bool g_has_irq = false;

virtio_pci::Dma page(int n) {
    return {g_dma.va + n * kPage, g_dma.pa + n * kPage, kPage};
}

uint16_t g_owner[kQueueSize];  // receive buffer by descriptor head

void post(uint16_t i) {
    DriverBuffer b{g_dma.pa + 2 * kPage + i * kBufferBytes, kBufferBytes, true};
    if (int head = g_rx.add(&b, 1); head >= 0) g_owner[head % kQueueSize] = i;
}

// Writes s through transmitq and waits (polling: it is short) until the device used it.
void transmit(const char* s) {
    size_t n = strlen(s);
    if (n > kPage) n = kPage;
    memcpy(g_dma.va + 3 * kPage, s, n);
    DriverBuffer b{g_dma.pa + 3 * kPage, static_cast<uint32_t>(n), false};
    if (g_tx.add(&b, 1) < 0) return;
    if (g_tx.publish()) g_dev.notify(1);
    for (int spin = 0; spin < 10000000; ++spin) {
        uint16_t head;
        uint32_t len;
        if (g_tx.take_used(head, len) != DriverQueue::UsedResult::kNone) return;
    }
}

int32_t init_device() {
    if (int32_t r = g_dev.open(VIRTIO_ID_CONSOLE, 0); r != kOk) return r;
    uint64_t features = 0;
    if (int32_t r = g_dev.negotiate(0, &features); r != kOk) return r;
    if (int32_t r = virtio_pci::dma_alloc(4 * kPage, &g_dma); r != kOk) return r;
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
        transmit("vcons: console input now comes through virtio-console\n");
        if (!g_has_irq) arm_poll();
        drain();
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
            } else if (state == kOk && m.m_source == kClock) {
                drain();
                arm_poll();
            }
            continue;
        }
        m.m_type = state == kOk ? kENoSys : state;
        user::sendnb(m.m_source, &m);
    }
}
