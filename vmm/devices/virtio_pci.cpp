#include "vmm/devices/virtio_pci.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace ukvm {

namespace vp = virtio_pci;

bool GuestRam::read(std::uint64_t gpa, void* out, std::size_t len) {
    if (!memory_.contains(gpa, len)) return false;
    if (len != 0) std::memcpy(out, memory_.span(gpa, len).data(), len);
    return true;
}

bool GuestRam::write(std::uint64_t gpa, const void* in, std::size_t len) {
    if (!memory_.contains(gpa, len)) return false;
    if (len != 0) std::memcpy(memory_.span(gpa, len).data(), in, len);
    return true;
}

std::uint8_t* GuestRam::host(std::uint64_t gpa, std::size_t len) {
    if (len == 0 || !memory_.contains(gpa, len)) return nullptr;
    return memory_.span(gpa, len).data();
}

namespace {

// A virtio_pci_cap (4.1.4) as config-space bytes; cap_next is filled in by ConfigSpace.
std::vector<std::uint8_t> capability(std::uint8_t type, std::uint32_t offset, std::uint32_t length,
                                     std::size_t total = sizeof(virtio_pci_cap)) {
    virtio_pci_cap cap{};
    cap.cap_vndr = pci::kCapVendor;
    cap.cap_len = static_cast<std::uint8_t>(total);
    cap.cfg_type = type;
    cap.bar = 0;
    cap.offset = offset;
    cap.length = length;
    std::vector<std::uint8_t> bytes(total, 0);
    std::memcpy(bytes.data(), &cap, sizeof cap);
    return bytes;
}

// Whether [offset, offset + len) overlaps the field at [field, field + size).
bool touches(std::uint64_t offset, std::size_t len, std::size_t field, std::size_t size) {
    return offset < field + size && field < offset + len;
}

#define UKVM_FIELD(name) offsetof(virtio_pci_common_cfg, name), sizeof(virtio_pci_common_cfg::name)

}  // namespace

VirtioPci::VirtioPci(VirtioDevice& device, VirtioMemory& memory, Host& host, std::uint8_t irq_line)
    : device_(device),
      host_(host),
      config_(pci::Identity{
          .vendor = virtio::kPciVendor,
          .device = static_cast<std::uint16_t>(virtio::kPciModernDeviceBase + device.device_id()),
          .class_code = device.pci_class(),
          .subclass = device.pci_subclass(),
          .revision = 1,  // a modern-only (non-transitional) device, 4.1.2.1
          .subsystem_vendor = virtio::kPciVendor,
          .subsystem = 0x40}) {
    for (std::uint16_t i = 0; i < device.num_queues(); ++i) {
        queues_.push_back(std::make_unique<Queue>(memory));
    }
    config_.add_bar(0, vp::kBarSize, pci::BarKind::Memory32);
    config_.add_capability(
        capability(VIRTIO_PCI_CAP_COMMON_CFG, vp::kCommonOffset, sizeof(virtio_pci_common_cfg)));
    {
        auto notify = capability(VIRTIO_PCI_CAP_NOTIFY_CFG, vp::kNotifyOffset,
                                 vp::kNotifyMultiplier * std::max<std::uint32_t>(1, num_queues()),
                                 sizeof(virtio_pci_notify_cap));
        std::memcpy(notify.data() + offsetof(virtio_pci_notify_cap, notify_off_multiplier),
                    &vp::kNotifyMultiplier, sizeof vp::kNotifyMultiplier);
        config_.add_capability(notify);
    }
    config_.add_capability(capability(VIRTIO_PCI_CAP_ISR_CFG, vp::kIsrOffset, 1));
    config_.add_capability(capability(VIRTIO_PCI_CAP_DEVICE_CFG, vp::kDeviceOffset,
                                      static_cast<std::uint32_t>(device.config_bytes().size())));
    // The PCI configuration access window: bar, offset, length and data are the driver's.
    pci_cfg_cap_ =
        config_.add_capability(capability(VIRTIO_PCI_CAP_PCI_CFG, 0, 0, sizeof(virtio_pci_cfg_cap)),
                               offsetof(virtio_pci_cap, bar));
    config_.set_interrupt_pin(irq_line, 1);  // INTA#
}

