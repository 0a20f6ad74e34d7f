#include "vmm/pci/pci_bus.hpp"

#include <algorithm>
#include <string>

namespace ukvm::pci {

namespace {
constexpr std::uint32_t kEnable = 1u << 31;
// The bits CONFIG_ADDRESS keeps: enable, bus, device, function, dword register.
constexpr std::uint32_t kAddressMask = kEnable | 0x00FFFFFC;

std::uint64_t align_up(std::uint64_t v, std::uint64_t align) {
    return (v + align - 1) & ~(align - 1);
}
}  // namespace

HostBridge::HostBridge()
    : config_(Identity{.vendor = 0x8086, .device = 0x1237, .class_code = 0x06, .subclass = 0x00}) {}

void HostBridge::bar_read(int, std::uint64_t, std::span<std::uint8_t> data) {
    std::fill(data.begin(), data.end(), 0xFF);
}

PciBus::PciBus(Window mmio, Window io) : mmio_(mmio), io_(io) {
    slots_[0] = &bridge_;
}

void PciBus::attach(int slot, PciDevice& device) {
    std::lock_guard lock(mutex_);
    if (slot <= 0 || slot >= kSlots)
        throw PciError("PCI slot " + std::to_string(slot) + " is out of range");
    if (slots_[slot] != nullptr) throw PciError("PCI slot " + std::to_string(slot) + " is taken");
    slots_[slot] = &device;
}

int PciBus::free_slot() const {
    std::lock_guard lock(mutex_);
    for (int slot = 1; slot < kSlots; ++slot) {
        if (slots_[slot] == nullptr) return slot;
    }
    throw PciError("all 31 PCI slots are taken");
}

void PciBus::place_bars() {
    std::lock_guard lock(mutex_);
    std::uint64_t next_mmio = mmio_.base;
    std::uint64_t next_io = io_.base;
    for (PciDevice* dev : slots_) {
        if (dev == nullptr) continue;
        ConfigSpace& cs = dev->config();
        std::uint16_t command = cs.command();
        for (int bar = 0; bar < kBarCount; ++bar) {
            if (!cs.has_bar(bar)) continue;
            const bool io = cs.bar_kind(bar) == BarKind::Io;
            std::uint64_t& next = io ? next_io : next_mmio;
            const Window& window = io ? io_ : mmio_;
            const std::uint64_t size = cs.bar_size(bar);
            const std::uint64_t at = align_up(next, size);
            if (at + size > window.base + window.size || at < next) {
                throw PciError("PCI BARs do not fit the " + std::string(io ? "I/O" : "MMIO") +
                               " window");
            }
            cs.set_bar_address(bar, at);
            next = at + size;
            command |= io ? kCommandIo : kCommandMemory;
        }
        cs.set_command(command);
        dev->decode_changed();
    }
}

std::optional<PciBus::Hit> PciBus::decode(std::uint64_t addr, std::size_t len, bool io) const {
    std::lock_guard lock(mutex_);
    for (PciDevice* dev : slots_) {
        if (dev == nullptr) continue;
        ConfigSpace& cs = dev->config();
        if (io ? !cs.io_enabled() : !cs.memory_enabled()) continue;
        for (int bar = 0; bar < kBarCount; ++bar) {
            if (!cs.has_bar(bar) || (cs.bar_kind(bar) == BarKind::Io) != io) continue;
            const std::uint64_t base = cs.bar_address(bar);
            const std::uint64_t size = cs.bar_size(bar);
            // The whole access must fall inside the BAR; a BAR left unplaced (0) decodes nothing.
            if (base == 0 || addr < base || addr - base >= size || len > size - (addr - base)) {
                continue;
            }
            return Hit{dev, bar, addr - base};
        }
    }
    return std::nullopt;
}

PciDevice* PciBus::selected(std::uint16_t& reg) const {
    if (!(address_ & kEnable)) return nullptr;
    const unsigned bus = (address_ >> 16) & 0xFF;
    const unsigned slot = (address_ >> 11) & 0x1F;
    const unsigned function = (address_ >> 8) & 0x7;
    // Only bus 0, single-function devices: everything else is absent (reads all-ones).
    if (bus != 0 || function != 0) return nullptr;
    reg = static_cast<std::uint16_t>(address_ & 0xFC);
    return slots_[slot];
}

void PciBus::ConfigPorts::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::lock_guard lock(bus_.mutex_);
    std::fill(data.begin(), data.end(), 0xFF);
    if (offset < 4) {
        // CONFIG_ADDRESS reads back as written (firmware's PCI probe checks exactly that).
        if (offset == 0 && data.size() == 4) {
            for (int i = 0; i < 4; ++i)
                data[i] = static_cast<std::uint8_t>(bus_.address_ >> (8 * i));
        }
        return;
    }
    std::uint16_t reg = 0;
    PciDevice* dev = bus_.selected(reg);
    if (dev == nullptr) return;
    const std::uint64_t within = offset - 4;  // byte lane in CONFIG_DATA
    const std::size_t len = std::min<std::size_t>(data.size(), 4 - within);
    dev->config_read(static_cast<std::uint16_t>(reg + within), data.first(len));
}

void PciBus::ConfigPorts::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::lock_guard lock(bus_.mutex_);
    if (offset < 4) {
        // Only a dword write at 0xCF8 is CONFIG_ADDRESS; byte writes to 0xCF9 are a chipset
        // reset register on some boards, which this bus does not model.
        if (offset == 0 && data.size() == 4) {
            std::uint32_t v = 0;
            for (int i = 3; i >= 0; --i) v = (v << 8) | data[i];
            bus_.address_ = v & kAddressMask;
        }
        return;
    }
    std::uint16_t reg = 0;
    PciDevice* dev = bus_.selected(reg);
    if (dev == nullptr) return;
    const std::uint64_t within = offset - 4;
    const std::size_t len = std::min<std::size_t>(data.size(), 4 - within);
    dev->config_write(static_cast<std::uint16_t>(reg + within), data.first(len));
}

void PciBus::BarWindow::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    const std::uint64_t base = io_ ? bus_.io_.base : bus_.mmio_.base;
    if (auto hit = bus_.decode(base + offset, data.size(), io_)) {
        hit->device->bar_read(hit->bar, hit->offset, data);
        return;
    }
    std::fill(data.begin(), data.end(), 0xFF);
}

void PciBus::BarWindow::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    const std::uint64_t base = io_ ? bus_.io_.base : bus_.mmio_.base;
    if (auto hit = bus_.decode(base + offset, data.size(), io_)) {
        hit->device->bar_write(hit->bar, hit->offset, data);
    }
}

}  // namespace ukvm::pci
