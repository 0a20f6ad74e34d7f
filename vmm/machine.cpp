// The machine: KVM VM + guest RAM + buses + devices + vCPU threads, and the loop that runs
// them until the guest halts, resets, faults or the user stops it.
#include "vmm/machine.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <time.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "vmm/boot/multiboot.hpp"
#include "vmm/bus.hpp"
#include "vmm/console.hpp"
#include "vmm/control/control_server.hpp"
#include "vmm/devices/cmos_rtc.hpp"
#include "vmm/devices/hypercall.hpp"
#include "vmm/devices/i8042.hpp"
#include "vmm/devices/uart8250.hpp"
#include "vmm/devices/virtio_blk.hpp"
#include "vmm/devices/virtio_console.hpp"
#include "vmm/devices/virtio_net.hpp"
#include "vmm/devices/virtio_pci.hpp"
#include "vmm/guest_memory.hpp"
#include "vmm/io_thread.hpp"
#include "vmm/kvm.hpp"
#include "vmm/pci/pci_bus.hpp"

namespace ukvm {

namespace {

using Clock = std::chrono::steady_clock;

// As close to process start as a library can observe (bench/ reads times relative to it).
const Clock::time_point kProcessStart = Clock::now();

// Both below 4 GiB in the MMIO hole, clear of the IOAPIC and LAPIC pages.
constexpr std::uint64_t kIdentityMapAddr = 0xFFFBC000;
constexpr std::uint64_t kTssAddr = 0xFFFBD000;  // three pages

// How long a vCPU may stay inside KVM_RUN before the watchdog looks at it.
constexpr auto kWatchdogQuiet = std::chrono::seconds(1);
constexpr int kWatchdogPollMs = 250;

// PCI: memory BARs from 3 GiB up to the IOAPIC, I/O BARs at 0xC000-0xFFFF; disk i
// interrupts on IOAPIC input 16 + i, then NIC j on 16 + disks + j (docs/virtio.md).
constexpr pci::Window kPciMmioWindow{0xC0000000, 0xFEC00000 - 0xC0000000};
constexpr pci::Window kPciIoWindow{0xC000, 0x4000};
constexpr std::uint32_t kFirstDiskGsi = 16;
constexpr std::uint32_t kVirtioConsoleGsi = 11;  // an ISA line no legacy device here uses

constexpr std::uint64_t kRflagsIf = 1u << 9;
constexpr char kHaltedWithInterruptsOff[] = "guest halted with interrupts disabled";

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}

// The process's resident set now (VmRSS), from /proc/self/statm.
std::uint64_t resident_set_bytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, resident = 0;
    const int n = std::fscanf(f, "%llu %llu", &size, &resident);
    std::fclose(f);
    return n == 2 ? resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

std::int64_t us_since_start(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t - kProcessStart).count();
}

// The signal that kicks a vCPU out of KVM_RUN; its handler does nothing, the EINTR is the point.
int kick_signal() {
    return SIGRTMIN;
}

void install_kick_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_handler = [](int) {};
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
        sigaction(kick_signal(), &sa, nullptr);
    });
}

// Blocks SIGINT/SIGTERM in this thread (and the threads it creates) and delivers them to a
// signalfd instead; the previous mask is restored on every exit path.
class StopSignals {
public:
    StopSignals() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGINT);
        sigaddset(&set_, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set_, &saved_);
        int fd = ::signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK);
        if (fd < 0) {
            int err = errno;
            pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
            throw KvmError("signalfd", err);
        }
        fd_.reset(fd);
    }
    ~StopSignals() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

    int fd() const { return fd_.get(); }
    // The signal that arrived, if any.
    std::optional<int> take() {
        signalfd_siginfo info{};
        if (::read(fd_.get(), &info, sizeof info) == sizeof info) {
            return static_cast<int>(info.ssi_signo);
        }
        return std::nullopt;
    }

private:
    sigset_t set_{};
    sigset_t saved_{};
    Fd fd_;
};

void print_segment(std::FILE* out, const char* name, const kvm_segment& s) {
    fmt::print(out,
               "{:<4} sel={:#06x} base={:#018x} limit={:#010x} type={:#x} p={} dpl={} db={} s={} "
               "l={} g={}\n",
               name, s.selector, s.base, s.limit, s.type, s.present, s.dpl, s.db, s.s, s.l, s.g);
}

