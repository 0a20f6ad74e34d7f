#include "vmm/boot/elf.hpp"

#include <elf.h>
#include <fmt/format.h>

#include <cstring>

#include "vmm/machine.hpp"

namespace ukvm {

namespace {

template <typename T>
T read_struct(std::span<const std::uint8_t> file, std::uint64_t offset) {
    T value;
    std::memcpy(&value, file.data() + offset, sizeof(T));
    return value;
}

// Whether [offset, offset + size) lies inside the file, without wrapping.
bool in_file(std::span<const std::uint8_t> file, std::uint64_t offset, std::uint64_t size) {
    return offset <= file.size() && size <= file.size() - offset;
}

template <typename Ehdr, typename Phdr>
ElfImage parse(std::span<const std::uint8_t> file, const std::string& name, bool is64) {
    if (!in_file(file, 0, sizeof(Ehdr))) {
        throw BootError(fmt::format("{}: truncated ELF header ({} bytes)", name, file.size()));
    }
    const auto eh = read_struct<Ehdr>(file, 0);
    if (eh.e_ident[EI_DATA] != ELFDATA2LSB) {
        throw BootError(fmt::format("{}: not a little-endian ELF file", name));
    }
    if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
        throw BootError(fmt::format("{}: ELF type {} is not an executable", name, eh.e_type));
    }
    if (eh.e_machine != EM_386 && eh.e_machine != EM_X86_64) {
        throw BootError(fmt::format("{}: ELF machine {} is not x86", name, eh.e_machine));
    }
    if (eh.e_phnum == 0) throw BootError(fmt::format("{}: ELF file has no program headers", name));
    if (eh.e_phentsize < sizeof(Phdr)) {
        throw BootError(fmt::format("{}: ELF program header size {} is below {}", name,
                                    eh.e_phentsize, sizeof(Phdr)));
    }
    const std::uint64_t table = std::uint64_t{eh.e_phnum} * eh.e_phentsize;  // cannot wrap
    if (!in_file(file, eh.e_phoff, table)) {
        throw BootError(
            fmt::format("{}: ELF program headers at offset {:#x} run past the end "
                        "of the file ({} bytes)",
                        name, static_cast<std::uint64_t>(eh.e_phoff), file.size()));
    }
    ElfImage image;
    image.is64 = is64;
    image.entry = eh.e_entry;
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        const auto ph = read_struct<Phdr>(file, eh.e_phoff + std::uint64_t{i} * eh.e_phentsize);
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
        LoadSegment seg{ph.p_offset, ph.p_filesz, ph.p_paddr, ph.p_vaddr, ph.p_memsz};
        if (seg.file_size > seg.mem_size) {
            throw BootError(fmt::format(
                "{}: segment {} has a file size ({:#x}) larger than its memory size ({:#x})", name,
                i, seg.file_size, seg.mem_size));
        }
        if (!in_file(file, seg.file_offset, seg.file_size)) {
            throw BootError(
                fmt::format("{}: segment {} (offset {:#x}, {:#x} bytes) runs past the "
                            "end of the file ({} bytes)",
                            name, i, seg.file_offset, seg.file_size, file.size()));
        }
        if (seg.paddr + seg.mem_size < seg.paddr || seg.vaddr + seg.mem_size < seg.vaddr) {
            throw BootError(fmt::format("{}: segment {} address range overflows", name, i));
        }
        image.segments.push_back(seg);
    }
    if (image.segments.empty()) throw BootError(fmt::format("{}: no loadable ELF segments", name));
    return image;
}

}  // namespace

bool is_elf(std::span<const std::uint8_t> file) {
    return file.size() >= SELFMAG && std::memcmp(file.data(), ELFMAG, SELFMAG) == 0;
}

ElfImage parse_elf(std::span<const std::uint8_t> file, const std::string& name) {
    if (!is_elf(file)) throw BootError(fmt::format("{}: not an ELF file", name));
    if (file.size() <= EI_CLASS) throw BootError(fmt::format("{}: truncated ELF header", name));
    switch (file[EI_CLASS]) {
        case ELFCLASS32:
            return parse<Elf32_Ehdr, Elf32_Phdr>(file, name, false);
        case ELFCLASS64:
            return parse<Elf64_Ehdr, Elf64_Phdr>(file, name, true);
        default:
            throw BootError(fmt::format("{}: unknown ELF class {}", name, file[EI_CLASS]));
    }
}

}  // namespace ukvm
