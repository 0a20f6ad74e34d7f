// One address-range bus, used for both port I/O and MMIO: devices own ranges, accesses are
// dispatched to the device whose range holds the address, with the offset into that range.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>

namespace ukvm {

// A device model reachable through a Bus.
class Device {
public:
    virtual ~Device() = default;
    // data.size() is the access width (1, 2, 4 or 8); fill data.
    virtual void read(std::uint64_t offset, std::span<std::uint8_t> data) = 0;
    virtual void write(std::uint64_t offset, std::span<const std::uint8_t> data) = 0;
};

// Registering a range that overlaps another, is empty or wraps.
class BusError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

enum class BusKind { Pio, Mmio };

class Bus {
public:
    explicit Bus(BusKind kind) : kind_(kind) {}

    // The device must outlive the bus (the Machine owns both).
    void add(std::uint64_t base, std::uint64_t length, Device& device, std::string name);

    struct Match {
        Device* device;
        std::uint64_t offset;
    };
    // The device whose range holds addr, or {nullptr, 0}.
    Match find(std::uint64_t addr) const;

    // Dispatch one access. Unmapped: reads return all-ones, writes are dropped; both logged
    // (debug for ports, a rate-limited warning for MMIO). Returns whether a device took it.
    bool read(std::uint64_t addr, std::span<std::uint8_t> data);
    bool write(std::uint64_t addr, std::span<const std::uint8_t> data);

    std::uint64_t unmapped_accesses() const { return unmapped_; }

private:
    struct Entry {
        std::uint64_t length;
        Device* device;
        std::string name;
    };
    void unmapped(const char* what, std::uint64_t addr, std::size_t size);

    BusKind kind_;
    std::map<std::uint64_t, Entry> ranges_;  // by base
    // Devices are called with this held: vCPU threads never run one device concurrently.
    std::mutex mutex_;
    std::uint64_t unmapped_ = 0;
};

}  // namespace ukvm