void dump_vcpu(Vcpu& vcpu) {
    std::FILE* out = stderr;
    try {
        const kvm_regs r = vcpu.regs();
        const kvm_sregs s = vcpu.sregs();
        fmt::print(out, "vCPU {} registers:\n", vcpu.id());
        fmt::print(out, "RAX={:#018x} RBX={:#018x} RCX={:#018x} RDX={:#018x}\n", r.rax, r.rbx,
                   r.rcx, r.rdx);
        fmt::print(out, "RSI={:#018x} RDI={:#018x} RBP={:#018x} RSP={:#018x}\n", r.rsi, r.rdi,
                   r.rbp, r.rsp);
        fmt::print(out, "R8 ={:#018x} R9 ={:#018x} R10={:#018x} R11={:#018x}\n", r.r8, r.r9, r.r10,
                   r.r11);
        fmt::print(out, "R12={:#018x} R13={:#018x} R14={:#018x} R15={:#018x}\n", r.r12, r.r13,
                   r.r14, r.r15);
        fmt::print(out, "RIP={:#018x} RFLAGS={:#010x}\n", r.rip, r.rflags);
        print_segment(out, "CS", s.cs);
        print_segment(out, "DS", s.ds);
        print_segment(out, "ES", s.es);
        print_segment(out, "FS", s.fs);
        print_segment(out, "GS", s.gs);
        print_segment(out, "SS", s.ss);
        print_segment(out, "TR", s.tr);
        print_segment(out, "LDT", s.ldt);
        fmt::print(out, "GDT base={:#018x} limit={:#06x}  IDT base={:#018x} limit={:#06x}\n",
                   s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
        fmt::print(out, "CR0={:#018x} CR2={:#018x} CR3={:#018x} CR4={:#018x}\n", s.cr0, s.cr2,
                   s.cr3, s.cr4);
        fmt::print(out, "CR8={:#018x} EFER={:#018x} APIC_BASE={:#018x}\n", s.cr8, s.efer,
                   s.apic_base);
    } catch (const std::exception& e) {
        fmt::print(out, "vCPU {}: registers unavailable: {}\n", vcpu.id(), e.what());
    }
}

// What a kicked vCPU found about itself.
enum class Liveness {
    Unknown,  // not reported yet
    Alive,    // running, or halted with interrupts on (a timer or device can wake it)
    Dead,     // halted with IF=0: only an NMI/INIT from another vCPU can wake it
    Parked,   // an AP never started (waiting for INIT/SIPI)
};

class Machine {
public:
    Machine(const GuestConfig& config, const RunOptions& options);
    int run();

    // The control API (vmm/control/, docs/control-api.md); any thread.
    control::GuestInfo info();
    void pause();
    void resume();
    void request_shutdown();
    void destroy();

private:
    struct VcpuSlot {
        std::unique_ptr<Vcpu> vcpu;
        std::thread thread;
        std::atomic<pthread_t> handle{};
        std::atomic<std::int64_t> in_run_since_ns{0};     // 0 while outside KVM_RUN
        std::atomic<bool> check_halt{false};              // the watchdog kicked this vCPU
        std::atomic<Liveness> report{Liveness::Unknown};  // the answer to that kick
        std::atomic<bool> exited{false};
        std::atomic<bool> parked{false};             // waiting in park() while paused
        std::atomic<clockid_t> cpu_clock{0};         // the thread's CPU-time clock
        std::atomic<std::uint64_t> final_cpu_ns{0};  // its CPU time when it ended
    };

    void attach_virtio(const std::vector<DiskConfig>& disks, const std::vector<NetConfig>& nets);
    void attach_virtio_console();
    void console_input(std::span<const std::uint8_t> bytes);
    void vcpu_thread(VcpuSlot& slot);
    bool handle_exit(Vcpu& vcpu);  // false: the VM is over
    static Liveness liveness(Vcpu& vcpu);
    void request_exit(int status, std::string reason);
    bool ended() const { return ended_.load(std::memory_order_acquire); }
    void kick(VcpuSlot& slot);
    void watchdog();
    void stop_vcpus();
    void park(VcpuSlot& slot);
    static std::uint64_t cpu_ns(const VcpuSlot& slot);

    const GuestConfig& config_;
    RunOptions options_;
    Clock::time_point created_ = Clock::now();

    // Declaration order is construction order; destruction runs backwards, so the input
    // thread and terminal go first and the VM's memory last.
    GuestMemory memory_;
    MultibootBoot boot_;
    Kvm kvm_;
    Vm vm_;
    ConsoleOutputSink console_output_;
    Console console_{console_output_};
    Bus pio_{BusKind::Pio};
    Bus mmio_{BusKind::Mmio};
    Uart8250 uart_;
    I8042 i8042_;
    CmosRtc rtc_;
    HypercallHandler hypercalls_;
    HypercallPort hypercall_port_;
    // virtio-blk disks behind a PCI host bridge, present only when the config names disks.
    struct Disk {
        std::unique_ptr<VirtioBlk> blk;
        std::unique_ptr<VirtioKvmLink> link;
        std::unique_ptr<VirtioPci> transport;
    };
    GuestRam virtio_memory_{memory_};
    pci::PciBus pci_{kPciMmioWindow, kPciIoWindow};
    std::vector<Disk> disks_;
    // virtio-net NICs, after the disks on the bus.
    struct Nic {
        std::unique_ptr<VirtioNet> net;
        std::unique_ptr<VirtioKvmLink> link;
        std::unique_ptr<VirtioPci> transport;
    };
    std::vector<Nic> nics_;
    // The virtio-console ([console] virtio = true), also behind the PCI host bridge.
    std::unique_ptr<VirtioConsole> vcon_;
    std::unique_ptr<VirtioKvmLink> vcon_link_;
    std::unique_ptr<VirtioPci> vcon_transport_;
    IoThread io_;  // after the devices: stopped before they go
    std::vector<std::unique_ptr<VcpuSlot>> vcpus_;

    bool watchdog_pending_ = false;  // main thread only
    std::atomic<bool> ended_{false};
    std::mutex exit_mutex_;
    int exit_status_ = 0;
    std::string exit_reason_;
    Clock::time_point exit_time_{};
    Fd done_;  // eventfd: a vCPU thread asks the main thread to wind down

    // Pause: vCPU threads park on pause_cv_ while paused_ (docs/control-api.md).
    std::mutex pause_mutex_;
    std::condition_variable pause_cv_;
    bool paused_ = false;                       // guarded by pause_mutex_
    std::atomic<bool> pause_requested_{false};  // the vCPU loop's cheap check
    std::atomic<bool> shutdown_requested_{false};
};

Machine::Machine(const GuestConfig& config, const RunOptions& options)
    : config_(config),
      options_(options),
      memory_(config.memory_mib << 20),
      // The image is checked and loaded before /dev/kvm is touched: a bad image is a
      // BootError with nothing mapped into any VM.
      boot_(load_multiboot(memory_, config.kernel, config.cmdline, config.modules)),
      vm_(kvm_),
      console_output_(config.console),
      uart_(console_.source(ConsoleSource::Uart),
            [this](bool level) { vm_.irq_line(Uart8250::kCom1Irq, level); }),
      i8042_([this] { request_exit(kExitGuestReset, "reset"); }),
      rtc_(memory_.low_size(), memory_.high_size()),
      hypercalls_(memory_, console_.source(ConsoleSource::Hypercall),
                  HypercallBootInfo{memory_.size(), config.vcpus, config.cmdline}, created_),
      hypercall_port_(
          hypercalls_, [this](int status) { request_exit(status, "halt"); },
          [this] { request_exit(kExitGuestReset, "reboot"); }) {
    // RAM before the irqchip: on PVM hosts registering 64 MiB after KVM_CREATE_IRQCHIP
    // costs ~8 ms, before it ~0.1 ms (bench/kvm_floor shows the same).
    std::uint32_t slot = 0;
    for (const GuestMemory::Region& r : memory_.regions()) {
        vm_.set_user_memory_region(slot++, r.gpa, r.size, r.host);
    }
    vm_.set_tss_addr(kTssAddr);
    vm_.set_identity_map_addr(kIdentityMapAddr);
    vm_.create_irqchip();
    vm_.create_pit2();

    pio_.add(Uart8250::kCom1Base, 8, uart_, "uart8250 COM1");
    pio_.add(I8042::kDataPort, 1, i8042_.data_port(), "i8042 data");
    pio_.add(I8042::kCommandPort, 1, i8042_.command_port(), "i8042 command");
    pio_.add(CmosRtc::kBasePort, 2, rtc_, "cmos rtc");
    pio_.add(hc::kPort, 1, hypercall_port_, "hypercall");
    if (!config.disks.empty() || !config.nets.empty() || config.console.virtio)
        attach_virtio(config.disks, config.nets);

    int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) throw KvmError("eventfd", errno);
    done_.reset(efd);
    // Every input source (stdin, the control and console sockets) goes through one path.
    console_.set_input([this](std::span<const std::uint8_t> bytes) { console_input(bytes); });

    const unsigned count = config.vcpus == 0 ? 1 : config.vcpus;
    for (unsigned id = 0; id < count; ++id) {
        auto slot_ptr = std::make_unique<VcpuSlot>();
        slot_ptr->vcpu = std::make_unique<Vcpu>(vm_, id);
        Vcpu& vcpu = *slot_ptr->vcpu;
        vcpu.set_cpuid(kvm_.supported_cpuid());
        // Only the bootstrap processor starts; the in-kernel LAPIC keeps the others waiting
        // for INIT/SIPI.
        if (id == 0) {
            kvm_sregs sregs = vcpu.sregs();
            kvm_regs regs{};
            multiboot_cpu_state(boot_, sregs, regs);
            vcpu.set_sregs(sregs);
            vcpu.set_regs(regs);
        }
        vcpus_.push_back(std::move(slot_ptr));
    }
}

