// Privileges: which IPC primitives a process may use (trap mask), whom it may send to
// (send mask over slot indices), which kernel calls it may make, and its scheduling
// class. Filled from the policy table in table.cpp.
#pragma once

#include <stdint.h>

namespace kernel {

enum class ProcClass : uint8_t { kTask, kServer, kUser };

struct Priv {
    ProcClass cls = ProcClass::kUser;
    uint32_t trap_mask = 0;  // bit n: IpcOp n allowed
    uint64_t send_mask = 0;  // bit i: may send to slot index i (nr + kNrTasks)
    uint32_t call_mask = 0;  // bit n: KernelCall n allowed
    uint64_t irq_mask = 0;   // IRQ lines it may subscribe to
    uint16_t io_base = 0;    // I/O ports it may access through kSysDevIo: [base, base+count)
    uint16_t io_count = 0;
    uint64_t mem_base = 0;  // device memory it may map through kSysMapPhys:
    uint64_t mem_len = 0;   //   [mem_base, mem_base + mem_len)
    // Granted at run time by the PCI server (kSysPrivCtl): more device memory to map.
    struct MemRange {
        uint64_t base = 0, len = 0;
    };
    static constexpr int kGrantedRanges = 6;
    MemRange granted_mem[kGrantedRanges];
    bool driver = false;             // may receive kSysPrivCtl grants and kMapContiguous memory
    uint8_t priority = 7;            // scheduling queue, 0 highest
    uint64_t quantum_ns = 50000000;  // never 0: a zero quantum would expire at once
};

}  // namespace kernel
