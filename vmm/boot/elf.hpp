// ELF32/ELF64 program headers, as far as a Multiboot loader needs them: the PT_LOAD segments
// and the entry point, every offset and size checked against the file.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ukvm {

struct LoadSegment {
    std::uint64_t file_offset;
    std::uint64_t file_size;
    std::uint64_t paddr;
    std::uint64_t vaddr;
    std::uint64_t mem_size;
};

struct ElfImage {
    bool is64 = false;
    std::uint64_t entry = 0;
    std::vector<LoadSegment> segments;  // PT_LOAD with a non-zero memory size, file order
};

bool is_elf(std::span<const std::uint8_t> file);

// Throws BootError naming `name` for anything malformed or truncated.
ElfImage parse_elf(std::span<const std::uint8_t> file, const std::string& name);

}  // namespace ukvm