void Machine::attach_virtio(const std::vector<DiskConfig>& disks,
                            const std::vector<NetConfig>& nets) {
    pio_.add(pci::kConfigAddressPort, pci::kConfigPortsLength, pci_.config_ports(), "pci config");
    pio_.add(kPciIoWindow.base, kPciIoWindow.size, pci_.io_window(), "pci i/o bars");
    mmio_.add(kPciMmioWindow.base, kPciMmioWindow.size, pci_.bar_window(), "pci memory bars");
    for (std::size_t i = 0; i < disks.size(); ++i) {
        const DiskConfig& d = disks[i];
        const auto gsi = static_cast<std::uint32_t>(kFirstDiskGsi + i);
        Disk disk;
        disk.blk = std::make_unique<VirtioBlk>(open_raw_image(d.path, d.read_only), virtio_memory_,
                                               d.read_only, d.serial);
        disk.link =
            std::make_unique<VirtioKvmLink>(vm_, gsi, disk.blk->num_queues(), IrqTrigger::Edge);
        disk.transport = std::make_unique<VirtioPci>(*disk.blk, virtio_memory_, *disk.link,
                                                     static_cast<std::uint8_t>(gsi));
        pci_.attach(pci_.free_slot(), *disk.transport);
        disk.link->connect(*disk.transport, io_);
        disks_.push_back(std::move(disk));
    }
    for (std::size_t j = 0; j < nets.size(); ++j) {
        const auto gsi = static_cast<std::uint32_t>(kFirstDiskGsi + disks.size() + j);
        Nic nic;
        nic.net =
            std::make_unique<VirtioNet>(open_net_backend(nets[j], "net[" + std::to_string(j) + "]"),
                                        virtio_memory_, nets[j].mac);
        nic.link =
            std::make_unique<VirtioKvmLink>(vm_, gsi, nic.net->num_queues(), IrqTrigger::Edge);
        nic.transport = std::make_unique<VirtioPci>(*nic.net, virtio_memory_, *nic.link,
                                                    static_cast<std::uint8_t>(gsi));
        pci_.attach(pci_.free_slot(), *nic.transport);
        nic.link->connect(*nic.transport, io_);
        NetBackend& backend = nic.net->backend();
        VirtioPci& transport = *nic.transport;
        const int fd = backend.rx_fd();
        io_.add(fd, [&transport] { transport.process_queue(VirtioNet::kRxQueue); });
        nic.net->set_rx_watch([this, fd](bool on) { io_.watch(fd, on); });
        backend.attach(io_);
        spdlog::info("net[{}]: virtio-net {} on {}, IOAPIC input {}", j, format_mac(nets[j].mac),
                     backend.describe(), gsi);
        nics_.push_back(std::move(nic));
    }
    if (config_.console.virtio) attach_virtio_console();
    // No firmware: place and enable the BARs as a BIOS would.
    pci_.place_bars();
}