std::uint64_t VirtioPci::offered_features() const {
    return device_.device_features() | virtio::feature(VIRTIO_F_VERSION_1);
}

std::uint8_t VirtioPci::status() const {
    std::lock_guard lock(mutex_);
    return status_;
}

bool VirtioPci::interrupt_pending() const {
    return isr_.load() != 0;
}

std::string VirtioPci::needs_reset_reason() const {
    std::lock_guard lock(mutex_);
    return needs_reset_reason_;
}

void VirtioPci::pci_cfg_window(std::uint16_t offset, std::size_t len, bool write) {
    const std::size_t data_at = pci_cfg_cap_ + offsetof(virtio_pci_cfg_cap, pci_cfg_data);
    if (!touches(offset, len, data_at, 4)) return;
    auto bytes = config_.bytes();
    virtio_pci_cap cap;
    std::memcpy(&cap, bytes.data() + pci_cfg_cap_, sizeof cap);
    if (cap.bar != 0 || (cap.length != 1 && cap.length != 2 && cap.length != 4)) return;
    std::uint8_t buf[4] = {};
    if (write) std::memcpy(buf, bytes.data() + data_at, 4);
    bar_access(cap.offset, std::span(buf, cap.length), write);
    if (!write) std::memcpy(bytes.data() + data_at, buf, 4);
}

void VirtioPci::config_read(std::uint16_t offset, std::span<std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    pci_cfg_window(offset, data.size(), false);
    config_.read(offset, data);
}

void VirtioPci::config_write(std::uint16_t offset, std::span<const std::uint8_t> data) {
    bool moved = false;
    {
        std::lock_guard lock(mutex_);
        moved = config_.write(offset, data);
        pci_cfg_window(offset, data.size(), true);
    }
    if (moved) decode_changed();
}

void VirtioPci::decode_changed() {
    std::lock_guard lock(mutex_);
    const std::uint64_t base = config_.bar_address(0);
    const bool decodes = config_.memory_enabled() && base != 0;
    for (std::uint16_t q = 0; q < num_queues(); ++q) {
        std::optional<std::uint64_t> at;
        if (decodes) at = base + vp::kNotifyOffset + std::uint64_t{vp::kNotifyMultiplier} * q;
        if (queues_[q]->notify_at != at) {
            queues_[q]->notify_at = at;
            host_.notify_moved(q, at);
        }
    }
}

void VirtioPci::bar_read(int bar, std::uint64_t offset, std::span<std::uint8_t> data) {
    if (bar != 0) {
        std::fill(data.begin(), data.end(), 0xFF);
        return;
    }
    if (offset == vp::kIsrOffset) {
        bar_access(offset, data, false);  // atomic; see isr_
        return;
    }
    std::lock_guard lock(mutex_);
    bar_access(offset, data, false);
}

void VirtioPci::bar_write(int bar, std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    if (bar != 0) return;
    std::uint8_t buf[8] = {};
    const std::size_t len = std::min(data.size(), sizeof buf);
    std::copy_n(data.begin(), len, buf);
    bar_access(offset, std::span(buf, len), true);
}

void VirtioPci::bar_access(std::uint64_t offset, std::span<std::uint8_t> data, bool write) {
    if (!write) std::fill(data.begin(), data.end(), 0);
    if (offset < vp::kCommonOffset + sizeof(virtio_pci_common_cfg)) {
        if (write) {
            write_common(offset, data);
        } else {
            read_common(offset, data);
        }
    } else if (offset == vp::kIsrOffset) {
        // Reading the ISR acknowledges it (4.1.4.5).
        if (!write && !data.empty()) data[0] = isr_.exchange(0);
    } else if (offset >= vp::kDeviceOffset && offset < vp::kNotifyOffset) {
        const auto cfg = device_.config_bytes();
        const std::uint64_t at = offset - vp::kDeviceOffset;
        if (!write && at < cfg.size()) {
            std::copy_n(cfg.begin() + at, std::min<std::size_t>(data.size(), cfg.size() - at),
                        data.begin());
        }
    } else if (offset >= vp::kNotifyOffset && write) {
        const std::uint64_t q = (offset - vp::kNotifyOffset) / vp::kNotifyMultiplier;
        if (q < num_queues()) host_.queue_notified(static_cast<std::uint16_t>(q));
    }
}

