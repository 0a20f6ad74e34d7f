#include "sched.hpp"

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/lapic.hpp"
#include "clock.hpp"
#include "console.hpp"
#include "lib.hpp"
#include "task.hpp"

extern "C" {
extern uint64_t current_regs_top;
extern kernel::Regs idle_regs;
[[noreturn]] void resume_user(kernel::Regs* regs);
[[noreturn]] void idle_halt();
[[noreturn]] void resume_user_sysret(kernel::Regs* regs);
extern uint64_t boot_pml4[];
struct [[gnu::packed]] Tss {
    uint32_t reserved;
    uint64_t rsp0;
};
extern Tss tss;
}

namespace kernel::sched {

namespace {

Proc* g_head[kNrQueues];
Proc* g_tail[kNrQueues];
uint32_t g_nonempty;       // bit q: queue q has a process
uint64_t g_dispatched_at;  // uptime when current last entered user mode
uint64_t g_armed_for;      // uptime the timer is armed for, 0 if stopped
uint64_t g_loaded_cr3;
bool g_sysret = false;
bool g_pcid = false;

[[noreturn]] void deadlocked() {
    print("ukvm-kernel: deadlock: every process is blocked and nothing can wake one:\n");
    for (Proc& p : proc::table)
        if (!(p.blocked & kSlotFree) && !p.is_task())
            print("  %s (endpoint %d) %s %d\n", p.name, p.endpoint,
                  p.blocked & kSending ? "sending to" : "receiving from",
                  p.blocked & kSending ? p.send_to : p.get_from);
    console::halt(console::kStatusDeadlock);
}

void move_to_tail(Proc* p) {
    int q = p->priv.priority;
    if (g_head[q] != p || !p->next_ready) return;
    g_head[q] = p->next_ready;
    p->next_ready = nullptr;
    g_tail[q]->next_ready = p;
    g_tail[q] = p;
}

void arm_timer(Proc* next, uint64_t now) {
    uint64_t deadline = clock::next_alarm_ns();
    if (next && next->next_ready) {
        uint64_t q = now + static_cast<uint64_t>(next->quantum_left_ns);
        if (!deadline || q < deadline) deadline = q;
    }
    if (deadline == g_armed_for) return;
    g_armed_for = deadline;
    if (!deadline) return lapic::stop_timer();
    lapic::arm_timer_ns(deadline > now ? deadline - now : 1);
}

}  // namespace

void ready(Proc* p) {
    int q = p->priv.priority;
    p->next_ready = nullptr;
    if (g_tail[q])
        g_tail[q]->next_ready = p;
    else
        g_head[q] = p;
    g_tail[q] = p;
    g_nonempty |= 1u << q;
}

void unready(Proc* p) {
    int q = p->priv.priority;
    Proc* prev = nullptr;
    for (Proc* x = g_head[q]; x; prev = x, x = x->next_ready) {
        if (x != p) continue;
        if (prev)
            prev->next_ready = x->next_ready;
        else
            g_head[q] = x->next_ready;
        if (g_tail[q] == x) g_tail[q] = prev;
        if (!g_head[q]) g_nonempty &= ~(1u << q);
        x->next_ready = nullptr;
        return;
    }
}

void timer_fired() {
    g_armed_for = 0;
}

// The FPU/SSE registers hold g_fpu_owner's state; they are switched eagerly with the
// process (fxsave64/fxrstor64 cost ~2.5 us each even emulated on the PVM host).
Proc* g_fpu_owner = nullptr;
// The architectural initial state as fxsave64 lays it out: FCW 0x037f (x87 exceptions
// masked), MXCSR 0x1f80 (SSE exceptions masked), registers empty. Built as data because
// the PVM host's emulator cannot execute ldmxcsr in ring 0.
constexpr uint8_t kFcwLow = 0x7f, kFcwHigh = 0x03, kMxcsrLow = 0x80, kMxcsrHigh = 0x1f;

void forget_fpu(const Proc* p) {
    if (g_fpu_owner == p) g_fpu_owner = nullptr;
}

void save_fpu(Proc* p) {
    if (g_fpu_owner == p) asm volatile("fxsave64 %0" : "=m"(p->fpu));
}

void init_fpu_state(Proc* p) {
    memset(p->fpu, 0, sizeof p->fpu);
    p->fpu[0] = kFcwLow;
    p->fpu[1] = kFcwHigh;
    p->fpu[24] = kMxcsrLow;
    p->fpu[25] = kMxcsrHigh;
}

void forget_address_space(const AddressSpace& as) {
    if (g_loaded_cr3 != as.root()) return;
    g_loaded_cr3 = reinterpret_cast<uintptr_t>(boot_pml4);
    cpu::write_cr3(g_loaded_cr3);
}

bool enable_pcid() {
    constexpr uint64_t kCr4Pcide = 1u << 17;
    if (!(cpu::cpuid(1).ecx & (1u << 17))) return false;
    cpu::write_cr4(cpu::read_cr4() | kCr4Pcide);
    return g_pcid = true;
}

void print_stats() {
    uint64_t per_entry = stats.entries ? stats.kernel_tsc / stats.entries : 0;
    print(
        "ukvm-kernel: %lu kernel entries, %lu ns each in C++ on average (the cheapest %lu ns), "
        "%lu address-space switches, up %lu ms\n",
        stats.entries, per_entry * 1000000000 / clock::tsc_hz(),
        stats.min_tsc * 1000000000 / clock::tsc_hz(), stats.cr3_switches,
        clock::uptime_ns() / 1000000);
}

void use_sysret(bool on) {
    g_sysret = on;
}

[[noreturn]] void run() {
    uint64_t now = clock::uptime_ns();
    if (Proc* cur = proc::current) {
        cur->quantum_left_ns -= static_cast<int64_t>(now - g_dispatched_at);
        if (cur->runnable() && cur->quantum_left_ns <= 0) {
            cur->quantum_left_ns = static_cast<int64_t>(cur->priv.quantum_ns);
            move_to_tail(cur);
        }
    }
    if (g_armed_for && g_armed_for <= now) g_armed_for = 0;  // it has fired

    Proc* next = g_nonempty ? g_head[__builtin_ctz(g_nonempty)] : nullptr;
    if (next && next->quantum_left_ns <= 0)
        next->quantum_left_ns = static_cast<int64_t>(next->priv.quantum_ns);
    arm_timer(next, now);

    if (!next) {
        if (!g_armed_for && !task::waiting_for_irq()) deadlocked();
        proc::current = nullptr;
        if (stats.entry_tsc) {
            uint64_t t = cpu::rdtsc() - stats.entry_tsc;
            stats.kernel_tsc += t;
            if (t < stats.min_tsc) stats.min_tsc = t;
        }
        stats.entry_tsc = 0;
        current_regs_top = reinterpret_cast<uint64_t>(&idle_regs + 1);
        idle_halt();
    }
    if (g_fpu_owner != next) {
        if (g_fpu_owner) asm volatile("fxsave64 %0" : "=m"(g_fpu_owner->fpu));
        asm volatile("fxrstor64 %0" : : "m"(next->fpu));
        g_fpu_owner = next;
    }
    proc::current = next;
    current_regs_top = reinterpret_cast<uint64_t>(&next->regs + 1);
    tss.rsp0 = current_regs_top;  // interrupts from ring 3 save into next's Regs
    if (g_loaded_cr3 != next->as.root()) {
        g_loaded_cr3 = next->as.root();
        uint64_t cr3 = g_loaded_cr3;
        if (g_pcid) {
            constexpr uint64_t kNoFlush = 1ull << 63;
            cr3 |= static_cast<uint64_t>(next->index() + 1) | (next->as.fresh ? 0 : kNoFlush);
        }
        next->as.fresh = false;
        ++stats.cr3_switches;
        cpu::write_cr3(cr3);
    }
    g_dispatched_at = now;
    if (stats.entry_tsc) {
        uint64_t t = cpu::rdtsc() - stats.entry_tsc;
        stats.kernel_tsc += t;
        if (t < stats.min_tsc) stats.min_tsc = t;
    }
    stats.entry_tsc = 0;
    if (g_sysret && next->entered_by_syscall) resume_user_sysret(&next->regs);
    resume_user(&next->regs);
}

}  // namespace kernel::sched
