// One PCI function's 256-byte configuration space (type-0 header, capability list, BARs).
//
// Every byte has a write mask: a write changes only the masked bits, everything else is
// read-only. That one rule gives BAR sizing for free (a BAR's low address bits are not
// writable, so writing all-ones reads back the size mask) and keeps a guest from
// changing IDs, class codes or capabilities.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <stdexcept>

namespace ukvm::pci {

inline constexpr std::size_t kConfigSize = 256;
inline constexpr int kBarCount = 6;

// Standard header offsets (PCI Local Bus 3.0, 6.1).
inline constexpr std::uint16_t kVendorId = 0x00;
inline constexpr std::uint16_t kDeviceId = 0x02;
inline constexpr std::uint16_t kCommand = 0x04;
inline constexpr std::uint16_t kStatus = 0x06;
inline constexpr std::uint16_t kRevision = 0x08;
inline constexpr std::uint16_t kProgIf = 0x09;
inline constexpr std::uint16_t kSubclass = 0x0A;
inline constexpr std::uint16_t kClass = 0x0B;
inline constexpr std::uint16_t kCacheLineSize = 0x0C;
inline constexpr std::uint16_t kLatencyTimer = 0x0D;
inline constexpr std::uint16_t kHeaderType = 0x0E;
inline constexpr std::uint16_t kBar0 = 0x10;
inline constexpr std::uint16_t kSubsystemVendorId = 0x2C;
inline constexpr std::uint16_t kSubsystemId = 0x2E;
inline constexpr std::uint16_t kCapabilitiesPointer = 0x34;
inline constexpr std::uint16_t kInterruptLine = 0x3C;
inline constexpr std::uint16_t kInterruptPin = 0x3D;

inline constexpr std::uint16_t kCommandIo = 1u << 0;
inline constexpr std::uint16_t kCommandMemory = 1u << 1;
inline constexpr std::uint16_t kCommandBusMaster = 1u << 2;
inline constexpr std::uint16_t kCommandIntxDisable = 1u << 10;
inline constexpr std::uint16_t kStatusCapabilities = 1u << 4;

inline constexpr std::uint8_t kCapVendor = 0x09;  // vendor-specific capability ID
inline constexpr std::uint8_t kFirstCapability = 0x40;

enum class BarKind { Io, Memory32, Memory64 };

// A mistake in how the VMM builds a config space (not reachable by a guest).
class ConfigSpaceError : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

struct Identity {
    std::uint16_t vendor;
    std::uint16_t device;
    std::uint8_t class_code;
    std::uint8_t subclass;
    std::uint8_t prog_if = 0;
    std::uint8_t revision = 0;
    std::uint16_t subsystem_vendor = 0;
    std::uint16_t subsystem = 0;
};

class ConfigSpace {
public:
    explicit ConfigSpace(const Identity& id);

    // Declares BAR `index` (a Memory64 BAR also takes index + 1). size: a power of two,
    // at least 16 bytes for memory and 4 for I/O (PCI 3.0, 6.2.5.1).
    void add_bar(int index, std::uint64_t size, BarKind kind);
    // Appends a capability: body[0] is its ID, body[1] (next) is filled in; the rest is
    // read-only. Returns its offset. writable_from: the first byte of body the guest may
    // write (body.size() for none).
    std::uint8_t add_capability(std::span<const std::uint8_t> body,
                                std::size_t writable_from = SIZE_MAX);
    void set_interrupt_pin(std::uint8_t line, std::uint8_t pin);

    // Accesses as the guest makes them; offset + data.size() must stay within 256.
    void read(std::uint16_t offset, std::span<std::uint8_t> data) const;
    // Returns whether the write touched the command register or a BAR, which changes
    // where the function decodes.
    bool write(std::uint16_t offset, std::span<const std::uint8_t> data);

    std::uint32_t read32(std::uint16_t offset) const;
    std::uint16_t command() const;
    bool memory_enabled() const { return (command() & kCommandMemory) != 0; }
    bool io_enabled() const { return (command() & kCommandIo) != 0; }

    // BAR `index` as declared and as programmed.
    bool has_bar(int index) const { return index >= 0 && index < kBarCount && bars_[index].size; }
    std::uint64_t bar_size(int index) const { return bars_.at(index).size; }
    BarKind bar_kind(int index) const { return bars_.at(index).kind; }
    std::uint64_t bar_address(int index) const;
    // Placement by the VMM (firmware's job on a PC). Low bits beyond the size are dropped.
    void set_bar_address(int index, std::uint64_t address);
    void set_command(std::uint16_t bits);

    // Raw bytes, for a device that keeps live values in its capabilities.
    std::span<std::uint8_t> bytes() { return bytes_; }

private:
    struct Bar {
        std::uint64_t size = 0;
        BarKind kind = BarKind::Memory32;
        bool upper = false;  // the high dword of the Memory64 BAR below it
    };
    void put(std::uint16_t offset, std::uint64_t value, int width, std::uint64_t mask = 0);
    std::uint64_t read_mask(std::uint16_t offset) const;  // a dword's write mask

    std::array<std::uint8_t, kConfigSize> bytes_{};
    std::array<std::uint8_t, kConfigSize> writable_{};
    std::array<Bar, kBarCount> bars_{};
    std::uint8_t next_cap_ = kFirstCapability;
    std::uint8_t last_cap_ = 0;
};

}  // namespace ukvm::pci
