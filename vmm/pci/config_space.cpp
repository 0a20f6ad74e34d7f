#include "vmm/pci/config_space.hpp"

#include <string>

namespace ukvm::pci {

ConfigSpace::ConfigSpace(const Identity& id) {
    put(kVendorId, id.vendor, 2);
    put(kDeviceId, id.device, 2);
    put(kRevision, id.revision, 1);
    put(kProgIf, id.prog_if, 1);
    put(kSubclass, id.subclass, 1);
    put(kClass, id.class_code, 1);
    put(kHeaderType, 0, 1);
    put(kSubsystemVendorId, id.subsystem_vendor, 2);
    put(kSubsystemId, id.subsystem, 2);
    // I/O, memory, bus master and INTx disable are the command bits a guest may set.
    put(kCommand, 0, 2, kCommandIo | kCommandMemory | kCommandBusMaster | kCommandIntxDisable);
    put(kCacheLineSize, 0, 1, 0xFF);
    put(kLatencyTimer, 0, 1, 0xFF);
    put(kInterruptLine, 0xFF, 1, 0xFF);  // "unknown / not connected" until set
}

void ConfigSpace::put(std::uint16_t offset, std::uint64_t value, int width, std::uint64_t mask) {
    for (int i = 0; i < width; ++i) {
        bytes_[offset + i] = static_cast<std::uint8_t>(value >> (8 * i));
        writable_[offset + i] = static_cast<std::uint8_t>(mask >> (8 * i));
    }
}

void ConfigSpace::add_bar(int index, std::uint64_t size, BarKind kind) {
    const int slots = kind == BarKind::Memory64 ? 2 : 1;
    const std::uint64_t min = kind == BarKind::Io ? 4 : 16;
    if (index < 0 || index + slots > kBarCount) throw ConfigSpaceError("BAR index out of range");
    if (size < min || (size & (size - 1)) != 0 ||
        (kind != BarKind::Memory64 && size > (1ull << 31)))
        throw ConfigSpaceError("BAR size must be a power of two within the BAR's type");
    for (int i = index; i < index + slots; ++i) {
        if (bars_[i].size != 0 || bars_[i].upper) throw ConfigSpaceError("BAR declared twice");
    }
    bars_[index] = Bar{size, kind, false};
    const std::uint16_t reg = kBar0 + 4 * index;
    // Type bits (read-only): I/O = 1; memory: 0 (32-bit) or 0b100 (64-bit), not prefetchable.
    const std::uint32_t type = kind == BarKind::Io ? 0x1 : kind == BarKind::Memory64 ? 0x4 : 0x0;
    const std::uint64_t mask = ~(size - 1);
    put(reg, type, 4, mask & 0xFFFFFFFFu & ~std::uint64_t{kind == BarKind::Io ? 0x3u : 0xFu});
    if (kind == BarKind::Memory64) {
        bars_[index + 1].upper = true;
        put(reg + 4, 0, 4, mask >> 32);
    }
}

std::uint8_t ConfigSpace::add_capability(std::span<const std::uint8_t> body,
                                         std::size_t writable_from) {
    if (body.size() < 2 || next_cap_ + body.size() > kConfigSize) {
        throw ConfigSpaceError("capability does not fit the config space");
    }
    const std::uint8_t at = next_cap_;
    for (std::size_t i = 0; i < body.size(); ++i) {
        bytes_[at + i] = body[i];
        writable_[at + i] = i >= writable_from ? 0xFF : 0x00;
    }
    bytes_[at + 1] = 0;  // end of list until another is appended
    if (last_cap_ == 0) {
        bytes_[kCapabilitiesPointer] = at;
        bytes_[kStatus] |= kStatusCapabilities;
    } else {
        bytes_[last_cap_ + 1] = at;
    }
    last_cap_ = at;
    // Capabilities are dword-aligned.
    next_cap_ = static_cast<std::uint8_t>((at + body.size() + 3) & ~std::size_t{3});
    return at;
}

void ConfigSpace::set_interrupt_pin(std::uint8_t line, std::uint8_t pin) {
    bytes_[kInterruptLine] = line;
    bytes_[kInterruptPin] = pin;
}

void ConfigSpace::read(std::uint16_t offset, std::span<std::uint8_t> data) const {
    for (std::size_t i = 0; i < data.size(); ++i) {
        const std::size_t at = offset + i;
        data[i] = at < kConfigSize ? bytes_[at] : 0xFF;
    }
}

bool ConfigSpace::write(std::uint16_t offset, std::span<const std::uint8_t> data) {
    bool decode_changed = false;
    for (std::size_t i = 0; i < data.size(); ++i) {
        const std::size_t at = offset + i;
        if (at >= kConfigSize) break;
        const std::uint8_t old = bytes_[at];
        bytes_[at] = static_cast<std::uint8_t>((old & ~writable_[at]) | (data[i] & writable_[at]));
        if (bytes_[at] != old && ((at >= kCommand && at < kCommand + 2) ||
                                  (at >= kBar0 && at < kBar0 + 4 * kBarCount))) {
            decode_changed = true;
        }
    }
    return decode_changed;
}

std::uint32_t ConfigSpace::read32(std::uint16_t offset) const {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | bytes_.at(offset + i);
    return v;
}

std::uint16_t ConfigSpace::command() const {
    return static_cast<std::uint16_t>(bytes_[kCommand] | (bytes_[kCommand + 1] << 8));
}

std::uint64_t ConfigSpace::bar_address(int index) const {
    const Bar& bar = bars_.at(index);
    if (bar.size == 0) return 0;
    const std::uint16_t reg = kBar0 + 4 * index;
    std::uint64_t low = read32(reg);
    if (bar.kind == BarKind::Io) return low & ~std::uint64_t{0x3};
    low &= ~std::uint64_t{0xF};
    if (bar.kind == BarKind::Memory64) return low | (std::uint64_t{read32(reg + 4)} << 32);
    return low;
}

void ConfigSpace::set_bar_address(int index, std::uint64_t address) {
    const Bar& bar = bars_.at(index);
    if (bar.size == 0) throw ConfigSpaceError("BAR " + std::to_string(index) + " is not declared");
    const std::uint16_t reg = kBar0 + 4 * index;
    const std::uint32_t low = static_cast<std::uint32_t>(address & ~(bar.size - 1));
    const std::uint32_t type_mask = bar.kind == BarKind::Io ? 0x3 : 0xF;
    put(reg, (low & ~type_mask) | (bytes_[reg] & type_mask), 4, read_mask(reg));
    if (bar.kind == BarKind::Memory64) put(reg + 4, address >> 32, 4, read_mask(reg + 4));
}

void ConfigSpace::set_command(std::uint16_t bits) {
    bytes_[kCommand] = static_cast<std::uint8_t>(bits);
    bytes_[kCommand + 1] = static_cast<std::uint8_t>(bits >> 8);
}

std::uint64_t ConfigSpace::read_mask(std::uint16_t offset) const {
    std::uint64_t m = 0;
    for (int i = 3; i >= 0; --i) m = (m << 8) | writable_[offset + i];
    return m;
}

}  // namespace ukvm::pci
