#include "arch/x86_64/idt.hpp"

#include <stdint.h>

#include "arch/x86_64/layout.h"
#include "lib.hpp"

// entry.S: the stubs' addresses by vector.
struct VectorEntry {
    uint64_t vector;
    void (*handler)();
};
extern "C" const VectorEntry vector_table[], vector_table_end[];
extern "C" void spurious_interrupt();

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

void set(uint64_t vector, void (*handler)(), int dpl) {
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
    for (const VectorEntry* e = vector_table; e != vector_table_end; ++e)
        set(e->vector, e->handler, e->vector == VECTOR_INT80 ? 3 : 0);
    set(0xff, spurious_interrupt, 0);
    struct [[gnu::packed]] {
        uint16_t limit;
        uint64_t base;
    } pointer{sizeof g_idt - 1, reinterpret_cast<uintptr_t>(g_idt)};
    asm volatile("lidt %0" : : "m"(pointer));
}

}  // namespace kernel::idt
