// The kernel tasks as IPC endpoints: SYSTEM (kernel calls), CLOCK, HARDWARE (interrupt
// notifications) and the VMM (hypercall forwarding). They run inside the caller's
// SENDREC; nothing of them is ever scheduled.
#pragma once

#include "proc.hpp"

namespace kernel::task {

// call()'s result when the caller's registers were replaced (kSysSigReturn): neither a
// reply nor a return value is written.
inline constexpr int32_t kJustReturn = INT32_MIN;

// SENDREC from caller to the task dst with the message at msg; the reply overwrites it.
int32_t call(Proc* caller, Proc* dst, UserAddr msg);

// The `bits` word of a notification from source to dst (consumes what it reports).
uint64_t notify_bits(Proc* source, Proc* dst);

// An interrupt on IOAPIC pin irq: notify its subscriber from kHardware.
void irq_fired(int irq);
bool waiting_for_irq();

// p has ended: record it for its parent's kSysGetKSig and notify the parent from SYSTEM.
void child_exited(Proc* p, uint64_t reason, uint64_t detail);
void forget(Proc* p);  // drops p's IRQ subscriptions and unclaimed child records

// kSysXxx handlers (system.cpp) and the VMM endpoint (vmm.cpp).
int32_t system_call(Proc* caller, Message& m);
int32_t vmm_call(Proc* caller, Message& m);

}  // namespace kernel::task
