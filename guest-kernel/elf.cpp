#include "elf.hpp"

#include "frames.hpp"
#include "lib.hpp"

namespace kernel::elf {

namespace {

struct Header {
    uint8_t ident[16];
    uint16_t type, machine;
    uint32_t version;
    uint64_t entry, phoff, shoff;
    uint32_t flags;
    uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct ProgramHeader {
    uint32_t type, flags;
    uint64_t offset, vaddr, paddr, filesz, memsz, align;
};
constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kPfExec = 1;
constexpr uint32_t kPfWrite = 2;

bool load_segment(const uint8_t* image, const ProgramHeader& ph, AddressSpace& as) {
    uint64_t start = align_down(ph.vaddr, frames::kPageSize);
    uint64_t end = align_up(ph.vaddr + ph.memsz, frames::kPageSize);
    for (uint64_t va = start; va < end; va += frames::kPageSize) {
        uint64_t frame = frames::alloc();
        if (!frame) return false;
        // The part of the file that lands in this page; the rest stays zero (bss).
        uint64_t lo = va > ph.vaddr ? va : ph.vaddr;
        uint64_t hi = va + frames::kPageSize;
        if (hi > ph.vaddr + ph.filesz) hi = ph.vaddr + ph.filesz;
        if (lo < hi)
            memcpy(static_cast<uint8_t*>(frames::to_virtual(frame)) + (lo - va),
                   image + ph.offset + (lo - ph.vaddr), hi - lo);
        // A page shared by two segments is mapped twice; the second mapping wins.
        unsigned flags = AddressSpace::kOwned |
                         (ph.flags & kPfWrite ? unsigned{AddressSpace::kWritable} : 0u) |
                         (ph.flags & kPfExec ? unsigned{AddressSpace::kExecutable} : 0u);
        if (!as.map(va, frame, flags)) {
            frames::free(frame);
            return false;
        }
    }
    return true;
}

}  // namespace

uint64_t load(const uint8_t* image, size_t size, AddressSpace& as) {
    if (size < sizeof(Header)) return 0;
    Header h;
    memcpy(&h, image, sizeof h);
    if (memcmp(h.ident,
               "\x7f"
               "ELF\x02\x01",
               6) != 0 ||
        h.machine != 62 || h.phentsize != sizeof(ProgramHeader) || h.phoff > size ||
        h.phnum > (size - h.phoff) / sizeof(ProgramHeader))
        return 0;
    for (int i = 0; i < h.phnum; ++i) {
        ProgramHeader ph;
        memcpy(&ph, image + h.phoff + i * sizeof ph, sizeof ph);
        if (ph.type != kPtLoad || ph.memsz == 0) continue;
        if (ph.filesz > ph.memsz || ph.offset > size || ph.filesz > size - ph.offset ||
            ph.vaddr < ukvm::kernel::kUserImageBase || ph.memsz > ukvm::kernel::kUserTop ||
            ph.vaddr > ukvm::kernel::kUserTop - ph.memsz)
            return 0;
        if (!load_segment(image, ph, as)) return 0;
    }
    return h.entry;
}

}  // namespace kernel::elf
