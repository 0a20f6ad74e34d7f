// The local APIC (x2APIC MSRs when the CPU has them, else the xAPIC page): a one-shot
// timer and EOI; and the IOAPIC routing of ISA interrupts.
#pragma once

#include <stdint.h>

namespace kernel::lapic {

inline constexpr uint8_t kTimerVector = 0x20;
inline constexpr uint8_t kIrqVectorBase = 0x30;  // IOAPIC pin n (0..23) -> vector 0x30 + n
inline constexpr uint8_t kSpuriousVector = 0xff;

void init();
bool x2apic();
// KVM's LAPIC timer counts at 1 GHz (divide by 1); clamped to the 32-bit counter.
void arm_timer_ns(uint64_t ns);
void stop_timer();
void eoi();
// Measures the TSC against the LAPIC timer over ~1 ms; returns TSC ticks per second.
uint64_t calibrate_tsc_hz();

// IOAPIC pin (ISA IRQ) routing to kIrqVectorBase + irq, masked when !enabled.
void route_irq(int irq, bool enabled);

}  // namespace kernel::lapic