VirtioPci::Queue* VirtioPci::selected_queue() {
    return queue_select_ < queues_.size() ? queues_[queue_select_].get() : nullptr;
}

void VirtioPci::read_common(std::uint64_t offset, std::span<std::uint8_t> data) {
    virtio_pci_common_cfg cfg{};
    const std::uint64_t features = offered_features();
    cfg.device_feature_select = device_feature_select_;
    cfg.device_feature = device_feature_select_ < 2
                             ? static_cast<std::uint32_t>(features >> (32 * device_feature_select_))
                             : 0;
    cfg.guest_feature_select = driver_feature_select_;
    cfg.guest_feature =
        driver_feature_select_ < 2
            ? static_cast<std::uint32_t>(driver_features_ >> (32 * driver_feature_select_))
            : 0;
    cfg.msix_config = VIRTIO_MSI_NO_VECTOR;
    cfg.num_queues = num_queues();
    cfg.device_status = status_;
    cfg.config_generation = 0;  // the device configuration never changes
    cfg.queue_select = queue_select_;
    cfg.queue_msix_vector = VIRTIO_MSI_NO_VECTOR;
    if (Queue* q = selected_queue()) {
        cfg.queue_size = q->size;
        cfg.queue_enable = q->ring.enabled() ? 1 : 0;
        cfg.queue_notify_off = queue_select_;
        cfg.queue_desc_lo = static_cast<std::uint32_t>(q->desc);
        cfg.queue_desc_hi = static_cast<std::uint32_t>(q->desc >> 32);
        cfg.queue_avail_lo = static_cast<std::uint32_t>(q->avail);
        cfg.queue_avail_hi = static_cast<std::uint32_t>(q->avail >> 32);
        cfg.queue_used_lo = static_cast<std::uint32_t>(q->used);
        cfg.queue_used_hi = static_cast<std::uint32_t>(q->used >> 32);
    }
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(&cfg);
    const std::size_t n = std::min<std::size_t>(data.size(), sizeof cfg - offset);
    std::copy_n(bytes + offset, n, data.begin());
}

void VirtioPci::write_common(std::uint64_t offset, std::span<const std::uint8_t> data) {
    virtio_pci_common_cfg cfg{};
    const std::size_t n = std::min<std::size_t>(data.size(), sizeof cfg - offset);
    std::memcpy(reinterpret_cast<std::uint8_t*>(&cfg) + offset, data.data(), n);
    auto set_half = [](std::uint64_t& v, std::uint32_t select, std::uint32_t half) {
        if (select >= 2) return;
        const unsigned shift = 32 * select;
        v = (v & ~(std::uint64_t{0xFFFFFFFF} << shift)) | (std::uint64_t{half} << shift);
    };
    // Each field a write touches takes its new value from the written bytes; callers write
    // whole fields (4.1.3.1), so partly written fields are rare and merely odd.
    if (touches(offset, n, UKVM_FIELD(device_feature_select))) {
        device_feature_select_ = cfg.device_feature_select;
    }
    if (touches(offset, n, UKVM_FIELD(guest_feature_select))) {
        driver_feature_select_ = cfg.guest_feature_select;
    }
    if (touches(offset, n, UKVM_FIELD(guest_feature)) && !(status_ & virtio::kStatusFeaturesOk)) {
        set_half(driver_features_, driver_feature_select_, cfg.guest_feature);
    }
    if (touches(offset, n, UKVM_FIELD(queue_select))) queue_select_ = cfg.queue_select;
    if (Queue* q = selected_queue(); q != nullptr && !q->ring.enabled()) {
        // The ring's layout is fixed once the queue is enabled (4.1.4.3.2).
        if (touches(offset, n, UKVM_FIELD(queue_size))) q->size = cfg.queue_size;
        auto set64 = [&](std::uint64_t& v, std::size_t lo_at, std::uint32_t lo, std::size_t hi_at,
                         std::uint32_t hi) {
            if (touches(offset, n, lo_at, 4)) set_half(v, 0, lo);
            if (touches(offset, n, hi_at, 4)) set_half(v, 1, hi);
        };
        set64(q->desc, offsetof(virtio_pci_common_cfg, queue_desc_lo), cfg.queue_desc_lo,
              offsetof(virtio_pci_common_cfg, queue_desc_hi), cfg.queue_desc_hi);
        set64(q->avail, offsetof(virtio_pci_common_cfg, queue_avail_lo), cfg.queue_avail_lo,
              offsetof(virtio_pci_common_cfg, queue_avail_hi), cfg.queue_avail_hi);
        set64(q->used, offsetof(virtio_pci_common_cfg, queue_used_lo), cfg.queue_used_lo,
              offsetof(virtio_pci_common_cfg, queue_used_hi), cfg.queue_used_hi);
        if (touches(offset, n, UKVM_FIELD(queue_enable)) && cfg.queue_enable == 1) {
            enable_queue(*q);
        }
    }
    if (touches(offset, n, UKVM_FIELD(device_status))) write_status(cfg.device_status);
}

