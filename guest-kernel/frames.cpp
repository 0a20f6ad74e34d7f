#include "frames.hpp"

#include "clock.hpp"
#include "lib.hpp"

namespace kernel::frames {

namespace {

struct Range {
    uint64_t next;  // bump pointer
    uint64_t end;
};

constexpr int kMaxRanges = 32;
Range g_ranges[kMaxRanges];
int g_nranges = 0;
uint64_t g_free_list = 0;  // physical address of the first free frame; links in the frames
uint64_t g_free_count = 0;
bool g_assume_zeroed = false;

struct Quarantined {
    uint64_t frame;  // 0: a free entry
    uint64_t until_ns;
};
Quarantined g_quarantine[kQuarantined];
int g_nquarantined = 0;

// Frees the quarantined frames whose time is up.
void release_quarantined() {
    uint64_t now = clock::uptime_ns();
    for (Quarantined& q : g_quarantine) {
        if (!q.frame || q.until_ns > now) continue;
        free(q.frame);
        q.frame = 0;
        --g_nquarantined;
    }
}

}  // namespace

void add_range(uint64_t start, uint64_t end) {
    start = align_up(start, kPageSize);
    end = align_down(end < kLimit ? end : kLimit, kPageSize);
    if (start < 0x100000) start = 0x100000;  // leave the BIOS area alone
    if (start >= end || g_nranges == kMaxRanges) return;
    g_ranges[g_nranges++] = {start, end};
}

void reserve(uint64_t start, uint64_t end) {
    start = align_down(start, kPageSize);
    end = align_up(end, kPageSize);
    for (int i = 0; i < g_nranges; ++i) {
        Range& r = g_ranges[i];
        if (end <= r.next || start >= r.end) continue;
        if (start <= r.next) {
            r.next = end < r.end ? end : r.end;
        } else if (end >= r.end) {
            r.end = start;
        } else if (g_nranges < kMaxRanges) {
            g_ranges[g_nranges++] = {end, r.end};
            r.end = start;
        } else {
            r.end = start;  // out of slots: lose the tail rather than hand out reserved RAM
        }
    }
}

void free_later(uint64_t frame) {
    Quarantined* slot = nullptr;
    for (Quarantined& q : g_quarantine)
        if (!q.frame || !slot || (slot->frame && q.until_ns < slot->until_ns)) slot = &q;
    if (slot->frame) {
        free(slot->frame);  // full: the oldest goes now
        --g_nquarantined;
    }
    *slot = {frame, clock::uptime_ns() + kQuarantineNs};
    ++g_nquarantined;
}

uint64_t alloc() {
    if (g_nquarantined) release_quarantined();
    uint64_t frame = 0;
    if (g_free_list) {
        frame = g_free_list;
        g_free_list = *static_cast<uint64_t*>(to_virtual(frame));
        --g_free_count;
    } else {
        for (int i = 0; i < g_nranges && !frame; ++i) {
            if (g_ranges[i].next < g_ranges[i].end) {
                frame = g_ranges[i].next;
                g_ranges[i].next += kPageSize;
            }
        }
        if (!frame) return 0;
        if (g_assume_zeroed) return frame;
    }
    memset(to_virtual(frame), 0, kPageSize);
    return frame;
}

uint64_t alloc_contiguous(uint64_t n) {
    for (int i = 0; i < g_nranges; ++i) {
        Range& r = g_ranges[i];
        if (n == 0 || (r.end - r.next) / kPageSize < n) continue;
        uint64_t first = r.next;
        r.next += n * kPageSize;
        if (!g_assume_zeroed) memset(to_virtual(first), 0, n * kPageSize);
        return first;
    }
    return 0;
}

void free(uint64_t frame) {
    *static_cast<uint64_t*>(to_virtual(frame)) = g_free_list;
    g_free_list = frame;
    ++g_free_count;
}

void assume_zeroed(bool on) {
    g_assume_zeroed = on;
}

uint64_t free_bytes() {
    uint64_t n = g_free_count;
    for (int i = 0; i < g_nranges; ++i) n += (g_ranges[i].end - g_ranges[i].next) / kPageSize;
    return n * kPageSize;
}

}  // namespace kernel::frames
