// triplefault: loads an empty IDT and raises #UD. With no IDT the CPU cannot deliver it,
// nor the #GP, nor the double fault: a triple fault, which ukvm reports as a guest fault.
#include "rt/rt.hpp"

extern "C" int guest_main(uint32_t, uint32_t) {
    struct [[gnu::packed]] {
        uint16_t limit;
        uint64_t base;
    } const empty_idt{0, 0};
    rt::printf("triplefault: empty IDT, then ud2\n");
    asm volatile("lidt %0; ud2" ::"m"(empty_idt));
    rt::printf("triplefault: still running after ud2\n");
    return 1;
}
