// Loading an ELF64 executable (a boot module) into a user address space.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "address_space.hpp"

namespace kernel::elf {

// Copies every PT_LOAD segment of the image into fresh pages of as; returns the entry
// point, or 0 if the image is malformed, outside the user half, or memory ran out.
uint64_t load(const uint8_t* image, size_t size, AddressSpace& as);

}  // namespace kernel::elf
