// Boot, and the kernel's entry from user mode: every system call, exception and interrupt
// lands in kernel_trap() with the user's registers saved in the current Proc. The kernel
// runs with interrupts off, on one stack, and always leaves through sched::run().
#include "address_space.hpp"
#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/idt.hpp"
#include "arch/x86_64/lapic.hpp"
#include "arch/x86_64/layout.h"
#include "boot_image.hpp"
#include "clock.hpp"
#include "console.hpp"
#include "frames.hpp"
#include "hypercall.hpp"
#include "ipc.hpp"
#include "lib.hpp"
#include "multiboot.hpp"
#include "sched.hpp"
#include "task.hpp"

extern "C" {
extern uint32_t boot_magic, boot_info;
extern uint64_t boot_tsc;
extern char kernel_image_start[], kernel_image_end[];
extern void (*init_array_start[])(), (*init_array_end[])();
void syscall_entry();
[[noreturn]] void kernel_boot();
[[noreturn]] void kernel_trap();
[[noreturn]] void kernel_idle_interrupt(uint64_t vector);
[[noreturn]] void kernel_fault(const uint64_t* frame, uint64_t cr2);
}

namespace kernel {
namespace {

using namespace ukvm::kernel;

uint64_t g_trace = 0;  // kernel cmdline "trace": print the first entries

const char* exception_name(uint64_t v) {
    static const char* const names[] = {"divide error",
                                        "debug",
                                        "NMI",
                                        "breakpoint",
                                        "overflow",
                                        "bound range",
                                        "invalid opcode",
                                        "device not available",
                                        "double fault",
                                        "coprocessor overrun",
                                        "invalid TSS",
                                        "segment not present",
                                        "stack fault",
                                        "general protection",
                                        "page fault",
                                        "reserved",
                                        "x87 error",
                                        "alignment check",
                                        "machine check",
                                        "SIMD error",
                                        "virtualization",
                                        "control protection"};
    return v < sizeof names / sizeof *names ? names[v] : "exception";
}

void user_fault(Proc* p) {
    const Regs& r = p->regs;
    uint64_t cr2;
    asm volatile("mov %%cr2, %0" : "=r"(cr2));
    print(
        "ukvm-kernel: %s (endpoint %d) killed: %s (vector %lu, error %lx) at rip %lx, "
        "cr2 %lx\n",
        p->name, p->endpoint, exception_name(r.vector), r.vector, r.error, r.rip, cr2);
    proc::exit(p, kExitFault, r.vector);
}

void interrupt(uint64_t vector) {
    lapic::eoi();
    if (vector == lapic::kTimerVector) {
        sched::timer_fired();
        clock::expire_alarms();
    } else if (vector >= lapic::kIrqVectorBase && vector < lapic::kIrqVectorBase + 24) {
        task::irq_fired(static_cast<int>(vector - lapic::kIrqVectorBase));
    }
}

void system_call(Proc* p) {
    Endpoint self = p->endpoint;
    int32_t r =
        ipc::do_ipc(p, static_cast<int32_t>(p->regs.rax), static_cast<Endpoint>(p->regs.rdi),
                    {p->regs.rsi}, static_cast<Endpoint>(p->regs.rdx));
    if (p->endpoint == self && !(p->blocked & kSlotFree) && r != task::kJustReturn)
        p->regs.rax = static_cast<uint64_t>(static_cast<int64_t>(r));
}

// Kernel cmdline "costs": what ring-0 instructions cost on this host, for the docs.
void measure_instruction_costs() {
    constexpr int kN = 1000;
    auto ns = [](uint64_t ticks) { return ticks * 1000000000 / clock::tsc_hz() / kN; };
    uint64_t t0 = cpu::rdtsc();
    for (int i = 0; i < kN; ++i) asm volatile("add $1, %%rax" : : : "rax");
    uint64_t t1 = cpu::rdtsc();
    for (int i = 0; i < kN; ++i) (void)cpu::rdtsc();
    uint64_t t2 = cpu::rdtsc();
    static volatile uint64_t cell;
    for (int i = 0; i < kN; ++i) cell = cell + 1;
    uint64_t t3 = cpu::rdtsc();
    for (int i = 0; i < kN; ++i)  // a different 4 KiB page each time (kernel identity map)
        (void)*reinterpret_cast<volatile uint64_t*>(0x200000 + (uint64_t(i) << 12));
    uint64_t t4 = cpu::rdtsc();
    static uint8_t buf[4096];
    for (int i = 0; i < kN; ++i) memset(buf, i, 64);
    uint64_t t5 = cpu::rdtsc();
    print(
        "ukvm-kernel: ring-0 costs per loop iteration: add+loop %lu ns, rdtsc %lu ns, "
        "load+store %lu ns, load from a new page %lu ns, 64-byte memset %lu ns\n",
        ns(t1 - t0), ns(t2 - t1), ns(t3 - t2), ns(t4 - t3), ns(t5 - t4));

    // FPU/SSE state: what saving and restoring it on every process switch costs.
    {
        alignas(64) static uint8_t area[512];
        asm volatile("fxsave64 %0" : "=m"(area));
        constexpr int kM = 50;
        uint64_t f0 = cpu::rdtsc();
        for (int i = 0; i < kM; ++i) asm volatile("fxsave64 %0" : "=m"(area));
        uint64_t f1 = cpu::rdtsc();
        for (int i = 0; i < kM; ++i) asm volatile("fxrstor64 %0" : : "m"(area));
        uint64_t f2 = cpu::rdtsc();
        auto per = [](uint64_t ticks) { return ticks * 1000000000 / clock::tsc_hz() / kM; };
        print("ukvm-kernel: fxsave64 %lu ns, fxrstor64 %lu ns\n", per(f1 - f0), per(f2 - f1));
    }
    // Address-space switches: reloading the same CR3, alternating two roots.
    AddressSpace a, b;
    if (a.create() && b.create()) {
        constexpr int kM = 50;
        uint64_t boot_cr3 = cpu::read_cr3();
        uint64_t s0 = cpu::rdtsc();
        for (int i = 0; i < kM; ++i) cpu::write_cr3(boot_cr3);
        uint64_t s1 = cpu::rdtsc();
        for (int i = 0; i < kM; ++i) cpu::write_cr3(i & 1 ? a.root() : b.root());
        uint64_t s2 = cpu::rdtsc();
        cpu::write_cr3(boot_cr3);
        uint64_t s3 = cpu::rdtsc();
        for (int i = 0; i < kM; ++i) {  // a switch plus touching one kernel page
            cpu::write_cr3(i & 1 ? a.root() : b.root());
            (void)*reinterpret_cast<volatile uint64_t*>(&g_trace);
        }
        uint64_t s4 = cpu::rdtsc();
        cpu::write_cr3(boot_cr3);
        auto per = [](uint64_t ticks) { return ticks * 1000000000 / clock::tsc_hz() / kM; };
        print(
            "ukvm-kernel: CR3 reload (same root) %lu ns, alternating two roots %lu ns, "
            "alternating + one kernel load %lu ns\n",
            per(s1 - s0), per(s2 - s1), per(s4 - s3));
        a.destroy();
        b.destroy();
    }
}

void boot() {
    uint64_t c_tsc = cpu::rdtsc();
    for (auto* f = init_array_start; f != init_array_end; ++f) (*f)();  // C++ static init
    console::init();
    if (boot_magic != multiboot::kBootMagic)
        panic("not booted by a multiboot loader (%x)", boot_magic);
    multiboot::read(boot_info);  // modules and memory, before anything is allocated
    frames::reserve(reinterpret_cast<uintptr_t>(kernel_image_start),
                    reinterpret_cast<uintptr_t>(kernel_image_end));
    for (int i = 0; i < boot_image::count(); ++i)
        frames::reserve(boot_image::get(i)->start, boot_image::get(i)->end);

    frames::assume_zeroed(hypercall::available());
    idt::init();
    // SMEP: the kernel never executes user pages, so a jump there is a kernel bug.
    if (cpu::cpuid(7).ebx & (1u << 7)) cpu::write_cr4(cpu::read_cr4() | (1u << 20));
    lapic::init();
    clock::init();
    proc::init();
    uint64_t tsc_hz = clock::tsc_hz();
    if (strstr(multiboot::cmdline(), " sysret")) sched::use_sysret(true);
    if (strstr(multiboot::cmdline(), " trace")) g_trace = 200;
    if (strstr(multiboot::cmdline(), " costs")) measure_instruction_costs();
    bool pcid = !strstr(multiboot::cmdline(), " nopcid") && sched::enable_pcid();
    print(
        "ukvm-kernel: %s, loader \"%s\", %s%s, TSC %lu MHz, %lu MiB free, %d boot modules; "
        "multiboot entry to C++ %lu us, C++ to here %lu us\n",
        hypercall::available() ? "on ukvm (hypercalls)" : "no ukvm VMM (UART console)",
        multiboot::loader_name(), lapic::x2apic() ? "x2APIC" : "xAPIC", pcid ? ", PCID" : "",
        tsc_hz / 1000000, frames::free_bytes() >> 20, boot_image::count(),
        (c_tsc - boot_tsc) * 1000000 / tsc_hz, (cpu::rdtsc() - c_tsc) * 1000000 / tsc_hz);
    if (!hypercall::available() && strncmp(multiboot::loader_name(), "ukvm", 5) == 0)
        print("ukvm-kernel: warning: the loader is ukvm but the hypercall probe failed\n");
    if (boot_image::count() == 0) panic("no boot modules: nothing to run");

    // "start=N": only the first N modules run at boot; the rest are programs for
    // kSysSpawn (a boot image for the servers to start).
    int start = boot_image::count();
    if (const char* opt = strstr(multiboot::cmdline(), " start=")) {
        int n = 0;
        for (opt += 7; *opt >= '0' && *opt <= '9'; ++opt) n = n * 10 + (*opt - '0');
        if (n > 0 && n < start) start = n;
    }
    Endpoint parent = kNone;
    for (int i = 0; i < start; ++i) {
        int32_t error = 0;
        Proc* p = boot_image::spawn(i, parent, &error);
        if (!p) panic("cannot start boot module %s (%d)", boot_image::get(i)->cmdline, error);
        if (i == 0) parent = p->endpoint;  // the first module parents the others
    }
    print("ukvm-kernel: boot modules loaded; %lu us since multiboot entry\n",
          (cpu::rdtsc() - boot_tsc) * 1000000 / tsc_hz);
}

}  // namespace
}  // namespace kernel

