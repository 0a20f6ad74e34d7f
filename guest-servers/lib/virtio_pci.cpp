#include "virtio_pci.hpp"

#include "sys.hpp"

using namespace ukvm::kernel;
using namespace ukvm::virtio;

namespace virtio_pci {

namespace {

int32_t pci_call(Message* m) {
    return sys::call("pci", m);
}

}  // namespace

int32_t dma_alloc(uint64_t len, Dma* out) {
    Message m{};
    m.u64[0] = 0, m.u64[1] = len, m.u64[2] = kMapWritable | kMapContiguous;
    int32_t r = user::kernel_call(kSysMapAnon, &m);
    if (r != kOk) return r;
    *out = {reinterpret_cast<uint8_t*>(m.u64[0]), m.u64[1], len};
    return kOk;
}

int32_t pci_config_read(uint16_t handle, uint32_t offset, uint32_t width, uint32_t* value) {
    Message m{};
    m.m_type = proto::kPciConfigRead;
    m.u64[0] = handle, m.u64[1] = offset, m.u64[2] = width;
    int32_t r = pci_call(&m);
    *value = r == kOk ? static_cast<uint32_t>(m.u64[0]) : ~0u;
    return r;
}

int32_t Device::map_bar(uint32_t bar, uint64_t offset, uint64_t len, volatile uint8_t** out) {
    Message m{};
    m.m_type = proto::kPciBar;
    m.u64[0] = handle_, m.u64[1] = bar;
    if (int32_t r = pci_call(&m); r != kOk) return r;
    uint64_t base = m.u64[0], size = m.u64[1];
    if (!size || (m.u64[2] & proto::kPciBarIo) || len == 0 || offset > size || len > size - offset)
        return proto::kENoDev;
    m = Message{};
    m.u64[0] = base + offset, m.u64[1] = len;
    if (int32_t r = user::kernel_call(kSysMapPhys, &m); r != kOk) return r;
    *out = reinterpret_cast<volatile uint8_t*>(m.u64[0]);
    return kOk;
}

int32_t Device::open(uint32_t virtio_id, int index) {
    Message m{};
    m.m_type = proto::kPciClaim;
    m.u64[0] = kPciVendor, m.u64[1] = kPciModernDeviceBase + virtio_id;
    m.u64[2] = static_cast<uint64_t>(index);
    if (int32_t r = pci_call(&m); r != kOk) return r;
    handle_ = static_cast<uint16_t>(m.u64[0]);
    irq_ = static_cast<uint32_t>(m.u64[1]);
    // Walk the capability list for the four virtio structures.
    uint32_t status = 0, pos = 0;
    pci_config_read(handle_, 0x06, 2, &status);
    if (status & 0x10) pci_config_read(handle_, 0x34, 1, &pos);
    for (int guard = 0; pos >= 0x40 && pos < 0xfc && guard < 48; ++guard) {
        uint32_t w0 = 0, bar = 0, offset = 0, length = 0;
        pci_config_read(handle_, pos, 4, &w0);
        if ((w0 & 0xff) == 0x09) {  // vendor-specific: a virtio_pci_cap
            uint32_t type = w0 >> 24;
            pci_config_read(handle_, pos + 4, 1, &bar);
            pci_config_read(handle_, pos + 8, 4, &offset);
            pci_config_read(handle_, pos + 12, 4, &length);
            volatile uint8_t* at = nullptr;
            bool want = (type == VIRTIO_PCI_CAP_COMMON_CFG && !common_) ||
                        (type == VIRTIO_PCI_CAP_ISR_CFG && !isr_) ||
                        (type == VIRTIO_PCI_CAP_DEVICE_CFG && !device_cfg_) ||
                        (type == VIRTIO_PCI_CAP_NOTIFY_CFG && !notify_base_);
            if (want && bar < 6 && map_bar(bar, offset, length, &at) == kOk) {
                if (type == VIRTIO_PCI_CAP_COMMON_CFG && length >= sizeof(virtio_pci_common_cfg))
                    common_ = reinterpret_cast<volatile virtio_pci_common_cfg*>(at);
                if (type == VIRTIO_PCI_CAP_ISR_CFG) isr_ = at;
                if (type == VIRTIO_PCI_CAP_DEVICE_CFG) device_cfg_ = at;
                if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
                    pci_config_read(handle_, pos + 16, 4, &notify_mult_);
                    notify_base_ = at;
                    notify_len_ = length;
                }
            }
        }
        pos = (w0 >> 8) & 0xfc;
    }
    if (!common_ || !isr_ || !notify_base_) return proto::kENoDev;
    return kOk;
}

