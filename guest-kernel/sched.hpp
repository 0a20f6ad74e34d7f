// Priority round robin: 16 queues (0 highest); the running process stays at the head of
// its queue and goes to the tail when its quantum is used up. Tickless: the LAPIC timer
// is armed one-shot only for the quantum of a process that shares its queue, or for the
// next alarm; with nothing runnable the CPU halts.
#pragma once

#include "proc.hpp"

namespace kernel::sched {

inline constexpr int kNrQueues = 16;

void ready(Proc* p);
void unready(Proc* p);
void timer_fired();
// The address space is about to be freed: stop using its page tables.
void forget_address_space(const AddressSpace& as);
// p is ending: its FPU state need not be saved.
void forget_fpu(const Proc* p);
// Makes p->fpu current (stores the registers if p's state is live in them).
void save_fpu(Proc* p);
// The FPU/SSE state every process starts with.
void init_fpu_state(Proc* p);
// Return to user mode through sysretq when the kernel entry allows (kernel cmdline
// "sysret"); iretq otherwise.
void use_sysret(bool on);

// Counters for the cost of kernel entries, printed when the machine halts.
struct Stats {
    uint64_t entries = 0;     // kernel_trap calls
    uint64_t kernel_tsc = 0;  // TSC ticks from kernel_trap to the return to user mode
    uint64_t cr3_switches = 0;
    uint64_t entry_tsc = 0;    // the current entry's start
    uint64_t min_tsc = ~0ull;  // the cheapest entry
};
inline Stats stats;
void print_stats();
// Tags each address space's TLB entries with a PCID (one per process slot) and switches
// without flushing, when the CPU has PCIDs: under shadow paging this lets the hypervisor
// keep the shadow tables of recently used address spaces.
bool enable_pcid();
// Picks the next process (charging the current one for the time it ran), arms the timer
// and returns to user mode; idles when nothing is runnable. Never returns.
[[noreturn]] void run();

}  // namespace kernel::sched