using namespace kernel;

extern "C" [[noreturn]] void kernel_boot() {
    boot();
    sched::run();
}

extern "C" [[noreturn]] void kernel_trap() {
    sched::stats.entry_tsc = cpu::rdtsc();
    ++sched::stats.entries;
    Proc* p = proc::current;
    Regs& r = p->regs;
    if (g_trace) {
        --g_trace;
        print("trace: %s vector %lx rip %lx rax %lx rdi %lx rsi %lx error %lx\n", p->name, r.vector,
              r.rip, r.rax, r.rdi, r.rsi, r.error);
    }
    p->entered_by_syscall = false;
    if (r.vector == VECTOR_SYSCALL) {
        p->entered_by_syscall = true;
        system_call(p);
    } else if (r.vector == 14 && r.rip == reinterpret_cast<uintptr_t>(syscall_entry)) {
        // PVM: `syscall` reached LSTAR still in ring 3 and faulted on the kernel page. A
        // process can also just jump there, so rcx and r11 are untrusted: the return
        // address must be a user address and only the arithmetic flags, TF, DF and AC
        // come from r11 (never IOPL).
        constexpr uint64_t kUserFlags = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 |
                                        0x40000;  // CF PF AF ZF SF TF DF OF AC
        if (r.rcx >= ukvm::kernel::kUserTop) {
            user_fault(p);
        } else {
            r.rip = r.rcx;
            r.rflags = (r.r11 & kUserFlags) | RFLAGS_IF | RFLAGS_RESERVED;
            p->entered_by_syscall = true;
            system_call(p);
        }
    } else if (r.vector == VECTOR_INT80) {
        system_call(p);
    } else if (r.vector == 2) {
        // An NMI is no fault of the process it interrupted.
    } else if (r.vector < 32) {
        user_fault(p);
    } else {
        interrupt(r.vector);
    }
    sched::run();
}

extern "C" [[noreturn]] void kernel_idle_interrupt(uint64_t vector) {
    interrupt(vector);
    sched::run();
}

extern "C" [[noreturn]] void kernel_fault(const uint64_t* f, uint64_t cr2) {
    // f: rax..r15 (15), vector, error, rip, cs, rflags, rsp, ss
    panic("kernel %s (vector %lu, error %lx) at rip %lx, rsp %lx, cr2 %lx, rax %lx, rdi %lx",
          exception_name(f[15]), f[15], f[16], f[17], f[20], cr2, f[0], f[6]);
}
