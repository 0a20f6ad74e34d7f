#include "arch/x86_64/idt.hpp"

#include <stdint.h>

#include "arch/x86_64/layout.h"
#include "lib.hpp"

#define VECTORS(X)                                                                                \
    X(0)                                                                                          \
    X(1)                                                                                          \
    X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16) X(17) X(18) \
        X(19) X(20) X(21) X(32) X(33) X(34) X(35) X(36) X(37) X(38) X(39) X(40) X(41) X(42) X(43) \
            X(44) X(45) X(46) X(47) X(48) X(49) X(50) X(51) X(52) X(53) X(54) X(55) X(56) X(57)   \
                X(58) X(59) X(60) X(61) X(62) X(63) X(128)

extern "C" {
#define DECLARE(n) void vector_##n();
VECTORS(DECLARE)
#undef DECLARE
void spurious_interrupt();
}

namespace kernel::idt {

namespace {

struct Gate {
    uint16_t offset_low, selector;
    uint8_t ist, type;
    uint16_t offset_mid;
    uint32_t offset_high, reserved;
};
static_assert(sizeof(Gate) == 16);

Gate g_idt[256];

void set(int vector, void (*handler)(), int dpl = 0) {
    auto a = reinterpret_cast<uintptr_t>(handler);
    g_idt[vector] = {static_cast<uint16_t>(a),
                     SEL_KCODE,
                     0,
                     static_cast<uint8_t>(0x8e | (dpl << 5)),  // interrupt gate
                     static_cast<uint16_t>(a >> 16),
                     static_cast<uint32_t>(a >> 32),
                     0};
}

}  // namespace

void init() {
#define SET(n) set(n, vector_##n, n == VECTOR_INT80 ? 3 : 0);
    VECTORS(SET)
#undef SET
    set(0xff, spurious_interrupt);
    struct [[gnu::packed]] {
        uint16_t limit;
        uint64_t base;
    } pointer{sizeof g_idt - 1, reinterpret_cast<uintptr_t>(g_idt)};
    asm volatile("lidt %0" : : "m"(pointer));
}

}  // namespace kernel::idt
