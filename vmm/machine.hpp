// A booted guest: builds the VM from a GuestConfig, runs it to the end, says why it ended.
#pragma once

#include <stdexcept>
#include <string>

#include "vmm/config.hpp"

namespace ukvm {

// A kernel or module image that cannot be booted (malformed, truncated, overlapping,
// larger than guest RAM): a user error, reported before anything is mapped. Exit 2.
class BootError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// ukvm's exit statuses besides the guest's own (0..255 from the halt hypercall).
inline constexpr int kExitUsage = 2;       // bad CLI, config or image
inline constexpr int kExitGuestFault = 3;  // triple fault, emulation failure, hung guest
inline constexpr int kExitGuestReset = 4;  // the guest reset/rebooted (kReboot, i8042 or KVM reset)
inline constexpr int kExitVmmError = 1;    // the host refused (no /dev/kvm, ioctl failed)

struct RunOptions {
    // Print "ukvm-timing: first-hypercall-us=N exit-us=M rss-kib=R guest-resident-kib=G" on
    // stderr at exit: times from process start; the process's resident set and how much
    // of it is guest RAM (used by bench/).
    bool timing = false;
};

// Boots the guest and runs it until it halts, resets or faults; returns ukvm's exit status.
int run_guest(const GuestConfig& config, const RunOptions& options = {});

}  // namespace ukvm
