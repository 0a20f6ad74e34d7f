#include "arch/x86_64/lapic.hpp"

#include "arch/x86_64/cpu.hpp"
#include "lib.hpp"

namespace kernel::lapic {

namespace {

constexpr uint32_t kMsrApicBase = 0x1b;
constexpr uint64_t kApicEnable = 1u << 11;
constexpr uint64_t kApicX2 = 1u << 10;
constexpr uintptr_t kXapicBase = 0xfee00000;
constexpr uintptr_t kIoapicBase = 0xfec00000;

// Registers by x2APIC MSR number; the xAPIC offset is (msr - 0x800) * 16.
enum Reg : uint32_t {
    kEoi = 0x80b,
    kSvr = 0x80f,
    kLvtTimer = 0x832,
    kInitialCount = 0x838,
    kCurrentCount = 0x839,
    kDivide = 0x83e,
};
constexpr uint32_t kLvtMasked = 1u << 16;

bool g_x2apic = false;

void write(Reg r, uint32_t v) {
    if (g_x2apic) return cpu::wrmsr(r, v);
    *reinterpret_cast<volatile uint32_t*>(kXapicBase + (r - 0x800) * 16) = v;
}
uint32_t read(Reg r) {
    if (g_x2apic) return static_cast<uint32_t>(cpu::rdmsr(r));
    return *reinterpret_cast<volatile uint32_t*>(kXapicBase + (r - 0x800) * 16);
}

void ioapic_write(uint32_t reg, uint32_t v) {
    *reinterpret_cast<volatile uint32_t*>(kIoapicBase) = reg;
    *reinterpret_cast<volatile uint32_t*>(kIoapicBase + 0x10) = v;
}

}  // namespace

bool x2apic() {
    return g_x2apic;
}

void init() {
    g_x2apic = cpu::cpuid(1).ecx & (1u << 21);
    uint64_t base = cpu::rdmsr(kMsrApicBase) | kApicEnable;
    if (g_x2apic) base |= kApicX2;
    cpu::wrmsr(kMsrApicBase, base);
    write(kSvr, 0x100 | kSpuriousVector);
    write(kDivide, 0xb);             // divide by 1
    write(kLvtTimer, kTimerVector);  // one-shot
    // The legacy PICs stay masked; the IOAPIC (touched only when a driver subscribes to
    // an IRQ) delivers ISA interrupts.
    cpu::outb(0x21, 0xff);
    cpu::outb(0xa1, 0xff);
}

void arm_timer_ns(uint64_t ns) {
    if (ns == 0) ns = 1;
    if (ns > 0xffffffffu) ns = 0xffffffffu;
    write(kInitialCount, static_cast<uint32_t>(ns));
}

void stop_timer() {
    write(kInitialCount, 0);
}

void eoi() {
    write(kEoi, 0);
}

uint64_t calibrate_tsc_hz() {
    constexpr uint32_t kSpan = 1000000;  // 1 ms at 1 GHz
    write(kLvtTimer, kLvtMasked | kTimerVector);
    write(kInitialCount, 0xffffffffu);
    uint64_t t0 = cpu::rdtsc();
    while (0xffffffffu - read(kCurrentCount) < kSpan) {
    }
    uint64_t t1 = cpu::rdtsc();
    write(kInitialCount, 0);
    write(kLvtTimer, kTimerVector);
    return (t1 - t0) * 1000;
}

void route_irq(int irq, bool enabled) {
    ioapic_write(0x10 + 2 * irq, (kIrqVectorBase + irq) | (enabled ? 0 : kLvtMasked));
    ioapic_write(0x11 + 2 * irq, 0);  // destination: APIC 0
}

}  // namespace kernel::lapic
