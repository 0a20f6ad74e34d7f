#include "vmm/devices/virtio_blk.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vmm/kvm.hpp"

namespace ukvm {

using virtio::for_each_piece;

namespace {

constexpr std::uint64_t kHeaderBytes = sizeof(virtio_blk_outhdr);
// The largest data transfer one request may ask for: 4 GiB less a sector.
constexpr std::uint64_t kMaxTransfer = 0xFFFFFE00;

class RawImage final : public BlockBackend {
public:
    RawImage(Fd fd, std::uint64_t size) : fd_(std::move(fd)), size_(size) {}

    std::uint64_t size() const override { return size_; }

    int read(std::uint64_t offset, std::span<std::uint8_t> out) override {
        while (!out.empty()) {
            const ssize_t n =
                ::pread(fd_.get(), out.data(), out.size(), static_cast<off_t>(offset));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return errno;
            if (n == 0) return EIO;  // the image shrank under us
            out = out.subspan(static_cast<std::size_t>(n));
            offset += static_cast<std::uint64_t>(n);
        }
        return 0;
    }

    int write(std::uint64_t offset, std::span<const std::uint8_t> in) override {
        while (!in.empty()) {
            const ssize_t n = ::pwrite(fd_.get(), in.data(), in.size(), static_cast<off_t>(offset));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return n < 0 ? errno : EIO;
            in = in.subspan(static_cast<std::size_t>(n));
            offset += static_cast<std::uint64_t>(n);
        }
        return 0;
    }