void Machine::attach_virtio_console() {
    vcon_ = std::make_unique<VirtioConsole>(virtio_memory_, console_.source(ConsoleSource::Virtio));
    vcon_link_ = std::make_unique<VirtioKvmLink>(vm_, kVirtioConsoleGsi, vcon_->num_queues(),
                                                 IrqTrigger::Edge);
    vcon_transport_ = std::make_unique<VirtioPci>(*vcon_, virtio_memory_, *vcon_link_,
                                                  static_cast<std::uint8_t>(kVirtioConsoleGsi));
    pci_.attach(pci_.free_slot(), *vcon_transport_);
    vcon_link_->connect(*vcon_transport_, io_);
}

// Host input goes to the virtio-console while a driver runs it, else to COM1.
void Machine::console_input(std::span<const std::uint8_t> bytes) {
    if (vcon_ && vcon_->active()) {
        vcon_->queue_input(bytes);
        vcon_transport_->process_queue(VirtioConsole::kReceiveQueue);
        return;
    }
    uart_.receive(bytes);
}

void Machine::request_exit(int status, std::string reason) {
    {
        std::lock_guard lock(exit_mutex_);
        if (ended()) return;  // the first reason wins
        exit_status_ = status;
        exit_reason_ = std::move(reason);
        exit_time_ = Clock::now();
        ended_.store(true, std::memory_order_release);
    }
    {
        std::lock_guard lock(pause_mutex_);  // parked vCPUs see ended() and go
    }
    pause_cv_.notify_all();
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(done_.get(), &one, sizeof one);
}

