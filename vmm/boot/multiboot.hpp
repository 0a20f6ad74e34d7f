// Multiboot (v1) loader: the kernel (ELF32, ELF64 or a.out kludge), its modules and the
// Multiboot information structure, and the CPU state the specification prescribes.
//
// Everything is validated before the first byte of guest memory is written: a BootError
// leaves guest memory untouched.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "vmm/config.hpp"
#include "vmm/guest_memory.hpp"

namespace ukvm {

inline constexpr std::uint32_t kMultibootHeaderMagic = 0x1BADB002;
inline constexpr std::uint32_t kMultibootBootloaderMagic = 0x2BADB002;
inline constexpr std::uint64_t kMultibootSearchBytes = 8192;
// Where the information structure, memory map, module list and strings go.
inline constexpr std::uint64_t kMultibootInfoBase = 0x9000;
inline constexpr std::uint64_t kMultibootInfoLimit = 0x9F000;
inline constexpr std::uint64_t kKernelMinAddress = 1ull << 20;

// Multiboot information flags this loader sets.
namespace mbi {
inline constexpr std::uint32_t kMemory = 1u << 0;
inline constexpr std::uint32_t kCmdline = 1u << 2;
inline constexpr std::uint32_t kMods = 1u << 3;
inline constexpr std::uint32_t kMmap = 1u << 6;
inline constexpr std::uint32_t kLoaderName = 1u << 9;
}  // namespace mbi

struct MultibootBoot {
    std::uint32_t entry = 0;      // physical entry point
    std::uint32_t info_addr = 0;  // EBX
    std::uint64_t kernel_start = 0;
    std::uint64_t kernel_end = 0;   // end of the kernel image (bss included)
    std::uint64_t modules_end = 0;  // end of the last module (== kernel_end without modules)
};

// Loads kernel + modules into memory. cmdline is the user's kernel command line (the kernel
// sees "<kernel file name>[ <cmdline>]"). Throws BootError naming the file and the problem.
MultibootBoot load_multiboot(GuestMemory& memory, const std::filesystem::path& kernel,
                             const std::string& cmdline, std::span<const ModuleConfig> modules);

// The same, from bytes already in memory (the kernel's name is used in messages and cmdline).
struct ModuleImage {
    std::string name;  // file name, first word of the module's command line
    std::string args;
    std::vector<std::uint8_t> bytes;
};
MultibootBoot load_multiboot(GuestMemory& memory, std::span<const std::uint8_t> kernel,
                             const std::string& kernel_name, const std::string& cmdline,
                             std::span<const ModuleImage> modules);

// The machine state at the kernel's entry: 32-bit protected mode, flat segments, paging off,
// interrupts off, EAX = 0x2BADB002, EBX = the information structure.
void multiboot_cpu_state(const MultibootBoot& boot, kvm_sregs& sregs, kvm_regs& regs);

}  // namespace ukvm