    int flush() override {
        while (::fdatasync(fd_.get()) != 0) {
            if (errno != EINTR) return errno;
        }
        return 0;
    }

private:
    Fd fd_;
    std::uint64_t size_;
};

std::string quoted(const std::filesystem::path& path) {
    return "'" + path.string() + "'";
}

}  // namespace

std::unique_ptr<BlockBackend> open_raw_image(const std::filesystem::path& path, bool read_only) {
    const int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    Fd fd(::open(path.c_str(), flags));
    if (!fd.valid()) {
        const int err = errno;
        if (err == ENOENT || err == ENOTDIR) {
            throw DiskError("disk image " + quoted(path) + " does not exist");
        }
        throw DiskError("cannot open disk image " + quoted(path) +
                        (read_only ? " for reading: " : " for reading and writing: ") +
                        std::strerror(err));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw DiskError("cannot stat disk image " + quoted(path) + ": " + std::strerror(errno));
    }
    std::uint64_t size = 0;
    if (S_ISREG(st.st_mode)) {
        size = static_cast<std::uint64_t>(st.st_size);
    } else if (S_ISBLK(st.st_mode)) {
        if (::ioctl(fd.get(), BLKGETSIZE64, &size) != 0) {
            throw DiskError("cannot size block device " + quoted(path) + ": " +
                            std::strerror(errno));
        }
    } else {
        throw DiskError("disk image " + quoted(path) + " is not a regular file or block device");
    }
    // Two VMMs writing one image corrupt it; readers may share.
    if (::flock(fd.get(), (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        const int err = errno;
        if (err == EWOULDBLOCK) {
            throw DiskError("disk image " + quoted(path) + " is in use by another process");
        }
        throw DiskError("cannot lock disk image " + quoted(path) + ": " + std::strerror(err));
    }
    return std::make_unique<RawImage>(std::move(fd), size);
}

VirtioBlk::VirtioBlk(std::unique_ptr<BlockBackend> backend, VirtioMemory& memory, bool read_only,
                     std::string serial)
    : backend_(std::move(backend)),
      memory_(memory),
      read_only_(read_only),
      serial_(std::move(serial)),
      capacity_(backend_->size() / kSectorSize) {
    if (serial_.size() > VIRTIO_BLK_ID_BYTES) {
        throw DiskError("disk serial '" + serial_ + "' is longer than 20 bytes");
    }
    config_.capacity = capacity_;
    config_.seg_max = kVirtQueueMaxSize - 2;  // a chain also holds the header and status
    config_.blk_size = kSectorSize;
}

std::uint64_t VirtioBlk::device_features() const {
    std::uint64_t f = virtio::feature(VIRTIO_BLK_F_FLUSH) | virtio::feature(VIRTIO_BLK_F_SEG_MAX) |
                      virtio::feature(VIRTIO_BLK_F_BLK_SIZE);
    if (read_only_) f |= virtio::feature(VIRTIO_BLK_F_RO);
    return f;
}

std::span<const std::uint8_t> VirtioBlk::config_bytes() const {
    return {reinterpret_cast<const std::uint8_t*>(&config_), sizeof config_};
}

const char* VirtioBlk::process(std::uint16_t, VirtQueue& queue) {
    virtio::Chain chain;
    while (queue.pop(chain)) {
        const char* error = nullptr;
        const std::uint32_t written = handle(chain, error);
        if (error != nullptr) return error;
        if (!queue.push(chain.head, written)) break;
    }
    return nullptr;  // a queue error, if any, is the transport's to report
}

std::uint32_t VirtioBlk::handle(const virtio::Chain& chain, const char*& error) {
    // The status byte is the last byte the device may write (5.2.6); without one the
    // request cannot even be failed.
    if (chain.writable_bytes == 0) {
        error = "a virtio-blk request has no device-writable status byte";
        return 0;
    }
    std::uint32_t data_written = 0;
    const std::uint8_t status = execute(chain, data_written);
    std::uint64_t status_addr = 0;
    for_each_piece(chain, true, chain.writable_bytes - 1, 1,
                   [&](std::uint64_t addr, std::uint64_t) {
                       status_addr = addr;
                       return true;
                   });
    if (!memory_.write(status_addr, &status, 1)) {
        error = "a virtio-blk status byte lies outside guest RAM";
        return 0;
    }
    switch (status) {
        case VIRTIO_BLK_S_OK:
            ++stats_.ok;
            break;
        case VIRTIO_BLK_S_UNSUPP:
            ++stats_.unsupp;
            break;
        default:
            ++stats_.ioerr;
            break;
    }
    return data_written + 1;
}

std::uint8_t VirtioBlk::execute(const virtio::Chain& chain, std::uint32_t& data_written) {
    if (chain.readable_bytes < kHeaderBytes) return VIRTIO_BLK_S_IOERR;
    virtio_blk_outhdr header{};
    std::uint64_t got = 0;
    for_each_piece(chain, false, 0, kHeaderBytes, [&](std::uint64_t addr, std::uint64_t len) {
        if (!memory_.read(addr, reinterpret_cast<std::uint8_t*>(&header) + got, len)) return false;
        got += len;
        return true;
    });
    if (got != kHeaderBytes) return VIRTIO_BLK_S_IOERR;

    const std::uint64_t data_out = chain.readable_bytes - kHeaderBytes;
    switch (header.type) {
        case VIRTIO_BLK_T_IN:
            if (data_out != 0) return VIRTIO_BLK_S_IOERR;
            return transfer_in(chain, header.sector, data_written);
        case VIRTIO_BLK_T_OUT:
            if (chain.writable_bytes != 1) return VIRTIO_BLK_S_IOERR;
            return transfer_out(chain, header.sector);
        case VIRTIO_BLK_T_FLUSH:
            if (data_out != 0 || chain.writable_bytes != 1) return VIRTIO_BLK_S_IOERR;
            ++stats_.flushes;
            return backend_->flush() == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
        case VIRTIO_BLK_T_GET_ID:
            if (data_out != 0) return VIRTIO_BLK_S_IOERR;
            return get_id(chain, data_written);
        default:
            return VIRTIO_BLK_S_UNSUPP;
    }
}

std::uint8_t VirtioBlk::transfer_in(const virtio::Chain& chain, std::uint64_t sector,
                                    std::uint32_t& data_written) {
    const std::uint64_t len = chain.writable_bytes - 1;
    // The used length the driver gets back is 32 bits (buffers may overlap, so a chain
    // can claim more than guest RAM).
    if (len > kMaxTransfer || len % kSectorSize != 0) return VIRTIO_BLK_S_IOERR;
    if (sector > capacity_ || len / kSectorSize > capacity_ - sector) return VIRTIO_BLK_S_IOERR;
    std::uint64_t offset = sector * kSectorSize;
    int err = 0;
    for_each_piece(chain, true, 0, len, [&](std::uint64_t addr, std::uint64_t n) {
        std::uint8_t* host = memory_.host(addr, n);
        err = host == nullptr ? EFAULT : backend_->read(offset, {host, n});
        if (err != 0) return false;
        offset += n;
        data_written += static_cast<std::uint32_t>(n);
        return true;
    });
    return err == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
}

std::uint8_t VirtioBlk::transfer_out(const virtio::Chain& chain, std::uint64_t sector) {
    const std::uint64_t len = chain.readable_bytes - kHeaderBytes;
    if (read_only_) return VIRTIO_BLK_S_IOERR;
    if (len > kMaxTransfer || len % kSectorSize != 0) return VIRTIO_BLK_S_IOERR;
    if (sector > capacity_ || len / kSectorSize > capacity_ - sector) return VIRTIO_BLK_S_IOERR;
    std::uint64_t offset = sector * kSectorSize;
    int err = 0;
    for_each_piece(chain, false, kHeaderBytes, len, [&](std::uint64_t addr, std::uint64_t n) {
        const std::uint8_t* host = memory_.host(addr, n);
        err = host == nullptr ? EFAULT : backend_->write(offset, {host, n});
        if (err != 0) return false;
        offset += n;
        return true;
    });
    return err == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
}

std::uint8_t VirtioBlk::get_id(const virtio::Chain& chain, std::uint32_t& data_written) {
    // The ID is 20 bytes, NUL-padded (no terminator when the serial uses all 20).
    if (chain.writable_bytes - 1 < VIRTIO_BLK_ID_BYTES) return VIRTIO_BLK_S_IOERR;
    std::uint8_t id[VIRTIO_BLK_ID_BYTES] = {};
    std::memcpy(id, serial_.data(), serial_.size());
    bool ok = true;
    for_each_piece(chain, true, 0, VIRTIO_BLK_ID_BYTES, [&](std::uint64_t addr, std::uint64_t n) {
        ok = memory_.write(addr, id + data_written, n);
        if (ok) data_written += static_cast<std::uint32_t>(n);
        return ok;
    });
    return ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
}

}  // namespace ukvm
