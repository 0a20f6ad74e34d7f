// virtio-blk (virtio 1.x, 5.2) over a raw image file: IN, OUT, FLUSH (fdatasync) and
// GET_ID; everything else is answered VIRTIO_BLK_S_UNSUPP.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "vmm/devices/virtio_device.hpp"

namespace ukvm {

// Where the sectors live. Methods return 0 or an errno value; the file backend is the real
// one, tests and the fuzzer use memory.
class BlockBackend {
public:
    virtual ~BlockBackend() = default;
    virtual std::uint64_t size() const = 0;  // bytes
    virtual int read(std::uint64_t offset, std::span<std::uint8_t> out) = 0;
    virtual int write(std::uint64_t offset, std::span<const std::uint8_t> in) = 0;
    // Makes every completed write durable (survives the VMM being killed, or the host
    // losing power as far as the file system promises).
    virtual int flush() = 0;
};

// A disk image that cannot be used: missing, unreadable, not a regular file or block
// device, locked by another VMM. The message names the file and the reason.
class DiskError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A raw image file, opened read-write (or read-only) and locked against a second writer.
std::unique_ptr<BlockBackend> open_raw_image(const std::filesystem::path& path, bool read_only);

inline constexpr std::uint32_t kSectorSize = 512;

class VirtioBlk : public VirtioDevice {
public:
    // serial: at most VIRTIO_BLK_ID_BYTES (20) bytes, returned by GET_ID.
    VirtioBlk(std::unique_ptr<BlockBackend> backend, VirtioMemory& memory, bool read_only,
              std::string serial);

    std::uint16_t device_id() const override { return VIRTIO_ID_BLOCK; }
    std::uint8_t pci_class() const override { return 0x01; }     // mass storage
    std::uint8_t pci_subclass() const override { return 0x80; }  // other
    std::uint64_t device_features() const override;
    std::uint16_t num_queues() const override { return 1; }
    std::span<const std::uint8_t> config_bytes() const override;
    const char* process(std::uint16_t index, VirtQueue& queue) override;

    std::uint64_t capacity_sectors() const { return capacity_; }

    // Per-device counters (requests by outcome), for tests and diagnostics.
    struct Stats {
        std::uint64_t ok = 0;
        std::uint64_t ioerr = 0;
        std::uint64_t unsupp = 0;
        std::uint64_t flushes = 0;
    };
    const Stats& stats() const { return stats_; }

    // Handles one validated chain; returns the bytes written into its writable part, or
    // nullptr-equivalent failure via `error` when there is no status byte to answer with.
    std::uint32_t handle(const virtio::Chain& chain, const char*& error);

private:
    std::uint8_t execute(const virtio::Chain& chain, std::uint32_t& data_written);
    std::uint8_t transfer_in(const virtio::Chain& chain, std::uint64_t sector,
                             std::uint32_t& data_written);
    std::uint8_t transfer_out(const virtio::Chain& chain, std::uint64_t sector);
    std::uint8_t get_id(const virtio::Chain& chain, std::uint32_t& data_written);

    std::unique_ptr<BlockBackend> backend_;
    VirtioMemory& memory_;
    bool read_only_;
    std::string serial_;
    std::uint64_t capacity_;  // in 512-byte sectors
    virtio_blk_config config_{};
    Stats stats_;
};

}  // namespace ukvm
