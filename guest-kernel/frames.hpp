// Physical page frames: the usable RAM of the multiboot memory map below 1 GiB (the part
// the kernel's identity map reaches), minus the kernel image and the boot modules.
// Frames are handed out by a bump pointer per range and recycled through a free list, so
// boot touches no memory it does not use.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kernel::frames {

inline constexpr uint64_t kPageSize = 4096;
inline constexpr uint64_t kLimit = 1ull << 30;  // the identity-mapped first GiB

void add_range(uint64_t start, uint64_t end);  // usable RAM
void reserve(uint64_t start, uint64_t end);    // carve out of what was added
uint64_t alloc();                              // a zeroed frame, or 0 when RAM is exhausted
// RAM the loader did not write is known to be zero (ukvm hands the guest fresh anonymous
// memory), so frames never handed out before need no clearing: zeroing a page costs
// ~1 ms of emulated `rep stosq` on the PVM host. Not assumed elsewhere (firmware may have
// used RAM under QEMU).
void assume_zeroed(bool on);
// n zeroed frames at consecutive physical addresses (for device DMA), or 0. Taken from the
// untouched part of a range, never from the free list; each is freed with free() alone.
uint64_t alloc_contiguous(uint64_t n);
void free(uint64_t frame);
// Frees a frame a device may still write (a dead driver's DMA memory) after kQuarantineNs;
// at most kQuarantined wait at once (the oldest is freed early when more come).
void free_later(uint64_t frame);
inline constexpr uint64_t kQuarantineNs = 1000000000;
inline constexpr int kQuarantined = 64;
uint64_t free_bytes();

inline void* to_virtual(uint64_t phys) {
    return reinterpret_cast<void*>(phys);
}

}  // namespace kernel::frames
