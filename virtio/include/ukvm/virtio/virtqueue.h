// The split virtqueue (virtio 1.x, 2.7), both sides.
//
// DeviceQueue is the VMM's side: it reads the driver's rings through a MemoryAccessor, one
// copy of each field, and refuses anything malformed with a sticky QueueError (the transport
// then sets DEVICE_NEEDS_RESET). Nothing a driver writes can make it read or write outside
// guest RAM, loop, or run longer than the queue.
//
// DriverQueue is the guest's side: it owns its rings in its own memory and hands the device
// their physical addresses.
//
// Freestanding: no exceptions, no library; see virtio.h.
#pragma once

#include "ukvm/virtio/virtio.h"

namespace ukvm::virtio {

// Why a queue stopped. Every value but kNone is the driver's fault.
enum class QueueError : uint8_t {
    kNone = 0,
    kBadSize,           // not a power of two, zero, or above the device's maximum
    kMisaligned,        // a ring part breaks the alignment of 2.7
    kRingOutOfRange,    // a ring part is not entirely guest RAM
    kAvailIndex,        // avail->idx ran more than a queue's worth ahead of the device
    kHeadOutOfRange,    // the available ring names a descriptor beyond the table
    kNextOutOfRange,    // a descriptor's next is beyond the table
    kBufferOutOfRange,  // a buffer is not entirely guest RAM (or its range wraps)
    kLoop,              // a chain visits a descriptor twice
    kChainTooLong,      // a chain has more descriptors than the device accepts
    kWrongDirection,    // a device-readable descriptor after a device-writable one
    kIndirect,          // VRING_DESC_F_INDIRECT, which the device does not offer
    kRingAccess,        // the accessor refused a ring access (RAM changed under the queue)
};

inline constexpr const char* to_string(QueueError e) {
    switch (e) {
        case QueueError::kNone:
            return "no error";
        case QueueError::kBadSize:
            return "queue size is not a power of two within the device's maximum";
        case QueueError::kMisaligned:
            return "a ring is misaligned";
        case QueueError::kRingOutOfRange:
            return "a ring lies outside guest RAM";
        case QueueError::kAvailIndex:
            return "the available index ran more than a queue ahead";
        case QueueError::kHeadOutOfRange:
            return "the available ring names a descriptor beyond the table";
        case QueueError::kNextOutOfRange:
            return "a descriptor's next index is beyond the table";
        case QueueError::kBufferOutOfRange:
            return "a buffer lies outside guest RAM";
        case QueueError::kLoop:
            return "a descriptor chain loops";
        case QueueError::kChainTooLong:
            return "a descriptor chain is longer than the device accepts";
        case QueueError::kWrongDirection:
            return "a device-readable descriptor follows a device-writable one";
        case QueueError::kIndirect:
            return "an indirect descriptor, which was not negotiated";
        case QueueError::kRingAccess:
            return "a ring access failed";
    }
    return "unknown queue error";
}

// One buffer of a chain, as validated: [addr, addr + len) is guest RAM.
struct Segment {
    uint64_t addr;
    uint32_t len;
    bool writable;  // device-writable (VRING_DESC_F_WRITE)
};

// One available descriptor chain: segments[0, readable) are device-readable, the rest
// device-writable. `segments` points into the queue and is valid until the next pop.
struct Chain {
    uint16_t head = 0;
    uint16_t count = 0;
    uint16_t readable = 0;
    const Segment* segments = nullptr;
    uint64_t readable_bytes = 0;
    uint64_t writable_bytes = 0;
};

// Calls f(address, length) for each piece of [from, from + len) of a chain's readable
// (writable == false) or writable stream, in order; stops early when f returns false.
// True when f took all len bytes (the stream held them).
template <typename F>
bool for_each_piece(const Chain& chain, bool writable, uint64_t from, uint64_t len, F&& f) {
    const uint16_t first = writable ? chain.readable : 0;
    const uint16_t last = writable ? chain.count : chain.readable;
    uint64_t pos = 0;  // stream offset of segment i
    for (uint16_t i = first; i < last && len > 0; ++i) {
        const Segment& s = chain.segments[i];
        const uint64_t end = pos + s.len;
        if (from < end) {
            const uint64_t skip = from - pos;
            const uint64_t take = s.len - skip < len ? s.len - skip : len;
            if (!f(s.addr + skip, take)) return false;
            from += take;
            len -= take;
        }
        pos = end;
    }
    return len == 0;
}

// The device side of one split virtqueue of at most MaxSize entries. Not thread-safe: one
// thread processes a queue at a time (the transport's lock).
template <MemoryAccessor M, uint16_t MaxSize = 256>
class DeviceQueue {
    static_assert(valid_queue_size(MaxSize));

public:
    explicit DeviceQueue(M& mem) : mem_(mem) {}

