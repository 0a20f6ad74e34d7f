// vblk, the virtio-blk driver: one process per disk (its argument is the disk's index
// among the virtio-blk functions, default 0; RS publishes it in DS as "vblk<index>").
// Serves the kBdev* protocol of proto.hpp one request at a time: the device reads or
// writes the client's granted pages directly (kSysUmapGrant says where they are), or,
// when the kernel will not say or "bounce" follows the index ("1,bounce"), the data moves
// through a DMA bounce buffer (safecopy). The device is told through its notify register,
// and the driver sleeps until the device's interrupt arrives from kHardware. With no such
// disk it stays up and answers kENoDev, so RS has nothing to restart. Answers RS's
// heartbeats between requests.
#include <ukvm/virtio/virtqueue.h>

#include "sys.hpp"
#include "virtio_pci.hpp"

using namespace ukvm::kernel;
using namespace ukvm::virtio;
using user::print;

namespace {

constexpr uint16_t kQueueSize = 64;
constexpr int kMaxRanges = 32;  // data descriptors of one request (64 KiB: at most 17)
constexpr uint64_t kPage = 4096;

virtio_pci::Device g_dev;
DriverQueue g_queue;
virtio_pci::Dma g_dma;       // page 0: the ring; page 1: header and status; then the bounce
virtio_blk_outhdr* g_hdr;    // in page 1
volatile uint8_t* g_status;  // in page 1, after the header
uint8_t* g_bounce;           // kBdevMaxTransfer bytes
uint64_t g_bounce_pa;
uint64_t g_size = 0;  // bytes
bool g_read_only = false, g_has_flush = false, g_has_irq = false;
bool g_bounce_only = false;        // argument "bounce": never DMA into clients' pages
int32_t g_state = proto::kENoDev;  // kOk once the device is up
int g_index = 0;

int32_t init_device() {
    if (int32_t r = g_dev.open(VIRTIO_ID_BLOCK, g_index); r != kOk) return r;
    uint64_t features = 0;
    uint64_t want = feature(VIRTIO_BLK_F_RO) | feature(VIRTIO_BLK_F_FLUSH);
    if (int32_t r = g_dev.negotiate(want, &features); r != kOk) return r;
    g_read_only = features & feature(VIRTIO_BLK_F_RO);
    g_has_flush = features & feature(VIRTIO_BLK_F_FLUSH);
    if (int32_t r = virtio_pci::dma_alloc(2 * kPage + proto::kBdevMaxTransfer, &g_dma); r != kOk)
        return r;
    if (int32_t r = g_dev.setup_queue(0, kQueueSize, g_dma, &g_queue); r != kOk) return r;
    g_hdr = reinterpret_cast<virtio_blk_outhdr*>(g_dma.va + kPage);
    g_status = g_dma.va + kPage + sizeof(virtio_blk_outhdr);
    g_bounce = g_dma.va + 2 * kPage;
    g_bounce_pa = g_dma.pa + 2 * kPage;
    uint64_t capacity = 0;
    g_dev.read_config(0, &capacity, sizeof capacity);  // virtio_blk_config.capacity, sectors
    g_size = capacity > ~0ull / proto::kBdevSectorSize ? 0 : capacity * proto::kBdevSectorSize;
    g_queue.set_interrupts(false);  // on only while the driver waits (submit)
    g_dev.driver_ok();
    g_has_irq = g_dev.enable_irq() == kOk;
    if (!g_has_irq) print("vblk%d: no interrupt; polling\n", g_index);
    return kOk;
}

uint64_t dma_pa(const volatile void* p) {
    return g_dma.pa + (reinterpret_cast<const volatile uint8_t*>(p) - g_dma.va);
}

// One request: type at sector, data in the n physical ranges (device-writable for IN and
// GET_ID); waits for its completion. kOk, kEIo (device error or a broken device) or
// kENoSys (UNSUPP).
int32_t submit(uint32_t type, uint64_t sector, const PhysRange* data, int n) {
    g_hdr->type = type;
    g_hdr->ioprio = 0;
    g_hdr->sector = sector;
    *g_status = 0xff;
    bool device_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
    DriverBuffer bufs[kMaxRanges + 2];
    bufs[0] = {dma_pa(g_hdr), sizeof(virtio_blk_outhdr), false};
    for (int i = 0; i < n; ++i)
        bufs[i + 1] = {data[i].addr, static_cast<uint32_t>(data[i].len), device_writes};
    bufs[n + 1] = {dma_pa(g_status), 1, true};
    if (g_queue.add(bufs, static_cast<uint16_t>(n + 2)) < 0) return proto::kEIo;
    if (g_queue.publish()) g_dev.notify(0);
    // Interrupts stay off (VRING_AVAIL_F_NO_INTERRUPT) while the driver finds the request
    // done without one, as it usually does on ukvm by the time the notify write returns.
    // When it does not, they go on, the ring is looked at once more (a completion between
    // the two looks is then interrupted), and the driver sleeps until the interrupt.
    // Under QEMU the interrupt is a level-triggered INTx line (programmed edge-triggered
    // here, as ukvm's pulses are): it stays up until the ISR is read, and while it is up no
    // new edge can come. Every rising edge leaves a notification, and the ISR is read after
    // every wake, so the line never stays up unseen.
    bool irq_on = false, isr_read = false;
    for (;;) {
        uint16_t head;
        uint32_t written;
        auto r = g_queue.take_used(head, written);
        if (r == DriverQueue::UsedResult::kTaken) {
            if (irq_on) {
                g_queue.set_interrupts(false);
                if (!isr_read) (void)g_dev.isr();
            }
            break;
        }
        bool broken = r == DriverQueue::UsedResult::kBadDevice;
        if (!broken && !g_has_irq) {
            asm volatile("pause");
            continue;
        }
        if (!broken && !irq_on) {
            g_queue.set_interrupts(true);
            irq_on = true;
            continue;
        }
        if (!broken) {
            Message n{};
            user::receive(kHardware, &n);
            // A configuration change is how the device says it needs a reset.
            broken = (g_dev.isr() & VIRTIO_PCI_ISR_CONFIG) && (g_dev.status() & kStatusNeedsReset);
            isr_read = true;
        }
        if (broken) {
            g_state = proto::kEIo;  // no more requests: the queue cannot be trusted
            print("vblk%d: the device broke (status %x)\n", g_index, g_dev.status());
            return proto::kEIo;
        }
    }
    uint8_t status = *g_status;
    if (status == VIRTIO_BLK_S_OK) return kOk;
    return status == VIRTIO_BLK_S_UNSUPP ? kENoSys : proto::kEIo;
}

// The range check every data request gets.
bool valid_range(uint64_t offset, uint64_t len) {
    return len > 0 && len <= proto::kBdevMaxTransfer && offset % proto::kBdevSectorSize == 0 &&
           len % proto::kBdevSectorSize == 0 && offset <= g_size && len <= g_size - offset;
}

// Through the bounce buffer: len bytes of it, or none.
int32_t submit_bounce(uint32_t type, uint64_t sector, uint32_t len) {
    PhysRange r{g_bounce_pa, len};
    return submit(type, sector, &r, len ? 1 : 0);
}

int32_t transfer(Message& m, bool write) {
    uint64_t offset = m.u64[0], len = m.u64[1];
    auto grant = static_cast<int64_t>(m.u64[2]);
    uint64_t at = m.u64[3];  // where in the grant
    if (!valid_range(offset, len)) return kEInval;
    if (write && g_read_only) return proto::kERoFs;
    uint32_t type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
    uint64_t sector = offset / proto::kBdevSectorSize;
    // Zero copy: the device reads or writes the client's own pages (the kernel says where
    // they are; the client waits in SENDREC meanwhile, so they stay put). Else, or when the
    // kernel will not say, through the bounce buffer.
    static PhysRange ranges[kMaxRanges];
    Message u{};
    u.u64[0] = static_cast<uint64_t>(m.m_source), u.u64[1] = static_cast<uint64_t>(grant);
    u.u64[2] = at, u.u64[3] = len, u.u64[4] = write ? kGrantRead : kGrantWrite;
    u.u64[5] = reinterpret_cast<uint64_t>(ranges), u.u64[6] = kMaxRanges;
    if (!g_bounce_only) {
        int32_t n = user::kernel_call(kSysUmapGrant, &u);
        if (n > 0) {
            int32_t r = submit(type, sector, ranges, n);
            return r == kOk ? static_cast<int32_t>(len) : r;
        }
    }
    Message c{};
    c.u64[0] = static_cast<uint64_t>(m.m_source), c.u64[1] = static_cast<uint64_t>(grant);
    c.u64[2] = at, c.u64[3] = reinterpret_cast<uint64_t>(g_bounce), c.u64[4] = len;
    if (write)
        if (int32_t r = user::kernel_call(kSysSafeCopyFrom, &c); r != kOk) return r;
    int32_t r = submit_bounce(type, sector, static_cast<uint32_t>(len));
    if (r != kOk) return r;
    if (!write)
        if (int32_t e = user::kernel_call(kSysSafeCopyTo, &c); e != kOk) return e;
    return static_cast<int32_t>(len);
}

int32_t handle(Message& m) {
    if (m.m_type < proto::kBdevOpen || m.m_type > proto::kBdevGetId) return kENoSys;
    if (g_state != kOk) return g_state;
    switch (m.m_type) {
        case proto::kBdevOpen:
            m.u64[0] = g_size;
            m.u64[1] = g_read_only ? proto::kBdevReadOnly : 0;
            return kOk;
        case proto::kBdevRead:
            return transfer(m, false);
        case proto::kBdevWrite:
            return transfer(m, true);
        case proto::kBdevFlush:
            if (g_read_only) return proto::kERoFs;
            return g_has_flush ? submit_bounce(VIRTIO_BLK_T_FLUSH, 0, 0) : kOk;
        case proto::kBdevGetId: {
            memset(g_bounce, 0, VIRTIO_BLK_ID_BYTES);
            if (int32_t r = submit_bounce(VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES); r != kOk)
                return r;
            int32_t n = 0;
            while (n < int32_t{VIRTIO_BLK_ID_BYTES} && g_bounce[n]) ++n;
            memset(m.bytes, 0, sizeof m.bytes);
            memcpy(m.bytes + 8, g_bounce, static_cast<size_t>(n));
            return n;
        }
        default:
            return kENoSys;
    }
}

}  // namespace

int main(const char* args) {
    int64_t index = 0;
    char first[8] = {};
    size_t n = 0;
    for (; n < sizeof first - 1 && args[n] && args[n] != ' ' && args[n] != ','; ++n)
        first[n] = args[n];
    if (first[0] && (!sys::parse_int(first, &index) || index < 0 || index > 7)) index = 0;
    g_bounce_only = args[n] && strcmp(args + n + 1, "bounce") == 0;  // "0 bounce", "0,bounce
    g_index = static_cast<int>(index);
    g_state = init_device();
    if (g_state == kOk)
        print("vblk%d: %lu sectors%s, irq %d%s\n", g_index, g_size / proto::kBdevSectorSize,
              g_read_only ? ", read-only" : "", g_has_irq ? static_cast<int>(g_dev.irq()) : -1,
              g_bounce_only ? ", bounce buffer" : "");
    else if (g_state != proto::kENoDev)
        print("vblk%d: cannot use the device (%d)\n", g_index, g_state);
    user::serve(handle);
}