void VirtioPci::write_status(std::uint8_t status) {
    if (status == 0) {
        reset_locked();
        return;
    }
    std::uint8_t next = static_cast<std::uint8_t>(status | (status_ & virtio::kStatusNeedsReset));
    const std::uint8_t added = static_cast<std::uint8_t>(next & ~status_);
    if (added & virtio::kStatusFeaturesOk) {
        // Only features the device offered, and virtio 1.x itself (2.2, 6.1).
        const bool subset = (driver_features_ & ~offered_features()) == 0;
        const bool modern = (driver_features_ & virtio::feature(VIRTIO_F_VERSION_1)) != 0;
        if (!subset || !modern) next &= static_cast<std::uint8_t>(~virtio::kStatusFeaturesOk);
    }
    status_ = next;
    if ((added & virtio::kStatusDriverOk) && (status_ & virtio::kStatusFeaturesOk)) {
        device_.activate(driver_features_);
        // Buffers made available before DRIVER_OK are processed now.
        for (std::uint16_t q = 0; q < num_queues(); ++q) {
            if (queues_[q]->ring.enabled()) host_.queue_notified(q);
        }
    }
}

void VirtioPci::reset_locked() {
    device_.reset();
    for (auto& q : queues_) {
        q->ring.reset();
        q->size = kVirtQueueMaxSize;
        q->desc = q->avail = q->used = 0;
    }
    device_feature_select_ = driver_feature_select_ = 0;
    driver_features_ = 0;
    status_ = 0;
    isr_ = 0;
    queue_select_ = 0;
    needs_reset_reason_.clear();
}

void VirtioPci::enable_queue(Queue& q) {
    const virtio::QueueError e = q.ring.enable(q.size, q.desc, q.avail, q.used);
    if (e != virtio::QueueError::kNone) needs_reset(virtio::to_string(e));
}

void VirtioPci::needs_reset(const std::string& why) {
    if (status_ & virtio::kStatusNeedsReset) return;
    status_ |= virtio::kStatusNeedsReset;
    needs_reset_reason_ = why;
    spdlog::warn("virtio device {}: {}; device needs reset", device_.device_id(), why);
    // The driver learns through a configuration-change interrupt once it is running (2.1.2).
    if (status_ & virtio::kStatusDriverOk) interrupt(vp::kIsrConfig);
}

void VirtioPci::interrupt(std::uint8_t isr_bits) {
    isr_.fetch_or(isr_bits);
    if (!(config_.command() & pci::kCommandIntxDisable)) host_.raise_interrupt();
}

void VirtioPci::process_queue(std::uint16_t index) {
    std::lock_guard lock(mutex_);
    if (index >= num_queues()) return;
    VirtQueue& ring = queues_[index]->ring;
    if (!(status_ & virtio::kStatusDriverOk) || (status_ & virtio::kStatusNeedsReset) ||
        !ring.ready()) {
        device_.idle(index);
        return;
    }
    const std::uint16_t before = ring.used_index();
    const char* error = device_.process(index, ring);
    if (ring.used_index() != before && ring.wants_interrupt()) interrupt(vp::kIsrQueue);
    if (error != nullptr) {
        needs_reset(error);
    } else if (ring.error() != virtio::QueueError::kNone) {
        needs_reset(virtio::to_string(ring.error()));
    }
}

}  // namespace ukvm
