#include "vmm/devices/virtio_net.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

namespace ukvm {

using virtio::for_each_piece;

namespace {

using virtio::kEthHeaderBytes;
using virtio::kEthMaxFrameBytes;

// What one receive buffer from the backend can hold: a tap or socket may hand over a
// frame far larger than an Ethernet frame (a host that raised the MTU, GSO); reading it
// whole tells it apart from a legal one, and it is dropped.
constexpr std::size_t kRxBufferBytes = 65536 + 64;
// Frames received per process() call before other work gets a turn; the backend's fd stays
// readable, so the I/O thread comes back.
constexpr unsigned kRxBudget = 64;
// Drops logged per device before it goes quiet (a hostile peer must not flood the log).
constexpr std::uint64_t kDropLogLimit = 16;

}  // namespace

VirtioNet::VirtioNet(std::unique_ptr<NetBackend> backend, VirtioMemory& memory,
                     const MacAddress& mac)
    : backend_(std::move(backend)),
      memory_(memory),
      rx_frame_(kRxBufferBytes),
      tx_frame_(kHeaderBytes + virtio::kEthMaxFrameBytes) {
    std::copy(mac.begin(), mac.end(), config_.mac);
    config_.status = virtio::kNetStatusLinkUp;
    config_.max_virtqueue_pairs = 1;
    config_.mtu = virtio::kEthMtu;
    config_.speed = 0xFFFFFFFF;  // unknown
    config_.duplex = 0xFF;       // unknown
}

std::uint64_t VirtioNet::device_features() const {
    return virtio::feature(virtio::kNetFMac) | virtio::feature(virtio::kNetFStatus) |
           virtio::feature(virtio::kNetFMtu);
}

std::span<const std::uint8_t> VirtioNet::config_bytes() const {
    return {reinterpret_cast<const std::uint8_t*>(&config_), sizeof config_};
}

void VirtioNet::set_rx_watch(std::function<void(bool)> on_change) {
    watch_ = std::move(on_change);
    watching_ = true;
    watch(false);  // nothing is read before the driver is ready
}

void VirtioNet::watch(bool on) {
    if (on == watching_) return;
    watching_ = on;
    if (watch_) watch_(on);
}

void VirtioNet::activate(std::uint64_t) {
    // Frames that arrived while no driver was there were left in the backend; they are
    // delivered now, as a switch port that just came up would.
    watch(true);
}

void VirtioNet::reset() {
    watch(false);
    rx_staged_ = false;
    rx_len_ = 0;
}

void VirtioNet::idle(std::uint16_t index) {
    if (index == kRxQueue) watch(false);
}

const char* VirtioNet::process(std::uint16_t index, VirtQueue& queue) {
    if (index == kTxQueue) return transmit(queue);
    if (index == kRxQueue) return receive(queue);
    return nullptr;
}

void VirtioNet::note_drop(const char* what, std::size_t len) {
    if (drops_logged_ < kDropLogLimit) {
        spdlog::warn("virtio-net {}: dropped a {}-byte frame: {}{}", backend_->describe(), len,
                     what, drops_logged_ + 1 == kDropLogLimit ? " (further drops not logged)" : "");
    }
    ++drops_logged_;
}

const char* VirtioNet::transmit(VirtQueue& queue) {
    virtio::Chain chain;
    while (queue.pop(chain)) {
        // 5.1.6.2: a transmit chain is the header and the frame, all device-readable.
        if (chain.writable_bytes != 0 || chain.readable != chain.count) {
            return "a virtio-net transmit chain has a device-writable buffer";
        }
        if (chain.readable_bytes < kHeaderBytes) {
            return "a virtio-net transmit chain is shorter than its 12-byte header";
        }
        const std::uint64_t len = chain.readable_bytes - kHeaderBytes;
        if (len < kEthHeaderBytes || len > kEthMaxFrameBytes) {
            ++stats_.tx_dropped;
            note_drop(len < kEthHeaderBytes ? "transmitted frame shorter than an Ethernet header"
                                            : "transmitted frame longer than 1514 bytes",
                      static_cast<std::size_t>(std::min<std::uint64_t>(len, SIZE_MAX)));
        } else {
            std::uint64_t got = 0;
            const bool ok = for_each_piece(chain, false, 0, chain.readable_bytes,
                                           [&](std::uint64_t addr, std::uint64_t n) {
                                               if (!memory_.read(addr, tx_frame_.data() + got, n))
                                                   return false;
                                               got += n;
                                               return true;
                                           });
            if (!ok) return "a virtio-net transmit buffer lies outside guest RAM";
            virtio::NetHeader hdr;
            std::memcpy(&hdr, tx_frame_.data(), sizeof hdr);
            // No checksum or segmentation offload was offered: a header asking for one is
            // a frame the device cannot send as meant.
            if (hdr.flags != 0 || hdr.gso_type != virtio::kNetHdrGsoNone) {
                ++stats_.tx_dropped;
                note_drop("its header asks for an offload that was not offered",
                          static_cast<std::size_t>(len));
            } else {
                backend_->send({tx_frame_.data() + kHeaderBytes, static_cast<std::size_t>(len)});
                ++stats_.tx_frames;
            }
        }
        if (!queue.push(chain.head, 0)) break;
    }
    return nullptr;  // a queue error, if any, is the transport's to report
}

const char* VirtioNet::receive(VirtQueue& queue) {
    for (unsigned budget = kRxBudget;;) {
        if (!rx_staged_) {
            if (budget-- == 0) return nullptr;  // more later: the fd is still readable
            const std::optional<std::size_t> n = backend_->receive(rx_frame_);
            if (!n) {
                watch(true);  // drained: wait for the next frame
                return nullptr;
            }
            if (*n < kEthHeaderBytes || *n > kEthMaxFrameBytes) {
                ++stats_.rx_dropped;
                note_drop(*n < kEthHeaderBytes ? "received frame shorter than an Ethernet header"
                                               : "received frame longer than 1514 bytes",
                          *n);
                continue;
            }
            rx_len_ = *n;
            rx_staged_ = true;
        }
        virtio::Chain chain;
        if (!queue.pop(chain)) {
            if (queue.error() == virtio::QueueError::kNone) {
                // No buffer: leave the rest in the backend until the guest adds some.
                if (watching_) ++stats_.rx_paused;
                watch(false);
            }
            return nullptr;
        }
        // 5.1.6.3: receive buffers are device-writable only.
        if (chain.readable != 0) return "a virtio-net receive chain has a device-readable buffer";
        const std::uint32_t written = deliver(chain);
        if (written == UINT32_MAX) return "a virtio-net receive buffer lies outside guest RAM";
        rx_staged_ = false;
        if (!queue.push(chain.head, written)) return nullptr;
    }
}

std::uint32_t VirtioNet::deliver(const virtio::Chain& chain) {
    if (chain.writable_bytes < kHeaderBytes + rx_len_) {
        // The driver gave a buffer smaller than the frame (5.1.6.3.1 asks for 1526 bytes
        // without mergeable buffers): the frame is lost, the buffer returned empty.
        ++stats_.rx_dropped;
        note_drop("the guest's receive buffer is too small", rx_len_);
        return 0;
    }
    virtio::NetHeader hdr{};
    hdr.gso_type = virtio::kNetHdrGsoNone;
    hdr.num_buffers = 1;
    const std::uint8_t* header = reinterpret_cast<const std::uint8_t*>(&hdr);
    std::uint64_t done = 0;
    const std::uint64_t total = kHeaderBytes + rx_len_;
    const bool ok = for_each_piece(chain, true, 0, total, [&](std::uint64_t addr, std::uint64_t n) {
        // The piece may straddle the header and the frame.
        std::uint64_t copied = 0;
        while (copied < n) {
            const std::uint64_t at = done + copied;
            const std::uint8_t* src =
                at < kHeaderBytes ? header + at : rx_frame_.data() + (at - kHeaderBytes);
            const std::uint64_t run =
                std::min(n - copied, at < kHeaderBytes ? kHeaderBytes - at : total - at);
            if (!memory_.write(addr + copied, src, run)) return false;
            copied += run;
        }
        done += n;
        return true;
    });
    if (!ok) return UINT32_MAX;
    ++stats_.rx_frames;
    return static_cast<std::uint32_t>(total);
}

}  // namespace ukvm
