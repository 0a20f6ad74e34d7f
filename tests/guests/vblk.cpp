// vblk: drives the first virtio-blk PCI device with the shared driver-side
// queue (ukvm/virtio/virtqueue.h), polling: PCI scan, capabilities, feature
// negotiation, GET_ID, read sector 0, write + FLUSH sector 1, a read past the
// end. Prints what it sees and exits with the number of failed checks. Command
// line:
//   ro=1     the disk is read-only: the write must fail
//   hang=1   spin after the FLUSH (the host kills ukvm and checks the image)
//   irq=1    then three reads completed by interrupt (IOAPIC input from the
//   Interrupt Line,
//            edge-triggered, vector 0x40)
//   bench=N  then N polled 512-byte reads, timed
//   loop=1   then a descriptor loop: the device must set DEVICE_NEEDS_RESET
#include <ukvm/virtio/virtqueue.h>

#include "rt/rt.hpp"

namespace {
using namespace ukvm::virtio;

using rt::pci_read;
using rt::pci_write;

alignas(4096) uint8_t ring[8192];
alignas(16) uint8_t buf[4096];
volatile virtio_pci_common_cfg* common;
volatile uint8_t* isr;
volatile uint8_t* devcfg;
volatile uint8_t* notify;
uint32_t notify_mult;
DriverQueue q;

// Interrupt delivery: IOAPIC input -> vector 0x40 -> count, read the ISR, EOI.
volatile uint32_t irq_count;
volatile uint8_t irq_isr;
volatile uint8_t irq_log[64];
struct [[gnu::packed]] IdtGate {
    uint16_t off0, sel;
    uint8_t ist, type;
    uint16_t off1;
    uint32_t off2, zero;
};
alignas(16) IdtGate idt[256];
extern "C" void irq_stub();
extern "C" void irq_body() {
    irq_isr = *isr;
    if (irq_count < 64) irq_log[irq_count] = irq_isr;
    irq_count = irq_count + 1;
    *reinterpret_cast<volatile uint32_t*>(0xFEE000B0) = 0;  // LAPIC EOI
}
asm(R"(
.text
.globl irq_stub
irq_stub:
    push %rax; push %rcx; push %rdx; push %rsi; push %rdi; push %r8; push %r9; push %r10; push %r11
    call irq_body
    pop %r11; pop %r10; pop %r9; pop %r8; pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rax
    iretq
)");
void ioapic_write(uint32_t reg, uint32_t v) {
    *reinterpret_cast<volatile uint32_t*>(0xFEC00000) = reg;
    *reinterpret_cast<volatile uint32_t*>(0xFEC00010) = v;
}
void setup_interrupts(uint8_t line) {
    uint16_t cs;
    asm volatile("mov %%cs, %0" : "=r"(cs));
    const uint64_t h = reinterpret_cast<uint64_t>(&irq_stub);
    idt[0x40] = {uint16_t(h), cs, 0, 0x8E, uint16_t(h >> 16), uint32_t(h >> 32), 0};
    struct [[gnu::packed]] {
        uint16_t limit;
        uint64_t base;
    } idtr{sizeof idt - 1, reinterpret_cast<uint64_t>(idt)};
    asm volatile("lidt %0" ::"m"(idtr));
    *reinterpret_cast<volatile uint32_t*>(0xFEE000F0) = 0x1FF;  // LAPIC software enable
    ioapic_write(0x10 + 2 * line + 1, 0);                       // destination APIC 0
    ioapic_write(0x10 + 2 * line, 0x40);                        // edge, active high, unmasked
}

// Submits one chain, notifies, polls for its completion; returns the used
// length.
int64_t submit(const DriverBuffer* b, uint16_t n) {
    if (q.add(b, n) < 0) return -1;
    if (q.publish()) *reinterpret_cast<volatile uint16_t*>(notify + 0 * notify_mult) = 0;
    for (uint64_t spin = 0; spin < 2000000000ull; ++spin) {
        uint16_t head;
        uint32_t len;
        auto r = q.take_used(head, len);
        if (r == DriverQueue::UsedResult::kTaken) return len;
        if (r == DriverQueue::UsedResult::kBadDevice) return -2;
        asm volatile("pause");
    }
    return -3;
}
}  // namespace

