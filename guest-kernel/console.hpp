// The kernel's console and power control: the ukvm hypercalls when the VMM answers,
// otherwise COM1 and QEMU's isa-debug-exit device (port 0xf4).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kernel::console {

// Guest exit statuses the kernel itself chooses (documented in docs/guest-kernel.md).
inline constexpr int kStatusPanic = 70;     // kernel panic (EX_SOFTWARE)
inline constexpr int kStatusDeadlock = 71;  // every process blocked, nothing can wake them

void init();
void write(const char* s, size_t n);
// Ends the VM with status. On QEMU isa-debug-exit makes that (status << 1) | 1.
[[noreturn]] void halt(int status);
// Reboots: the kReboot hypercall (ukvm exits 4), else the keyboard controller's reset line.
[[noreturn]] void reboot();

}  // namespace kernel::console
