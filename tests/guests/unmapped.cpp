// unmapped: reads and writes guest-physical addresses that have no RAM behind them (past
// the end of RAM, in the 3-4 GiB hole). The runtime identity maps the first 4 GiB, so
// each access reaches the VMM as MMIO to nothing; the VMM should warn and carry on.
#include "rt/rt.hpp"

namespace {

void poke(uint64_t addr) {
    auto* p8 = reinterpret_cast<volatile uint8_t*>(addr);
    auto* p32 = reinterpret_cast<volatile uint32_t*>(addr);
    auto* p64 = reinterpret_cast<volatile uint64_t*>(addr);
    const uint8_t r8 = *p8;
    const uint32_t r32 = *p32;
    const uint64_t r64 = *p64;
    *p8 = 0x5a;
    *p32 = 0xdeadbeef;
    *p64 = 0x0123456789abcdefull;
    rt::printf("unmapped: 0x%lx: read 0x%x 0x%x 0x%lx, wrote 3 values\n", addr, r8, r32, r64);
}

}  // namespace

extern "C" int guest_main(uint32_t, uint32_t) {
    constexpr uint64_t kHoleStart = 0xc0000000;
    const uint64_t ram = rt::memory_bytes();
    rt::printf("unmapped: memory %lu MiB\n", ram >> 20);
    // The hole first: the VMM may stop warning after a few accesses, and the test looks
    // for a warning naming this address.
    poke(kHoleStart);
    if (ram != 0 && ram + (16 << 20) <= kHoleStart) {
        poke(ram);               // the first byte past RAM
        poke(ram + (16 << 20));  // well past it
    }
    poke(0xd0000000);
    poke(0xfeb00000);  // high in the hole, below where IOAPIC/LAPIC live
    rt::printf("unmapped: survived\n");
    return 0;
}
