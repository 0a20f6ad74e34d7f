// The boot image: the multiboot modules (ELF programs) as the kernel found them, and
// starting a process from one.
#pragma once

#include <stdint.h>

#include "proc.hpp"

namespace kernel::boot_image {

inline constexpr int kMaxModules = 32;
inline constexpr int kCmdlineLen = 256;

struct Module {
    uint64_t start, end;        // physical
    char cmdline[kCmdlineLen];  // "<path> <args>"
    char name[kNameLen];        // the path's file name
};

void add(uint64_t start, uint64_t end, const char* cmdline);
int count();
const Module* get(int index);

// Makes p reachable: users may send to every server (called for every new process).
void connect(Proc* p);

// Starts module index in a fresh process; returns it, or nullptr with *error set. args,
// when given, replace the module's own arguments on the command line.
Proc* spawn(int index, Endpoint parent, int32_t* error, const char* args = nullptr);

// Replaces p's program with module index (args as for spawn): same process, endpoint,
// parent and privileges; new memory, registers and FPU state; runnable. On failure p is
// unchanged.
int32_t exec(Proc* p, int index, const char* args);

}  // namespace kernel::boot_image