    static constexpr uint16_t max_size() { return MaxSize; }

    // Checks the layout the driver programmed and starts the queue at index 0. On failure
    // the queue stays disabled and error() says why.
    QueueError enable(uint32_t size, uint64_t desc, uint64_t avail, uint64_t used) {
        reset();
        QueueError e = check_layout(size, desc, avail, used);
        if (e != QueueError::kNone) return fail(e);
        size_ = static_cast<uint16_t>(size);
        desc_ = desc;
        avail_ = avail;
        used_ = used;
        enabled_ = true;
        return QueueError::kNone;
    }

    void reset() {
        enabled_ = false;
        error_ = QueueError::kNone;
        size_ = 0;
        last_avail_ = 0;
        used_idx_ = 0;
        desc_ = avail_ = used_ = 0;
    }

    // A device may accept fewer descriptors per chain than the queue holds (kept across
    // reset). A chain can only outgrow the queue itself by revisiting a descriptor: kLoop.
    void set_chain_limit(uint16_t n) { chain_limit_ = n; }

    bool enabled() const { return enabled_; }
    QueueError error() const { return error_; }
    uint16_t size() const { return size_; }
    // Usable: enabled and not stopped by an error.
    bool ready() const { return enabled_ && error_ == QueueError::kNone; }

    // The next available chain, validated. False when none is available or the queue
    // is not ready; error() tells the two apart. A chain that fails validation is not
    // consumed: the queue stops with the error, and stays stopped until reset.
    bool pop(Chain& chain) {
        if (!ready()) return false;
        uint16_t avail_idx;
        if (!mem_.read(avail_ + 2, &avail_idx, sizeof avail_idx)) {
            return stop(QueueError::kRingAccess);
        }
        if (avail_idx == last_avail_) return false;
        if (static_cast<uint16_t>(avail_idx - last_avail_) > size_) {
            return stop(QueueError::kAvailIndex);
        }
        // The ring entries and descriptors were written before avail->idx.
        __atomic_thread_fence(__ATOMIC_ACQUIRE);

        uint16_t head;
        if (!mem_.read(avail_ + 4 + uint64_t{2} * (last_avail_ % size_), &head, sizeof head)) {
            return stop(QueueError::kRingAccess);
        }
        QueueError e = walk(head, chain);
        if (e != QueueError::kNone) return stop(e);
        ++last_avail_;
        return true;
    }

    // Returns chain `head` to the driver, `written` bytes written into its writable part.
    bool push(uint16_t head, uint32_t written) {
        if (!ready()) return false;
        vring_used_elem elem{head, written};
        const uint64_t slot = used_ + 4 + uint64_t{8} * (used_idx_ % size_);
        if (!mem_.write(slot, &elem, sizeof elem)) return stop(QueueError::kRingAccess);
        ++used_idx_;
        // The element must be visible before the index that publishes it.
        __atomic_thread_fence(__ATOMIC_RELEASE);
        if (!mem_.write(used_ + 2, &used_idx_, sizeof used_idx_)) {
            return stop(QueueError::kRingAccess);
        }
        return true;
    }

    // Whether the driver wants an interrupt for what was just pushed
    // (VRING_AVAIL_F_NO_INTERRUPT clear). Read after the used index is published, so a
    // driver that re-enables interrupts and then checks the ring cannot miss a buffer.
    bool wants_interrupt() {
        if (!ready()) return false;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        uint16_t flags;
        if (!mem_.read(avail_, &flags, sizeof flags)) return stop(QueueError::kRingAccess);
        return (flags & VRING_AVAIL_F_NO_INTERRUPT) == 0;
    }

    // How many chains the device has returned (wraps): a change means there is news.
    uint16_t used_index() const { return used_idx_; }
    // Chains popped but not yet pushed.
    uint16_t in_flight() const { return static_cast<uint16_t>(last_avail_ - used_idx_); }

private:
    QueueError fail(QueueError e) {
        if (error_ == QueueError::kNone) error_ = e;
        return e;
    }
    bool stop(QueueError e) {
        fail(e);
        return false;
    }