void Machine::kick(VcpuSlot& slot) {
    // immediate_exit covers a kick that lands just before the thread enters KVM_RUN.
    std::atomic_ref<std::uint8_t>(slot.vcpu->run_state().immediate_exit).store(1);
    pthread_t handle = slot.handle.load();
    if (handle != pthread_t{}) pthread_kill(handle, kick_signal());
}

void Machine::vcpu_thread(VcpuSlot& slot) {
    slot.handle.store(pthread_self());
    // SIGINT/SIGTERM stay blocked (inherited): the main thread reads them from a signalfd.
    sigset_t kick_set;
    sigemptyset(&kick_set);
    sigaddset(&kick_set, kick_signal());
    pthread_sigmask(SIG_UNBLOCK, &kick_set, nullptr);

    clockid_t clock{};
    if (pthread_getcpuclockid(pthread_self(), &clock) == 0) slot.cpu_clock.store(clock);

    Vcpu& vcpu = *slot.vcpu;
    try {
        while (!ended()) {
            if (pause_requested_.load(std::memory_order_acquire)) {
                park(slot);
                if (ended()) break;
            }
            slot.in_run_since_ns.store(now_ns());
            const bool exited = vcpu.run();
            slot.in_run_since_ns.store(0);
            if (!exited) {
                std::atomic_ref<std::uint8_t>(vcpu.run_state().immediate_exit).store(0);
                if (ended()) break;
                // The main thread decides once every vCPU has answered.
                if (slot.check_halt.exchange(false)) slot.report.store(liveness(vcpu));
                continue;
            }
            if (!handle_exit(vcpu)) break;
        }
    } catch (const std::exception& e) {
        request_exit(kExitVmmError, fmt::format("vCPU {}: {}", vcpu.id(), e.what()));
    }
    timespec ts{};
    if (::clock_gettime(clock, &ts) == 0) {
        slot.final_cpu_ns.store(static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u +
                                static_cast<std::uint64_t>(ts.tv_nsec));
    }
    slot.exited.store(true);
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(done_.get(), &one, sizeof one);
}

void Machine::park(VcpuSlot& slot) {
    std::unique_lock lock(pause_mutex_);
    if (!paused_) return;
    slot.parked.store(true);
    pause_cv_.notify_all();
    pause_cv_.wait(lock, [this] { return !paused_ || ended(); });
    slot.parked.store(false);
}

std::uint64_t Machine::cpu_ns(const VcpuSlot& slot) {
    if (!slot.exited.load()) {
        timespec ts{};
        const clockid_t clock = slot.cpu_clock.load();
        if (clock != clockid_t{} && ::clock_gettime(clock, &ts) == 0) {
            return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u +
                   static_cast<std::uint64_t>(ts.tv_nsec);
        }
    }
    return slot.final_cpu_ns.load();
}

