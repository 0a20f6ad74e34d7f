// PCI bus 0 behind a host bridge: configuration mechanism #1 (address at 0xCF8, data at
// 0xCFC-0xCFF) and the decoding of memory and I/O BARs.
//
// The bus owns two Devices for the VMM's address-range buses: config_ports() for
// 0xCF8-0xCFF and bar_window() for the whole PCI MMIO window. BARs move whenever the guest
// reprograms them, so rather than re-registering ranges on the VMM's bus the window looks
// up the BAR that currently decodes an address.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>

#include "vmm/bus.hpp"
#include "vmm/pci/config_space.hpp"

namespace ukvm::pci {

inline constexpr std::uint16_t kConfigAddressPort = 0xCF8;
inline constexpr std::uint16_t kConfigPortsLength = 8;  // 0xCF8-0xCFF
inline constexpr int kSlots = 32;

// One function on bus 0.
class PciDevice {
public:
    virtual ~PciDevice() = default;
    virtual ConfigSpace& config() = 0;

    // Config accesses; the defaults go straight to config(). offset + size <= 256.
    virtual void config_read(std::uint16_t offset, std::span<std::uint8_t> data) {
        config().read(offset, data);
    }
    virtual void config_write(std::uint16_t offset, std::span<const std::uint8_t> data) {
        if (config().write(offset, data)) decode_changed();
    }
    // The command register or a BAR changed: where the function decodes may have moved.
    virtual void decode_changed() {}

    // An access inside BAR `bar`, offset relative to its base.
    virtual void bar_read(int bar, std::uint64_t offset, std::span<std::uint8_t> data) = 0;
    virtual void bar_write(int bar, std::uint64_t offset, std::span<const std::uint8_t> data) = 0;
};

// The i440FX host bridge's identity, which firmware and guests recognize; nothing behind it.
class HostBridge : public PciDevice {
public:
    HostBridge();
    ConfigSpace& config() override { return config_; }
    void bar_read(int, std::uint64_t, std::span<std::uint8_t> data) override;
    void bar_write(int, std::uint64_t, std::span<const std::uint8_t>) override {}

private:
    ConfigSpace config_;
};

struct Window {
    std::uint64_t base;
    std::uint64_t size;
};

// Guest-made mistakes never throw; a VMM wiring mistake (slot taken, BARs do not fit) does.
class PciError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class PciBus {
public:
    // mmio: the guest-physical window BARs are placed in and decoded from; io: the port range
    // for I/O BARs.
    PciBus(Window mmio, Window io);

    // Puts a device in a slot (slot 0 holds the host bridge). The device must outlive the bus.
    void attach(int slot, PciDevice& device);
    // The next free slot, or throws.
    int free_slot() const;

    // Assigns every BAR an address (naturally aligned, in slot order) and enables decoding,
    // as firmware does on a PC. A guest may move them afterwards.
    void place_bars();

    Device& config_ports() { return config_ports_; }
    Device& bar_window() { return bar_window_; }  // for the MMIO bus, at mmio_window()
    Device& io_window() { return io_window_; }    // for the port bus, at io_window_range()
    const Window& mmio_window() const { return mmio_; }
    const Window& io_window_range() const { return io_; }

    // The function decoding a guest-physical address (or port when io), if any.
    struct Hit {
        PciDevice* device;
        int bar;
        std::uint64_t offset;
    };
    std::optional<Hit> decode(std::uint64_t addr, std::size_t len, bool io) const;

private:
    class ConfigPorts : public Device {
    public:
        explicit ConfigPorts(PciBus& bus) : bus_(bus) {}
        void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
        void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

    private:
        PciBus& bus_;
    };
    class BarWindow : public Device {
    public:
        BarWindow(PciBus& bus, bool io) : bus_(bus), io_(io) {}
        void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
        void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

    private:
        PciBus& bus_;
        bool io_;
    };

    // The device CONFIG_ADDRESS selects, and the register offset, or nullptr.
    PciDevice* selected(std::uint16_t& reg) const;

    Window mmio_;
    Window io_;
    HostBridge bridge_;
    std::array<PciDevice*, kSlots> slots_{};
    std::uint32_t address_ = 0;  // CONFIG_ADDRESS
    ConfigPorts config_ports_{*this};
    BarWindow bar_window_{*this, false};
    BarWindow io_window_{*this, true};
    // The port bus and the MMIO bus lock separately; this orders config changes against
    // BAR decoding.
    mutable std::recursive_mutex mutex_;
};

}  // namespace ukvm::pci
