// Fuzzes the device side of the split virtqueue: the input chooses the queue size and where
// the three rings lie, and fills guest RAM; the device pops and returns every chain it can.
// Beyond "no crash, no out-of-bounds access", each chain it accepts is checked against the
// rules it promises (in RAM, readable before writable, no longer than the queue).
//
// Input: [size_log2][desc:le16][avail:le16][used:le16][chain_limit] then RAM contents.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tests/fuzz/byte_memory.hpp"
#include "ukvm/virtio/virtqueue.h"

namespace {
constexpr std::size_t kParams = 8;
constexpr std::size_t kRam = 0x10000;

std::uint16_t le16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

void check(bool ok) {
    if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < kParams) return 0;
    ukvm::testing::ByteMemory mem(kRam);
    std::memcpy(mem.at(0), data + kParams, std::min(size - kParams, kRam));

    ukvm::VirtQueue queue(mem);
    const std::uint32_t qsize = 1u << (data[0] % 10);  // 1..512: 512 is above the maximum
    if (data[7] != 0) queue.set_chain_limit(data[7]);
    if (queue.enable(qsize, le16(data + 1), le16(data + 3), le16(data + 5)) !=
        ukvm::virtio::QueueError::kNone) {
        check(!queue.ready());
        return 0;
    }
    ukvm::virtio::Chain chain;
    for (std::uint32_t i = 0; i < 2 * qsize + 2; ++i) {
        if (!queue.pop(chain)) break;
        check(chain.count >= 1 && chain.count <= qsize && chain.readable <= chain.count);
        std::uint64_t readable = 0, writable = 0;
        for (std::uint16_t s = 0; s < chain.count; ++s) {
            const auto& seg = chain.segments[s];
            check(mem.contains(seg.addr, seg.len));
            check(seg.writable == (s >= chain.readable));
            (seg.writable ? writable : readable) += seg.len;
        }
        check(readable == chain.readable_bytes && writable == chain.writable_bytes);
        if (!queue.push(chain.head, static_cast<std::uint32_t>(writable))) break;
        queue.wants_interrupt();
    }
    return 0;
}