control::GuestInfo Machine::info() {
    control::GuestInfo i;
    i.name = config_.name;
    i.memory_mib = config_.memory_mib;
    i.pid = ::getpid();
    for (const auto& slot : vcpus_) i.vcpu_time_ns += cpu_ns(*slot);
    Clock::time_point end = Clock::now();
    {
        std::lock_guard lock(exit_mutex_);
        if (ended()) {
            i.exit_reason = exit_reason_;
            end = exit_time_;
        }
    }
    const ConsoleCounts counts = console_.counts();
    i.console_uart_bytes = counts.uart;
    i.console_hypercall_bytes = counts.hypercall;
    i.console_virtio_bytes = counts.virtio;
    i.uptime_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(end - created_).count());
    bool paused;
    {
        std::lock_guard lock(pause_mutex_);
        paused = paused_;
    }
    i.state = ended()               ? "ended"
              : paused              ? "paused"
              : shutdown_requested_ ? "shutting-down"
                                    : "running";
    return i;
}

void Machine::pause() {
    std::unique_lock lock(pause_mutex_);
    if (ended()) throw control::ControlError("the guest has ended");
    if (paused_) throw control::ControlError("already paused");
    paused_ = true;
    pause_requested_.store(true, std::memory_order_release);
    // Every vCPU out of KVM_RUN and parked before the reply: "paused" means no guest
    // instruction runs from now on. Kicks repeat, as one can race with a thread's entry.
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    for (;;) {
        bool all = true;
        for (auto& slot : vcpus_) {
            if (slot->parked.load() || slot->exited.load()) continue;
            all = false;
            kick(*slot);
        }
        if (all || ended()) return;
        if (Clock::now() > deadline) {
            throw control::ControlError("the vCPUs did not stop within 5 s (still pausing)");
        }
        pause_cv_.wait_for(lock, std::chrono::milliseconds(2));
    }
}

void Machine::resume() {
    {
        std::lock_guard lock(pause_mutex_);
        if (ended()) throw control::ControlError("the guest has ended");
        if (!paused_) throw control::ControlError("not paused");
        paused_ = false;
        pause_requested_.store(false, std::memory_order_release);
    }
    pause_cv_.notify_all();
}

void Machine::request_shutdown() {
    if (ended()) throw control::ControlError("the guest has ended");
    // The guest's PM takes the request on the interrupt (docs/hypercall-abi.md, kEvents).
    // While paused the edge waits in the IOAPIC until the vCPU runs again.
    hypercalls_.post_events(hc::kEventPowerOff);
    vm_.irq_line(hc::kEventIrq, true);
    vm_.irq_line(hc::kEventIrq, false);
    shutdown_requested_.store(true);
}

void Machine::destroy() {
    if (ended()) throw control::ControlError("the guest has ended");
    request_exit(128 + SIGTERM, "destroyed");
}

Liveness Machine::liveness(Vcpu& vcpu) {
    switch (vcpu.mp_state().mp_state) {
        case KVM_MP_STATE_HALTED:
            return (vcpu.regs().rflags & kRflagsIf) ? Liveness::Alive : Liveness::Dead;
        case KVM_MP_STATE_UNINITIALIZED:
        case KVM_MP_STATE_INIT_RECEIVED:
            return Liveness::Parked;
        default:
            return Liveness::Alive;
    }
}