extern "C" int guest_main(uint32_t, uint32_t) {
    int slot = -1;
    for (int s = 0; s < 32; ++s) {
        if (pci_read(uint8_t(s), 0) == 0x10421af4u) {
            slot = s;
            break;
        }
    }
    rt::printf("host bridge: %x\n", pci_read(0, 0));
    if (slot < 0) {
        rt::printf("no virtio-blk\n");
        return 1;
    }
    const uint64_t bar = pci_read(uint8_t(slot), 0x10) & ~0xFu;
    rt::printf("virtio-blk at slot %d, bar0 0x%lx, irq line %u\n", slot, bar,
               pci_read(uint8_t(slot), 0x3C) & 0xFF);
    pci_write(uint8_t(slot), 0x04, pci_read(uint8_t(slot), 0x04) | 0x6);  // memory, bus master
    for (uint8_t p = uint8_t(pci_read(uint8_t(slot), 0x34)); p != 0;
         p = uint8_t(pci_read(uint8_t(slot), p) >> 8)) {
        const uint32_t w0 = pci_read(uint8_t(slot), p);
        if ((w0 & 0xFF) != 0x09) continue;
        const uint8_t type = uint8_t(w0 >> 24);
        const uint32_t off = pci_read(uint8_t(slot), uint8_t(p + 8));
        auto* at = reinterpret_cast<volatile uint8_t*>(bar + off);
        if (type == VIRTIO_PCI_CAP_COMMON_CFG)
            common = reinterpret_cast<volatile virtio_pci_common_cfg*>(at);
        if (type == VIRTIO_PCI_CAP_ISR_CFG) isr = at;
        if (type == VIRTIO_PCI_CAP_DEVICE_CFG) devcfg = at;
        if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
            notify = at;
            notify_mult = pci_read(uint8_t(slot), uint8_t(p + 16));
        }
    }
    if (!common || !isr || !devcfg || !notify) {
        rt::printf("capabilities missing\n");
        return 1;
    }
    common->device_status = 0;
    common->device_status = kStatusAcknowledge | kStatusDriver;
    common->device_feature_select = 1;
    const uint32_t hi = common->device_feature;
    common->device_feature_select = 0;
    const uint32_t lo = common->device_feature;
    rt::printf("features 0x%x%08x\n", hi, lo);
    common->guest_feature_select = 0;
    common->guest_feature = lo & (1u << VIRTIO_BLK_F_FLUSH);
    common->guest_feature_select = 1;
    common->guest_feature = 1;  // VERSION_1
    common->device_status = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk;
    if (!(common->device_status & kStatusFeaturesOk)) {
        rt::printf("FEATURES_OK refused\n");
        return 1;
    }
    common->queue_select = 0;
    rt::printf("queue 0 max size %u\n", common->queue_size);
    common->queue_size = 16;
    q.init(ring, uint64_t(ring), 16);
    common->queue_desc_lo = uint32_t(q.desc_addr());
    common->queue_desc_hi = 0;
    common->queue_avail_lo = uint32_t(q.avail_addr());
    common->queue_avail_hi = 0;
    common->queue_used_lo = uint32_t(q.used_addr());
    common->queue_used_hi = 0;
    common->queue_enable = 1;
    common->device_status =
        kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;
    uint64_t capacity = 0;
    for (int i = 0; i < 8; ++i) capacity |= uint64_t(devcfg[i]) << (8 * i);
    rt::printf("capacity %lu sectors\n", capacity);

    auto* hdr = reinterpret_cast<virtio_blk_outhdr*>(buf);
    uint8_t* status = buf + 64;
    uint8_t* data = buf + 512;
    int failures = 0;

    hdr->type = VIRTIO_BLK_T_GET_ID;
    hdr->sector = 0;
    DriverBuffer id[] = {
        {uint64_t(hdr), 16, false}, {uint64_t(data), 20, true}, {uint64_t(status), 1, true}};
    int64_t len = submit(id, 3);
    data[20] = 0;
    rt::printf("get-id: used %ld status %u serial \"%s\"\n", len, *status,
               reinterpret_cast<char*>(data));
    failures += *status != 0;
    (void)*isr;

    hdr->type = VIRTIO_BLK_T_IN;
    hdr->sector = 0;
    DriverBuffer rd[] = {
        {uint64_t(hdr), 16, false}, {uint64_t(data), 512, true}, {uint64_t(status), 1, true}};
    len = submit(rd, 3);
    data[40] = 0;
    rt::printf("read: used %ld status %u data \"%s\"\n", len, *status,
               reinterpret_cast<char*>(data));
    failures += *status != 0;
    rt::printf("isr %u\n", *isr);

    hdr->type = VIRTIO_BLK_T_OUT;
    hdr->sector = 1;
    const char msg[] = "written by the vblk guest";
    for (unsigned i = 0; i < 512; ++i) data[i] = i < sizeof msg ? uint8_t(msg[i]) : 0;
    DriverBuffer wr[] = {
        {uint64_t(hdr), 16, false}, {uint64_t(data), 512, false}, {uint64_t(status), 1, true}};
    len = submit(wr, 3);
    rt::printf("write: used %ld status %u\n", len, *status);
    const unsigned write_status = *status;

    hdr->type = VIRTIO_BLK_T_FLUSH;
    hdr->sector = 0;
    DriverBuffer fl[] = {{uint64_t(hdr), 16, false}, {uint64_t(status), 1, true}};
    len = submit(fl, 2);
    rt::printf("flush: used %ld status %u\n", len, *status);
    failures += *status != 0;
    if (rt::cmdline_number("hang", 0)) {
        // The host kills ukvm now: what was flushed must be in the image.
        rt::printf("flushed, hanging\n");
        rt::flush();
        for (;;) asm volatile("pause");
    }

    hdr->type = VIRTIO_BLK_T_IN;
    hdr->sector = capacity;  // one past the end
    len = submit(rd, 3);
    rt::printf("read past end: status %u\n", *status);
    failures += *status != VIRTIO_BLK_S_IOERR;

    if (rt::cmdline_number("irq", 0)) {
        setup_interrupts(uint8_t(pci_read(uint8_t(slot), 0x3C)));
        hdr->type = VIRTIO_BLK_T_IN;
        hdr->sector = 0;
        asm volatile("cli");
        for (int i = 0; i < 3; ++i) {
            const uint32_t before = irq_count;
            len = submit(rd, 3);
            // sti; hlt is atomic: an interrupt that is already pending still wakes the hlt.
            while (irq_count == before) asm volatile("sti; hlt; cli");
            rt::printf("irq: request %d status %u, interrupts %u, isr seen %u\n", i, *status,
                       irq_count, irq_isr);
            failures += irq_count != before + 1;
        }
        // A little while for spurious interrupts to show up.
        asm volatile("sti");
        for (int spin = 0; spin < 100000; ++spin) asm volatile("pause");
        asm volatile("cli");
        rt::printf("irq: %u interrupts, ISR values:", irq_count);
        for (uint32_t i = 0; i < irq_count && i < 64; ++i) rt::printf(" %u", irq_log[i]);
        rt::printf("\n");
    }
    if (const uint64_t n = rt::cmdline_number("bench", 0)) {
        hdr->type = VIRTIO_BLK_T_IN;
        hdr->sector = 0;
        const uint64_t t0 = rt::realtime_ns();
        for (uint64_t i = 0; i < n; ++i) submit(rd, 3);
        const uint64_t t1 = rt::realtime_ns();
        rt::printf("bench: %lu sequential 512-byte reads, %lu ns each\n", n, (t1 - t0) / n);
        const uint64_t t2 = rt::realtime_ns();
        for (uint64_t i = 0; i < n; ++i) *reinterpret_cast<volatile uint16_t*>(notify) = 0;
        const uint64_t t3 = rt::realtime_ns();
        rt::printf("bench: bare notify (ioeventfd) %lu ns each\n", (t3 - t2) / n);
        for (uint64_t i = 0; i < n; ++i) (void)*isr;
        const uint64_t t4 = rt::realtime_ns();
        rt::printf("bench: ISR read (MMIO exit to the VMM) %lu ns each\n", (t4 - t3) / n);
        for (uint64_t i = 0; i < n; ++i) asm volatile("outb %%al, $0x80" ::"a"(0));
        const uint64_t t5 = rt::realtime_ns();
        rt::printf("bench: port 0x80 write (port exit) %lu ns each\n", (t5 - t4) / n);
    }
    // Loop the queue on purpose: the device must report NEEDS_RESET, not crash.
    const uint16_t hits = uint16_t(rt::cmdline_number("loop", 0));
    if (hits) {
        q.descriptors()[0] = {uint64_t(hdr), 16, VRING_DESC_F_NEXT, 0};
        q.avail()->ring[q.avail()->idx % 16] = 0;
        __atomic_store_n(&q.avail()->idx, uint16_t(q.avail()->idx + 1), __ATOMIC_RELEASE);
        *reinterpret_cast<volatile uint16_t*>(notify) = 0;
        for (int i = 0; i < 100000000 && !(common->device_status & kStatusNeedsReset); ++i)
            asm volatile("pause");
        rt::printf("after a loop: status 0x%x isr %u\n", common->device_status, *isr);
        return (common->device_status & kStatusNeedsReset) ? 0 : 1;
    }
    rt::printf("write status %u, failures %d\n", write_status, failures);
    return failures + (write_status != 0 && !rt::cmdline_number("ro", 0) ? 1 : 0);
}
