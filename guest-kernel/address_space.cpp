#include "address_space.hpp"

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/layout.h"
#include "frames.hpp"
#include "lib.hpp"

extern "C" uint64_t kernel_pd[512], device_pd[512];

namespace kernel {

namespace {

using ukvm::kernel::kUserBase;
constexpr uint64_t kAddrMask = 0x000ffffffffff000ull;
constexpr uint64_t kOwnedBit = 1ull << 9;  // an available bit: the leaf frame is ours to free
constexpr uint64_t kDmaBit = 1ull << 10;   // another: the frame was DMA memory
constexpr uint64_t kNoExecute = 1ull << 63;

// Frees the frame a leaf entry owns. DMA memory goes through a quarantine: a device may
// still complete a request into it after its driver died.
void release(uint64_t pte) {
    if (!(pte & PTE_P) || !(pte & kOwnedBit)) return;
    if (pte & kDmaBit)
        frames::free_later(pte & kAddrMask);
    else
        frames::free(pte & kAddrMask);
}
const bool g_nx = (cpu::rdmsr(MSR_EFER) & EFER_NXE) != 0;  // set by boot.S when available
constexpr uint64_t kTable = PTE_P | PTE_W | PTE_U;

uint64_t* table(uint64_t entry) {
    return static_cast<uint64_t*>(frames::to_virtual(entry & kAddrMask));
}
uint64_t phys(const void* p) {
    return reinterpret_cast<uintptr_t>(p);
}

bool in_user_half(uint64_t va, uint64_t len) {
    return va >= ukvm::kernel::kUserBase && len <= ukvm::kernel::kUserTop - va &&
           va + len <= ukvm::kernel::kUserTop;
}

}  // namespace

bool AddressSpace::create() {
    uint64_t pml4 = frames::alloc();
    uint64_t pdpt = frames::alloc();
    uint64_t pd = frames::alloc();
    if (!pml4 || !pdpt || !pd) {
        if (pml4) frames::free(pml4);
        if (pdpt) frames::free(pdpt);
        if (pd) frames::free(pd);
        return false;
    }
    table(pml4)[0] = pdpt | kTable;
    table(pdpt)[0] = phys(kernel_pd) | PTE_P | PTE_W;
    table(pdpt)[1] = pd | kTable;
    table(pdpt)[3] = phys(device_pd) | PTE_P | PTE_W;
    pml4_ = pml4;
    fresh = true;
    return true;
}

void AddressSpace::destroy() {
    if (!pml4_) return;
    uint64_t pdpt = table(pml4_)[0] & kAddrMask;
    uint64_t pd = table(pdpt)[1] & kAddrMask;
    for (int i = 0; i < 512; ++i) {
        uint64_t pde = table(pd)[i];
        if (!(pde & PTE_P)) continue;
        uint64_t* pt = table(pde);
        for (int j = 0; j < 512; ++j) release(pt[j]);
        frames::free(pde & kAddrMask);
    }
    frames::free(pd);
    frames::free(pdpt);
    frames::free(pml4_);
    pml4_ = 0;
}

uint64_t* AddressSpace::walk(uint64_t va, bool create) {
    uint64_t pdpt = table(pml4_)[0] & kAddrMask;
    uint64_t pd = table(pdpt)[1] & kAddrMask;
    uint64_t& pde = table(pd)[(va >> 21) & 511];
    if (!(pde & PTE_P)) {
        if (!create) return nullptr;
        uint64_t pt = frames::alloc();
        if (!pt) return nullptr;
        pde = pt | kTable;
    }
    return &table(pde)[(va >> 12) & 511];
}

bool AddressSpace::map(uint64_t va, uint64_t pa, unsigned flags) {
    if (!in_user_half(va, frames::kPageSize) || va < kUserBase + (2u << 20)) return false;
    uint64_t* pte = walk(va, true);
    if (!pte) return false;
    *pte = pa | PTE_P | PTE_U | (flags & kWritable ? PTE_W : 0) | (flags & kOwned ? kOwnedBit : 0) |
           (flags & kDma ? kDmaBit : 0) | (flags & kUncached ? PTE_PCD | PTE_PWT : 0) |
           (flags & kExecutable || !g_nx ? 0 : kNoExecute);
    return true;
}

bool AddressSpace::map_zeroed(uint64_t va, uint64_t len, unsigned flags) {
    for (uint64_t off = 0; off < len; off += frames::kPageSize) {
        uint64_t frame = frames::alloc();
        if (!frame) return false;
        if (!map(va + off, frame, flags | kOwned)) {
            frames::free(frame);
            return false;
        }
    }
    return true;
}

bool AddressSpace::copy_from(const AddressSpace& src) {
    uint64_t src_pd = table(table(src.pml4_)[0])[1] & kAddrMask;
    for (int i = 0; i < 512; ++i) {
        uint64_t pde = table(src_pd)[i];
        if (!(pde & PTE_P)) continue;
        const uint64_t* pt = table(pde);
        for (int j = 0; j < 512; ++j) {
            if (!(pt[j] & PTE_P) || !(pt[j] & kOwnedBit)) continue;
            uint64_t va = kUserBase + (uint64_t(i) << 21) + (uint64_t(j) << 12);
            uint64_t frame = frames::alloc();
            uint64_t* pte = frame ? walk(va, true) : nullptr;
            if (!pte) {
                if (frame) frames::free(frame);
                return false;
            }
            memcpy(frames::to_virtual(frame), frames::to_virtual(pt[j] & kAddrMask),
                   frames::kPageSize);
            *pte = frame | (pt[j] & ~kAddrMask);
        }
    }
    return true;
}

bool AddressSpace::unmapped(uint64_t va, uint64_t len) {
    if (!in_user_half(va, len) || va < kUserBase + (2u << 20)) return false;
    for (uint64_t a = va; a < va + len; a += frames::kPageSize) {
        uint64_t* pte = walk(a, false);
        if (pte && (*pte & PTE_P)) return false;
    }
    return true;
}

void AddressSpace::unmap(uint64_t va, uint64_t len) {
    if (!in_user_half(va, len)) return;
    bool loaded = (cpu::read_cr3() & kAddrMask) == pml4_;
    for (uint64_t a = va; a < va + len; a += frames::kPageSize) {
        uint64_t* pte = walk(a, false);
        if (!pte || !(*pte & PTE_P)) continue;
        release(*pte);
        *pte = 0;
        if (loaded) asm volatile("invlpg (%0)" : : "r"(a) : "memory");
    }
}

uint64_t AddressSpace::translate(UserAddr va, Access access) const {
    if (!pml4_ || !in_user_half(va.value, 1)) return 0;
    uint64_t need = PTE_P | PTE_U | (access == kWrite ? PTE_W : 0);
    uint64_t e = table(pml4_)[0];
    e = table(e)[(va.value >> 30) & 511];
    if ((e & need) != need) return 0;
    e = table(e)[(va.value >> 21) & 511];
    if ((e & need) != need) return 0;
    e = table(e)[(va.value >> 12) & 511];
    if ((e & need) != need) return 0;
    return (e & kAddrMask) | (va.value & 0xfff);
}

bool AddressSpace::check(UserAddr va, size_t n, Access access) const {
    if (!in_user_half(va.value, n)) return false;
    for (uint64_t a = align_down(va.value, frames::kPageSize); a < va.value + n;
         a += frames::kPageSize)
        if (!translate({a}, access)) return false;
    return true;
}

bool AddressSpace::copy_in(void* dst, UserAddr src, size_t n) const {
    auto* d = static_cast<uint8_t*>(dst);
    while (n) {
        uint64_t pa = translate(src, kRead);
        if (!pa) return false;
        size_t chunk = frames::kPageSize - (src.value & 0xfff);
        if (chunk > n) chunk = n;
        memcpy(d, frames::to_virtual(pa), chunk);
        d += chunk, src = src + chunk, n -= chunk;
    }
    return true;
}

bool AddressSpace::copy_out(UserAddr dst, const void* src, size_t n) const {
    auto* s = static_cast<const uint8_t*>(src);
    while (n) {
        uint64_t pa = translate(dst, kWrite);
        if (!pa) return false;
        size_t chunk = frames::kPageSize - (dst.value & 0xfff);
        if (chunk > n) chunk = n;
        memcpy(frames::to_virtual(pa), s, chunk);
        s += chunk, dst = dst + chunk, n -= chunk;
    }
    return true;
}

bool copy_between(const AddressSpace& src_as, UserAddr src, const AddressSpace& dst_as,
                  UserAddr dst, size_t n) {
    while (n) {
        uint64_t spa = src_as.translate(src, AddressSpace::kRead);
        uint64_t dpa = dst_as.translate(dst, AddressSpace::kWrite);
        if (!spa || !dpa) return false;
        size_t chunk = frames::kPageSize - (src.value & 0xfff);
        size_t dchunk = frames::kPageSize - (dst.value & 0xfff);
        if (chunk > dchunk) chunk = dchunk;
        if (chunk > n) chunk = n;
        memmove(frames::to_virtual(dpa), frames::to_virtual(spa), chunk);
        src = src + chunk, dst = dst + chunk, n -= chunk;
    }
    return true;
}

}  // namespace kernel