bool Machine::handle_exit(Vcpu& vcpu) {
    kvm_run& run = vcpu.run_state();
    switch (run.exit_reason) {
        case KVM_EXIT_IO: {
            const auto& io = run.io;
            const std::uint64_t bytes = std::uint64_t{io.size} * io.count;
            if (io.data_offset > kvm_.vcpu_mmap_size() ||
                bytes > kvm_.vcpu_mmap_size() - io.data_offset) {
                request_exit(kExitVmmError, "KVM_EXIT_IO data lies outside kvm_run");
                return false;
            }
            auto* data = reinterpret_cast<std::uint8_t*>(&run) + io.data_offset;
            // String I/O (rep ins/outs) arrives as count consecutive elements.
            for (std::uint32_t i = 0; i < io.count && !ended(); ++i) {
                std::span<std::uint8_t> element(data + std::size_t{i} * io.size, io.size);
                if (io.direction == KVM_EXIT_IO_OUT) {
                    pio_.write(io.port, element);
                } else {
                    pio_.read(io.port, element);
                }
            }
            return !ended();
        }
        case KVM_EXIT_MMIO: {
            auto& mmio = run.mmio;
            const std::size_t len = std::min<std::size_t>(mmio.len, sizeof mmio.data);
            if (mmio.is_write) {
                mmio_.write(mmio.phys_addr, std::span<const std::uint8_t>(mmio.data, len));
            } else {
                mmio_.read(mmio.phys_addr, std::span<std::uint8_t>(mmio.data, len));
            }
            return !ended();
        }
        case KVM_EXIT_HLT:
            // Only without an in-kernel LAPIC; handled the same way for completeness.
            if (!(vcpu.regs().rflags & kRflagsIf)) {
                dump_vcpu(vcpu);
                request_exit(kExitGuestFault, kHaltedWithInterruptsOff);
                return false;
            }
            return true;
        case KVM_EXIT_INTR:
            return true;
        case KVM_EXIT_SHUTDOWN:
            fmt::print(stderr, "ukvm: vCPU {}: triple fault (KVM_EXIT_SHUTDOWN)\n", vcpu.id());
            dump_vcpu(vcpu);
            request_exit(kExitGuestFault, "triple fault");
            return false;
        case KVM_EXIT_INTERNAL_ERROR: {
            const auto& ie = run.internal;
            std::string data;
            for (std::uint32_t i = 0; i < ie.ndata && i < std::size(ie.data); ++i) {
                data += fmt::format(" {:#x}", ie.data[i]);
            }
            fmt::print(stderr, "ukvm: vCPU {}: KVM internal error, suberror {}{}, data:{}\n",
                       vcpu.id(), ie.suberror,
                       ie.suberror == KVM_INTERNAL_ERROR_EMULATION ? " (emulation failure)" : "",
                       data);
            dump_vcpu(vcpu);
            request_exit(kExitGuestFault, fmt::format("KVM internal error {}", ie.suberror));
            return false;
        }
        case KVM_EXIT_FAIL_ENTRY:
            fmt::print(stderr, "ukvm: vCPU {}: VM entry failed, hardware reason {:#x}, cpu {}\n",
                       vcpu.id(), run.fail_entry.hardware_entry_failure_reason, run.fail_entry.cpu);
            dump_vcpu(vcpu);
            request_exit(kExitGuestFault, "VM entry failed");
            return false;
        case KVM_EXIT_SYSTEM_EVENT:
            switch (run.system_event.type) {
                case KVM_SYSTEM_EVENT_RESET:
                    request_exit(kExitGuestReset, "reset");
                    break;
                case KVM_SYSTEM_EVENT_SHUTDOWN:
                    request_exit(0, "shutdown");
                    break;
                default:
                    dump_vcpu(vcpu);
                    request_exit(kExitGuestFault,
                                 fmt::format("system event {}", run.system_event.type));
                    break;
            }
            return false;
        default:
            request_exit(kExitVmmError,
                         fmt::format("unexpected KVM exit reason {}", run.exit_reason));
            return false;
    }
}

// The guest is hung when every vCPU is halted with interrupts off or was never started: then
// nothing (no timer, no device, no other vCPU) can wake any of them. A vCPU that has not
// exited to user space for a second is only a candidate; it is kicked out of KVM_RUN to
// report its state, and the verdict waits until all vCPUs have reported.
void Machine::watchdog() {
    if (watchdog_pending_) {
        bool any_dead = false, all_stuck = true;
        for (auto& slot : vcpus_) {
            const Liveness l = slot->report.load();
            if (l == Liveness::Unknown) {
                if (slot->check_halt.load()) kick(*slot);  // not answered yet: ask again
                return;
            }
            any_dead = any_dead || l == Liveness::Dead;
            all_stuck = all_stuck && (l == Liveness::Dead || l == Liveness::Parked);
        }
        watchdog_pending_ = false;
        if (any_dead && all_stuck) {
            request_exit(kExitGuestFault, kHaltedWithInterruptsOff);
        }
        return;
    }
    const std::int64_t now = now_ns();
    const std::int64_t quiet = std::chrono::nanoseconds(kWatchdogQuiet).count();
    for (auto& slot : vcpus_) {
        const std::int64_t since = slot->in_run_since_ns.load();
        if (since == 0 || now - since < quiet) return;  // this one talks to the VMM
    }
    for (auto& slot : vcpus_) {
        slot->report.store(Liveness::Unknown);
        slot->check_halt.store(true);
        kick(*slot);
    }
    watchdog_pending_ = true;
}

