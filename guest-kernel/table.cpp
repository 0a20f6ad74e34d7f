#include "table.hpp"

#include <ukvm/kernel.h>

#include "lib.hpp"
#include "proc.hpp"

namespace kernel::table {

using namespace ukvm::kernel;

namespace {

constexpr uint32_t bit(int n) {
    return 1u << n;
}
constexpr uint64_t slot_bit(Endpoint task) {
    return 1ull << (task + kNrTasks);
}
constexpr uint64_t kMs = 1000000;

constexpr uint32_t kAllTraps =
    bit(kSend) | bit(kReceive) | bit(kSendRec) | bit(kNotify) | bit(kSendNb) | bit(kReplyRecv);
// Every call but kSysPrivCtl, which only the PCI server makes.
constexpr uint32_t kAllCalls = ~bit(kSysPrivCtl);
// User programs exit, read the clock, ask who they are and find a server by program
// name (to reach DS or PM) directly; everything else goes through the servers.
constexpr uint32_t kUserCalls = bit(kSysExit) | bit(kSysTimes) | bit(kSysGetInfo) |
                                bit(kSysFindProc) | bit(kSysMapAnon) |
                                bit(kSysUnmap) |                               // (until VM exists)
                                bit(kSysGrantCreate) | bit(kSysGrantRevoke) |  // I/O buffers
                                bit(kSysSigReturn);

// Class defaults: servers may do anything IPC-wise; users may only SENDREC, to servers,
// SYSTEM and the VMM (the user send mask gains each server's slot when it starts).
constexpr Priv kServerPriv{.cls = ProcClass::kServer,
                           .trap_mask = kAllTraps,
                           .send_mask = ~0ull,
                           .call_mask = kAllCalls,
                           .granted_mem = {},
                           .priority = 4,
                           .quantum_ns = 50 * kMs};
constexpr Priv kUserPriv{.cls = ProcClass::kUser,
                         .trap_mask = bit(kSendRec),
                         .send_mask = slot_bit(kSystem) | slot_bit(kVmm),
                         .call_mask = kUserCalls,
                         .granted_mem = {},
                         .priority = 7,
                         .quantum_ns = 200 * kMs};

struct Policy {
    const char* name;
    Priv priv;
};

constexpr Priv driver(uint64_t irqs, uint16_t io_base, uint16_t io_count) {
    Priv p = kServerPriv;
    p.irq_mask = irqs;
    p.io_base = io_base;
    p.io_count = io_count;
    p.priority = 2;
    return p;
}

constexpr Priv tester() {
    Priv p = kServerPriv;
    p.priority = 2;
    return p;
}

// The PCI bus server: configuration mechanism #1's ports, and the one process that may
// grant a driver its device's memory and IRQ (kSysPrivCtl).
constexpr Priv pci_server() {
    Priv p = driver(0, 0xcf8, 8);
    p.call_mask |= bit(kSysPrivCtl);
    return p;
}

// A PCI device driver: no devices of its own; PCI grants it its device's BARs and IRQ at
// run time, and it may take DMA memory (kMapContiguous).
constexpr Priv pci_driver() {
    Priv p = driver(0, 0, 0);
    p.driver = true;
    return p;
}

// ipc_devices plays a driver: COM1's IRQ and ports, the IOAPIC's page (read-only use), and
// DMA memory.
constexpr Priv test_driver() {
    Priv p = driver(1u << 4, 0x3f8, 8);
    p.driver = true;  // DMA memory and grant translation (but no kSysPrivCtl)
    p.mem_base = 0xfec00000;
    p.mem_len = 0x1000;
    return p;
}

// PM also takes the host's power-off requests: IRQ hc::kEventIrq (9), then kEvents.
constexpr Priv power_manager() {
    Priv p = kServerPriv;
    p.irq_mask = 1u << 9;
    return p;
}

constexpr Policy kPolicies[] = {
    {"init", kServerPriv},
    {"pm", power_manager()},
    {"rs", kServerPriv},
    {"ds", kServerPriv},
    {"tty", driver(1u << 4, 0x3f8, 8)},
    {"pci", pci_server()},
    {"vblk", pci_driver()},   // virtio-blk
    {"blktest", tester()},    // block-device tests (sleeps on alarms while a driver restarts)
    {"blkbench", tester()},   // block-device benchmark
    {"inet", kServerPriv},    // TCP/IP (lwIP)
    {"vnet", pci_driver()},   // virtio-net
    {"vcons", pci_driver()},  // virtio-console
    {"vfs", kServerPriv},
    {"mfs", kServerPriv},
    // The in-guest test suite: the runner, its areas and their helper. The areas run
    // above their helpers (priority 2), so a test gets the CPU back as soon as it can.
    {"ipc_test", tester()},
    {"ipc_rules", tester()},
    {"ipc_deadlock", tester()},
    {"ipc_notify", tester()},
    {"ipc_grants", tester()},
    {"ipc_faults", tester()},
    {"ipc_timers", tester()},
    {"ipc_devices", test_driver()},  // exercises IRQ, port and device-memory calls
    {"ipc_rs", tester()},            // starts RS (with DS and hang) and kills what it supervises
    {"ipc_bench", tester()},
    {"ipc_echo", kServerPriv},
    {"idle", kServerPriv},  // sleeps through CLOCK alarms: needs RECEIVE
    {"fuzz", kServerPriv},  // throws every kind of call at the kernel
    {"hang", kServerPriv},  // a service that stops answering RS's heartbeat
};

}  // namespace

Priv privileges_for(const char* name) {
    for (const Policy& p : kPolicies)
        if (strncmp(p.name, name, kNameLen) == 0) return p.priv;
    return kUserPriv;
}

}  // namespace kernel::table