    QueueError check_layout(uint32_t size, uint64_t desc, uint64_t avail, uint64_t used) const {
        if (!valid_queue_size(size) || size > MaxSize) return QueueError::kBadSize;
        if (desc % kDescAlign != 0 || avail % kAvailAlign != 0 || used % kUsedAlign != 0) {
            return QueueError::kMisaligned;
        }
        if (!in_ram(desc, desc_table_bytes(size)) || !in_ram(avail, avail_ring_bytes(size)) ||
            !in_ram(used, used_ring_bytes(size))) {
            return QueueError::kRingOutOfRange;
        }
        return QueueError::kNone;
    }

    bool in_ram(uint64_t gpa, uint64_t len) const {
        if (gpa + len < gpa) return false;
        return static_cast<bool>(mem_.contains(gpa, static_cast<size_t>(len)));
    }

    // Copies chain `head` into segments_, checking every rule of 2.7.4-2.7.5 that protects
    // the device: indices in the table, buffers in RAM, no loops, no length beyond the
    // device's limit, readable before writable, no indirect tables.
    QueueError walk(uint16_t head, Chain& chain) {
        if (head >= size_) return QueueError::kHeadOutOfRange;
        for (auto& word : visited_) word = 0;
        chain = Chain{};
        chain.head = head;
        chain.segments = segments_;
        uint16_t index = head;
        for (;;) {
            if (visited_[index / 64] & (uint64_t{1} << (index % 64))) return QueueError::kLoop;
            visited_[index / 64] |= uint64_t{1} << (index % 64);
            if (chain.count == chain_limit_) return QueueError::kChainTooLong;

            vring_desc d;
            if (!mem_.read(desc_ + uint64_t{16} * index, &d, sizeof d)) {
                return QueueError::kRingAccess;
            }
            if (d.flags & VRING_DESC_F_INDIRECT) return QueueError::kIndirect;
            if (!in_ram(d.addr, d.len)) return QueueError::kBufferOutOfRange;
            const bool writable = (d.flags & VRING_DESC_F_WRITE) != 0;
            if (!writable && chain.count != chain.readable) return QueueError::kWrongDirection;

            segments_[chain.count] = Segment{d.addr, d.len, writable};
            ++chain.count;
            if (writable) {
                chain.writable_bytes += d.len;
            } else {
                ++chain.readable;
                chain.readable_bytes += d.len;
            }
            if (!(d.flags & VRING_DESC_F_NEXT)) return QueueError::kNone;
            if (d.next >= size_) return QueueError::kNextOutOfRange;
            index = d.next;
        }
    }

    M& mem_;
    bool enabled_ = false;
    QueueError error_ = QueueError::kNone;
    uint16_t size_ = 0;
    uint16_t chain_limit_ = MaxSize;
    uint16_t last_avail_ = 0;  // the next available entry the device will take
    uint16_t used_idx_ = 0;    // the device's own copy: never read back from the guest
    uint64_t desc_ = 0;
    uint64_t avail_ = 0;
    uint64_t used_ = 0;
    Segment segments_[MaxSize];
    uint64_t visited_[(MaxSize + 63) / 64];
};

// One buffer a driver offers: guest-physical address, length, direction.
struct DriverBuffer {
    uint64_t addr;
    uint32_t len;
    bool writable;  // the device writes it
};

// The driver side of one split virtqueue, in memory the driver owns. Layout in that memory:
// descriptor table at 0, available ring right after it, used ring at the next 4-byte
// boundary. Not thread-safe.
class DriverQueue {
public:
    static constexpr uint64_t avail_offset(uint16_t size) { return desc_table_bytes(size); }
    static constexpr uint64_t used_offset(uint16_t size) {
        return (avail_offset(size) + avail_ring_bytes(size) + kUsedAlign - 1) & ~(kUsedAlign - 1);
    }
    // Bytes of ring memory a queue of `size` entries needs (16-byte aligned).
    static constexpr uint64_t ring_bytes(uint16_t size) {
        return used_offset(size) + used_ring_bytes(size);
    }

