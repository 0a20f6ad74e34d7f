// Reading the Multiboot v1 information: memory map -> frames, modules -> boot image.
#pragma once

#include <stdint.h>

namespace kernel::multiboot {

inline constexpr uint32_t kBootMagic = 0x2badb002;

void read(uint32_t info_address);
const char* cmdline();      // the kernel's own command line ("" if none)
const char* loader_name();  // the boot loader's name ("" if none), e.g. "ukvm"

}  // namespace kernel::multiboot