void Device::reset() {
    common_->device_status = 0;
    for (int i = 0; i < 1000000 && common_->device_status != 0; ++i) asm volatile("pause");
}

void Device::fail() {
    common_->device_status = static_cast<uint8_t>(common_->device_status | kStatusFailed);
}

uint8_t Device::status() const {
    return common_->device_status;
}

int32_t Device::negotiate(uint64_t wanted, uint64_t* got) {
    reset();
    common_->device_status = kStatusAcknowledge;
    common_->device_status = kStatusAcknowledge | kStatusDriver;
    uint64_t offered = 0;
    for (uint32_t half = 0; half < 2; ++half) {
        common_->device_feature_select = half;
        offered |= uint64_t{common_->device_feature} << (32 * half);
    }
    uint64_t take = (wanted | feature(VIRTIO_F_VERSION_1)) & offered;
    if (!(take & feature(VIRTIO_F_VERSION_1))) {
        fail();
        return proto::kEIo;
    }
    for (uint32_t half = 0; half < 2; ++half) {
        common_->guest_feature_select = half;
        common_->guest_feature = static_cast<uint32_t>(take >> (32 * half));
    }
    common_->device_status = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk;
    if (!(common_->device_status & kStatusFeaturesOk)) {
        fail();
        return proto::kEIo;
    }
    *got = take;
    return kOk;
}

uint16_t Device::queue_max(uint16_t q) {
    if (q >= common_->num_queues) return 0;
    common_->queue_select = q;
    return common_->queue_size;
}

int32_t Device::setup_queue(uint16_t q, uint16_t size, const Dma& mem, DriverQueue* dq) {
    uint16_t max = queue_max(q);
    if (size == 0) size = max < 256 ? max : 256;
    if (q >= 8 || !max || size > max || !valid_queue_size(size) ||
        mem.len < DriverQueue::ring_bytes(size) || !dq->init(mem.va, mem.pa, size))
        return kEInval;
    common_->queue_select = q;
    common_->queue_size = size;
    common_->queue_desc_lo = static_cast<uint32_t>(dq->desc_addr());
    common_->queue_desc_hi = static_cast<uint32_t>(dq->desc_addr() >> 32);
    common_->queue_avail_lo = static_cast<uint32_t>(dq->avail_addr());
    common_->queue_avail_hi = static_cast<uint32_t>(dq->avail_addr() >> 32);
    common_->queue_used_lo = static_cast<uint32_t>(dq->used_addr());
    common_->queue_used_hi = static_cast<uint32_t>(dq->used_addr() >> 32);
    uint64_t off = uint64_t{common_->queue_notify_off} * notify_mult_;
    if (off + 2 > notify_len_) return kEInval;
    notify_addr_[q] = notify_base_ + off;
    common_->queue_enable = 1;
    return kOk;
}

void Device::driver_ok() {
    common_->device_status = static_cast<uint8_t>(common_->device_status | kStatusDriverOk);
}

int32_t Device::enable_irq() {
    if (irq_ == proto::kPciNoIrq) return proto::kENoDev;
    Message m{};
    m.u64[0] = irq_, m.u64[1] = 1;
    return user::kernel_call(kSysIrqCtl, &m);
}

void Device::read_config(uint32_t offset, void* out, uint32_t len) const {
    auto* dst = static_cast<uint8_t*>(out);
    for (int attempt = 0; attempt < 16; ++attempt) {
        uint8_t before = common_->config_generation;
        for (uint32_t i = 0; i < len; ++i) dst[i] = device_cfg_ ? device_cfg_[offset + i] : 0;
        if (common_->config_generation == before) return;
    }
}

}  // namespace virtio_pci