    // ring: ring_bytes(size) bytes, 16-byte aligned, that the device sees at ring_phys.
    // Returns false for a size that is not a power of two up to 32768 or a misaligned ring.
    bool init(void* ring, uint64_t ring_phys, uint16_t size) {
        if (!valid_queue_size(size) || ring == nullptr ||
            reinterpret_cast<uintptr_t>(ring) % kDescAlign != 0 || ring_phys % kDescAlign != 0) {
            return false;
        }
        auto* bytes = static_cast<uint8_t*>(ring);
        for (uint64_t i = 0; i < ring_bytes(size); ++i) bytes[i] = 0;
        desc_ = reinterpret_cast<vring_desc*>(bytes);
        avail_ = reinterpret_cast<vring_avail*>(bytes + avail_offset(size));
        used_ = reinterpret_cast<vring_used*>(bytes + used_offset(size));
        phys_ = ring_phys;
        size_ = size;
        // Free descriptors are chained through next, starting at 0.
        for (uint16_t i = 0; i + 1 < size; ++i) desc_[i].next = static_cast<uint16_t>(i + 1);
        free_head_ = 0;
        num_free_ = size;
        avail_idx_ = 0;
        last_used_ = 0;
        return true;
    }

    uint16_t size() const { return size_; }
    uint16_t free_count() const { return num_free_; }
    uint64_t desc_addr() const { return phys_; }
    uint64_t avail_addr() const { return phys_ + avail_offset(size_); }
    uint64_t used_addr() const { return phys_ + used_offset(size_); }

    // Raw views, for tests that play a misbehaving driver.
    vring_desc* descriptors() { return desc_; }
    vring_avail* avail() { return avail_; }
    vring_used* used() { return used_; }

    // Chains `count` buffers (device-readable ones first) and makes the chain available.
    // Returns its head, or -1 when fewer than `count` descriptors are free or count is 0.
    int32_t add(const DriverBuffer* bufs, uint16_t count) {
        if (count == 0 || count > num_free_) return -1;
        const uint16_t head = free_head_;
        uint16_t index = head;
        for (uint16_t i = 0; i < count; ++i) {
            vring_desc& d = desc_[index];
            d.addr = bufs[i].addr;
            d.len = bufs[i].len;
            d.flags = static_cast<uint16_t>((bufs[i].writable ? VRING_DESC_F_WRITE : 0) |
                                            (i + 1 < count ? VRING_DESC_F_NEXT : 0));
            if (i + 1 < count) index = d.next;
        }
        free_head_ = desc_[index].next;
        num_free_ = static_cast<uint16_t>(num_free_ - count);
        avail_->ring[avail_idx_ % size_] = head;
        ++avail_idx_;
        return head;
    }

    // Publishes everything added so far. Returns whether the device asked to be notified
    // (VRING_USED_F_NO_NOTIFY clear).
    bool publish() {
        __atomic_store_n(&avail_->idx, avail_idx_, __ATOMIC_RELEASE);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return (__atomic_load_n(&used_->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY) == 0;
    }

    // Asks the device not to interrupt (a polling driver), or to interrupt again.
    void set_interrupts(bool on) {
        __atomic_store_n(&avail_->flags, static_cast<uint16_t>(on ? 0 : VRING_AVAIL_F_NO_INTERRUPT),
                         __ATOMIC_RELAXED);
    }

    enum class UsedResult : uint8_t { kNone, kTaken, kBadDevice };

    // Takes one used chain, frees its descriptors and reports its head and the bytes the
    // device wrote. kBadDevice: the device returned a descriptor that is not in flight.
    UsedResult take_used(uint16_t& head, uint32_t& written) {
        const uint16_t used_idx = __atomic_load_n(&used_->idx, __ATOMIC_ACQUIRE);
        if (used_idx == last_used_) return UsedResult::kNone;
        const vring_used_elem& elem = used_->ring[last_used_ % size_];
        if (elem.id >= size_) return UsedResult::kBadDevice;
        head = static_cast<uint16_t>(elem.id);
        written = elem.len;
        // Walk the chain to its tail (bounded: the device cannot make the driver loop).
        uint16_t tail = head;
        uint16_t n = 1;
        while ((desc_[tail].flags & VRING_DESC_F_NEXT) && n < size_) {
            tail = desc_[tail].next;
            ++n;
        }
        if (n + num_free_ > size_) return UsedResult::kBadDevice;
        desc_[tail].next = free_head_;
        desc_[tail].flags = 0;
        free_head_ = head;
        num_free_ = static_cast<uint16_t>(num_free_ + n);
        ++last_used_;
        return UsedResult::kTaken;
    }

private:
    vring_desc* desc_ = nullptr;
    vring_avail* avail_ = nullptr;
    vring_used* used_ = nullptr;
    uint64_t phys_ = 0;
    uint16_t size_ = 0;
    uint16_t free_head_ = 0;
    uint16_t num_free_ = 0;
    uint16_t avail_idx_ = 0;  // the driver's own copy, published by publish()
    uint16_t last_used_ = 0;
};

}  // namespace ukvm::virtio