void Machine::stop_vcpus() {
    for (auto& slot : vcpus_) {
        // Repeated: a kick can race with the thread's own start.
        while (slot->thread.joinable() && !slot->exited.load()) {
            kick(*slot);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        if (slot->thread.joinable()) slot->thread.join();
    }
}

int Machine::run() {
    install_kick_handler();
    StopSignals signals;  // before any thread exists, so all inherit the blocked mask

    // The control API and the console socket, after StopSignals: their threads must
    // inherit the blocked SIGINT/SIGTERM too. Both are attached to the console until the
    // end of run(), before they go.
    control::HookedGuestControl control(control::GuestControlHooks{
        .info = [this] { return info(); },
        .pause = [this] { pause(); },
        .resume = [this] { resume(); },
        .request_shutdown = [this] { request_shutdown(); },
        .destroy = [this] { destroy(); },
        .console_input = [this](std::span<const std::uint8_t> b) { console_.input(b); },
    });
    std::optional<control::ControlServer> api;
    std::optional<control::ControlServer> console_socket;
    if (!config_.api_socket.empty()) api.emplace(config_.api_socket, control);
    if (config_.console.output == ConsoleOutput::Socket) {
        console_socket.emplace(config_.console.socket, control, control::ServerMode::ConsoleOnly);
    }
    struct Attach {
        Console& console;
        ConsoleSink* sink;
        Attach(Console& c, ConsoleSink* s) : console(c), sink(s) {
            if (sink) console.attach(*sink);
        }
        ~Attach() {
            if (sink) console.detach(*sink);
        }
    };
    const Attach api_console(console_, api ? &*api : nullptr);
    const Attach socket_console(console_, console_socket ? &*console_socket : nullptr);

    std::optional<RawTerminal> raw;
    std::optional<InputReader> input;
    if (console_reads_stdin(config_.console)) {
        raw.emplace(STDIN_FILENO);
        input.emplace(STDIN_FILENO, [this](std::span<const std::uint8_t> bytes) {
            try {
                console_.input(bytes);
            } catch (const std::exception& e) {
                spdlog::warn("console input dropped: {}", e.what());
            }
        });
    }

    // Started here, not in the constructor, so the I/O thread inherits the blocked signals.
    if (!disks_.empty() || !nics_.empty() || vcon_) io_.start();
    for (auto& slot : vcpus_) {
        VcpuSlot& s = *slot;
        s.thread = std::thread([this, &s] { vcpu_thread(s); });
    }

    while (!ended()) {
        std::array<pollfd, 2> fds{{{signals.fd(), POLLIN, 0}, {done_.get(), POLLIN, 0}}};
        int r = ::poll(fds.data(), fds.size(), kWatchdogPollMs);
        if (r < 0 && errno != EINTR) {
            request_exit(kExitVmmError, fmt::format("poll: {}", std::strerror(errno)));
            break;
        }
        if (fds[0].revents & POLLIN) {
            if (auto sig = signals.take()) {
                request_exit(128 + *sig,
                             *sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)");
            }
        }
        if (fds[1].revents & POLLIN) {
            std::uint64_t v;
            [[maybe_unused]] ssize_t n = ::read(done_.get(), &v, sizeof v);
            bool all_exited = true;
            for (auto& slot : vcpus_) all_exited = all_exited && slot->exited.load();
            if (all_exited && !ended()) request_exit(kExitVmmError, "all vCPUs stopped");
        }
        if (!ended()) watchdog();
    }
    stop_vcpus();
    io_.stop();
    if (exit_reason_ == kHaltedWithInterruptsOff) {
        for (auto& slot : vcpus_) {
            if (slot->report.load() == Liveness::Dead) dump_vcpu(*slot->vcpu);
        }
    }
    input.reset();
    raw.reset();

    spdlog::debug("guest ended: {} (exit status {})", exit_reason_, exit_status_);
    if (exit_status_ == kExitGuestFault || exit_status_ == kExitVmmError) {
        if (exit_reason_ != "halt") fmt::print(stderr, "ukvm: {}\n", exit_reason_);
    }
    if (options_.timing) {
        auto first = hypercall_port_.first_call();
        fmt::print(stderr,
                   "ukvm-timing: first-hypercall-us={} exit-us={} rss-kib={} "
                   "guest-resident-kib={}\n",
                   first ? us_since_start(*first) : -1, us_since_start(exit_time_),
                   resident_set_bytes() / 1024, memory_.resident_bytes() / 1024);
    }
    return exit_status_;
}

}  // namespace

int run_guest(const GuestConfig& config, const RunOptions& options) {
    Machine machine(config, options);
    return machine.run();
}

}  // namespace ukvm
