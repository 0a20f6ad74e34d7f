#include "vmm/devices/virtio_console.hpp"

#include <algorithm>
#include <vector>

#include "vmm/console.hpp"

namespace ukvm {

VirtioConsole::VirtioConsole(VirtioMemory& memory, ConsoleSink& output)
    : memory_(memory), output_(output) {}

std::span<const std::uint8_t> VirtioConsole::config_bytes() const {
    return {reinterpret_cast<const std::uint8_t*>(&config_), sizeof config_};
}

void VirtioConsole::activate(std::uint64_t) {
    active_.store(true, std::memory_order_release);
}

void VirtioConsole::reset() {
    active_.store(false, std::memory_order_release);
    std::lock_guard lock(mutex_);
    pending_.clear();
}

void VirtioConsole::queue_input(std::span<const std::uint8_t> bytes) {
    std::lock_guard lock(mutex_);
    const std::size_t room = kMaxPendingInput - std::min(kMaxPendingInput, pending_.size());
    const std::size_t taken = std::min(room, bytes.size());
    pending_.insert(pending_.end(), bytes.begin(), bytes.begin() + static_cast<long>(taken));
    stats_.dropped += bytes.size() - taken;
}

VirtioConsole::Stats VirtioConsole::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

const char* VirtioConsole::process(std::uint16_t index, VirtQueue& queue) {
    return index == kReceiveQueue ? receive(queue) : transmit(queue);
}

// Fills receive buffers (device-writable only) with pending input, one chain at a time.
const char* VirtioConsole::receive(VirtQueue& queue) {
    std::lock_guard lock(mutex_);
    virtio::Chain chain;
    while (!pending_.empty() && queue.pop(chain)) {
        if (chain.readable != 0 || chain.writable_bytes == 0)
            return "a virtio-console receive buffer is not (only) device-writable";
        std::uint32_t written = 0;
        for (std::uint16_t i = 0; i < chain.count && !pending_.empty(); ++i) {
            const virtio::Segment& s = chain.segments[i];
            const std::size_t n = std::min<std::size_t>(s.len, pending_.size());
            if (n == 0) continue;
            std::uint8_t* host = memory_.host(s.addr, n);
            if (host == nullptr) return "a virtio-console receive buffer lies outside guest RAM";
            std::copy_n(pending_.begin(), n, host);
            pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(n));
            written += static_cast<std::uint32_t>(n);
        }
        stats_.received += written;
        if (!queue.push(chain.head, written)) break;
    }
    return nullptr;
}

// Writes every transmit buffer (device-readable only) to the console output.
const char* VirtioConsole::transmit(VirtQueue& queue) {
    virtio::Chain chain;
    while (queue.pop(chain)) {
        if (chain.readable != chain.count)
            return "a virtio-console transmit buffer is device-writable";
        for (std::uint16_t i = 0; i < chain.count; ++i) {
            const virtio::Segment& s = chain.segments[i];
            if (s.len == 0) continue;
            const std::uint8_t* host = memory_.host(s.addr, s.len);
            if (host == nullptr) return "a virtio-console transmit buffer lies outside guest RAM";
            output_.write({host, s.len});
        }
        {
            std::lock_guard lock(mutex_);
            stats_.transmitted += chain.readable_bytes;
        }
        if (!queue.push(chain.head, 0)) break;
    }
    return nullptr;
}

}  // namespace ukvm
