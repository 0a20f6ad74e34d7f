#include "vmm/boot/multiboot.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>

#include "vmm/boot/elf.hpp"
#include "vmm/machine.hpp"

namespace ukvm {

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kLowMemoryEnd = 0x9FC00;  // conventional memory below the EBDA
constexpr std::uint64_t kHighMemoryStart = 1ull << 20;
constexpr std::uint64_t k4GiB = 1ull << 32;
constexpr std::uint32_t kSupportedRequiredFlags = 0x3;  // page-aligned modules, memory info
constexpr std::uint32_t kAoutKludge = 1u << 16;
constexpr std::uint32_t kMmapAvailable = 1, kMmapReserved = 2;
constexpr std::uint64_t kInfoStructBytes = 120;  // up to the framebuffer fields, all zero
constexpr std::uint64_t kMmapEntryBytes = 24;
constexpr std::uint64_t kModEntryBytes = 16;
constexpr char kLoaderName[] = "ukvm";

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) {
    return (v + a - 1) & ~(a - 1);
}

std::uint32_t le32(std::span<const std::uint8_t> b, std::uint64_t off) {
    std::uint32_t v;
    std::memcpy(&v, b.data() + off, sizeof v);
    return v;
}

std::vector<std::uint8_t> read_file(const std::filesystem::path& path, std::uint64_t limit,
                                    std::uint64_t ram) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) throw BootError(fmt::format("{}: cannot read: {}", path.string(), ec.message()));
    if (size > limit) {
        throw BootError(fmt::format("{}: {} bytes do not fit in guest RAM ({} bytes)",
                                    path.string(), size, ram));
    }
    std::ifstream in(path, std::ios::binary);
    std::vector<std::uint8_t> bytes(size);
    if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size))) {
        throw BootError(fmt::format("{}: cannot read: {}", path.string(), std::strerror(errno)));
    }
    return bytes;
}

struct Header {
    std::uint64_t offset;
    std::uint32_t flags;
};

Header find_header(std::span<const std::uint8_t> file, const std::string& name) {
    const std::uint64_t end = std::min<std::uint64_t>(file.size(), kMultibootSearchBytes);
    for (std::uint64_t off = 0; off + 4 <= end; off += 4) {
        if (le32(file, off) != kMultibootHeaderMagic) continue;
        if (off + 12 > file.size()) {
            throw BootError(
                fmt::format("{}: truncated multiboot header at offset {:#x}", name, off));
        }
        const std::uint32_t flags = le32(file, off + 4);
        const std::uint32_t checksum = le32(file, off + 8);
        if (static_cast<std::uint32_t>(kMultibootHeaderMagic + flags + checksum) != 0) {
            throw BootError(fmt::format(
                "{}: multiboot header at offset {:#x} has a bad checksum ({:#x} for flags {:#x})",
                name, off, checksum, flags));
        }
        return {off, flags};
    }
    throw BootError(fmt::format("{}: no multiboot header (magic {:#x}) in the first {} bytes", name,
                                kMultibootHeaderMagic, kMultibootSearchBytes));
}

// The a.out kludge: the header's address fields say where the file goes.
ElfImage kludge_image(std::span<const std::uint8_t> file, const Header& h,
                      const std::string& name) {
    if (h.offset + 32 > file.size()) {
        throw BootError(
            fmt::format("{}: truncated multiboot header (a.out kludge fields) at "
                        "offset {:#x}",
                        name, h.offset));
    }
    const std::uint32_t header_addr = le32(file, h.offset + 12);
    const std::uint32_t load_addr = le32(file, h.offset + 16);
    const std::uint32_t load_end_addr = le32(file, h.offset + 20);
    const std::uint32_t bss_end_addr = le32(file, h.offset + 24);
    const std::uint32_t entry_addr = le32(file, h.offset + 28);
    if (load_addr > header_addr || header_addr - load_addr > h.offset) {
        throw BootError(
            fmt::format("{}: multiboot load_addr {:#x} does not fit header_addr "
                        "{:#x} at file offset {:#x}",
                        name, load_addr, header_addr, h.offset));
    }
    const std::uint64_t file_offset = h.offset - (header_addr - load_addr);
    std::uint64_t load_size = file.size() - file_offset;
    if (load_end_addr != 0) {
        if (load_end_addr < load_addr) {
            throw BootError(
                fmt::format("{}: multiboot load_end_addr {:#x} is below load_addr "
                            "{:#x}",
                            name, load_end_addr, load_addr));
        }
        load_size = load_end_addr - load_addr;
        if (load_size > file.size() - file_offset) {
            throw BootError(
                fmt::format("{}: multiboot load range ({:#x} bytes from offset {:#x}) "
                            "runs past the end of the file ({} bytes)",
                            name, load_size, file_offset, file.size()));
        }
    }
    std::uint64_t mem_size = load_size;
    if (bss_end_addr != 0) {
        if (bss_end_addr < load_addr + load_size) {
            throw BootError(
                fmt::format("{}: multiboot bss_end_addr {:#x} is below the end of "
                            "the loaded image {:#x}",
                            name, bss_end_addr, load_addr + load_size));
        }
        mem_size = bss_end_addr - load_addr;
    }
    ElfImage image;
    image.entry = entry_addr;
    if (mem_size > 0) {
        image.segments.push_back({file_offset, load_size, load_addr, load_addr, mem_size});
    }
    return image;
}

// Translates the entry point to a physical address inside a loaded segment.
std::optional<std::uint64_t> physical_entry(const ElfImage& image) {
    for (const LoadSegment& s : image.segments) {
        if (image.entry >= s.vaddr && image.entry - s.vaddr < s.mem_size) {
            return s.paddr + (image.entry - s.vaddr);
        }
    }
    for (const LoadSegment& s : image.segments) {
        if (image.entry >= s.paddr && image.entry - s.paddr < s.mem_size) return image.entry;
    }
    return std::nullopt;
}

// Builds the information area as a byte image at kMultibootInfoBase.
class InfoArea {
public:
    std::uint64_t alloc(std::uint64_t bytes, std::uint64_t align) {
        std::uint64_t off = align_up(bytes_.size(), align);
        bytes_.resize(off + bytes);
        return kMultibootInfoBase + off;
    }
    std::uint32_t add_string(const std::string& s) {
        std::uint64_t addr = alloc(s.size() + 1, 1);
        std::memcpy(at(addr), s.data(), s.size());
        return static_cast<std::uint32_t>(addr);
    }
    void put32(std::uint64_t addr, std::uint32_t v) { std::memcpy(at(addr), &v, sizeof v); }
    void put64(std::uint64_t addr, std::uint64_t v) { std::memcpy(at(addr), &v, sizeof v); }
    std::span<const std::uint8_t> bytes() const { return bytes_; }

private:
    std::uint8_t* at(std::uint64_t addr) { return bytes_.data() + (addr - kMultibootInfoBase); }
    std::vector<std::uint8_t> bytes_;
};

}  // namespace

MultibootBoot load_multiboot(GuestMemory& memory, const std::filesystem::path& kernel,
                             const std::string& cmdline, std::span<const ModuleConfig> modules) {
    // Nothing larger than low RAM can be loaded; refuse before reading a huge file.
    const std::uint64_t limit = memory.low_size();
    std::vector<std::uint8_t> kernel_bytes = read_file(kernel, limit, memory.size());
    std::vector<ModuleImage> images;
    std::uint64_t total = kernel_bytes.size();
    for (const ModuleConfig& m : modules) {
        images.push_back(
            {m.path.filename().string(), m.args, read_file(m.path, limit, memory.size())});
        total += images.back().bytes.size();
        if (total > limit) {
            throw BootError(
                fmt::format("{}: kernel and modules ({} bytes so far) are larger "
                            "than guest RAM below 3 GiB ({} bytes)",
                            m.path.string(), total, limit));
        }
    }
    return load_multiboot(memory, kernel_bytes, kernel.filename().string(), cmdline, images);
}

MultibootBoot load_multiboot(GuestMemory& memory, std::span<const std::uint8_t> kernel,
                             const std::string& kernel_name, const std::string& cmdline,
                             std::span<const ModuleImage> modules) {
    const std::string& name = kernel_name;
    const Header header = find_header(kernel, name);
    if (std::uint32_t unsupported = header.flags & 0xFFFF & ~kSupportedRequiredFlags) {
        throw BootError(
            fmt::format("{}: multiboot header requires features ukvm does not "
                        "provide (flags {:#x}; supported: 0x3)",
                        name, unsupported));
    }

    ElfImage image;
    if (header.flags & kAoutKludge) {
        image = kludge_image(kernel, header, name);
    } else if (is_elf(kernel)) {
        image = parse_elf(kernel, name);
    } else {
        throw BootError(
            fmt::format("{}: not an ELF file, and its multiboot header has no "
                        "a.out kludge (flag 16)",
                        name));
    }
    if (image.segments.empty()) throw BootError(fmt::format("{}: nothing to load", name));

    // Placement: above 1 MiB, inside low RAM (the kernel starts in 32-bit mode), disjoint.
    const std::uint64_t low_end = memory.low_size();
    std::vector<LoadSegment> segs = image.segments;
    std::sort(segs.begin(), segs.end(),
              [](const LoadSegment& a, const LoadSegment& b) { return a.paddr < b.paddr; });
    for (std::size_t i = 0; i < segs.size(); ++i) {
        const LoadSegment& s = segs[i];
        if (s.paddr < kKernelMinAddress) {
            throw BootError(fmt::format("{}: segment at {:#x} lies below 1 MiB", name, s.paddr));
        }
        if (s.paddr >= low_end || s.mem_size > low_end - s.paddr) {
            throw BootError(
                fmt::format("{}: segment [{:#x}, +{:#x}) lies outside guest RAM "
                            "(low RAM ends at {:#x})",
                            name, s.paddr, s.mem_size, low_end));
        }
        if (i > 0 && segs[i - 1].paddr + segs[i - 1].mem_size > s.paddr) {
            throw BootError(fmt::format("{}: segments [{:#x}, +{:#x}) and [{:#x}, +{:#x}) overlap",
                                        name, segs[i - 1].paddr, segs[i - 1].mem_size, s.paddr,
                                        s.mem_size));
        }
    }
    const auto entry = physical_entry(image);
    if (!entry) {
        throw BootError(
            fmt::format("{}: entry point {:#x} is outside the loaded segments", name, image.entry));
    }

    // Modules go page-aligned after the kernel.
    MultibootBoot boot;
    boot.entry = static_cast<std::uint32_t>(*entry);
    boot.kernel_start = segs.front().paddr;
    boot.kernel_end = segs.back().paddr + segs.back().mem_size;
    std::vector<std::uint64_t> module_addrs;
    std::uint64_t cursor = boot.kernel_end;
    for (const ModuleImage& m : modules) {
        const std::uint64_t at = align_up(cursor, kPage);
        if (at > low_end || m.bytes.size() > low_end - at) {
            throw BootError(
                fmt::format("{}: kernel and modules do not fit in guest RAM below "
                            "3 GiB ({} bytes): module {} ({} bytes) would end at {:#x}",
                            name, low_end, m.name, m.bytes.size(), at + m.bytes.size()));
        }
        module_addrs.push_back(at);
        cursor = at + m.bytes.size();
    }
    boot.modules_end = cursor;

    // The information area, built off to the side and bounded.
    InfoArea area;
    const std::uint64_t info = area.alloc(kInfoStructBytes, 8);
    struct MapEntry {
        std::uint64_t base, length;
        std::uint32_t type;
    };
    std::vector<MapEntry> map = {{0, kLowMemoryEnd, kMmapAvailable},
                                 {kLowMemoryEnd, kHighMemoryStart - kLowMemoryEnd, kMmapReserved}};
    if (low_end > kHighMemoryStart) {
        map.push_back({kHighMemoryStart, low_end - kHighMemoryStart, kMmapAvailable});
    }
    if (memory.high_size() > 0) map.push_back({kHighRamBase, memory.high_size(), kMmapAvailable});
    const std::uint64_t mmap_addr = area.alloc(map.size() * kMmapEntryBytes, 8);
    for (std::size_t i = 0; i < map.size(); ++i) {
        const std::uint64_t e = mmap_addr + i * kMmapEntryBytes;
        area.put32(e, kMmapEntryBytes - 4);  // size excludes the size field itself
        area.put64(e + 4, map[i].base);
        area.put64(e + 12, map[i].length);
        area.put32(e + 20, map[i].type);
    }
    const std::uint64_t mods_addr = area.alloc(modules.size() * kModEntryBytes, 8);
    for (std::size_t i = 0; i < modules.size(); ++i) {
        const std::uint64_t e = mods_addr + i * kModEntryBytes;
        std::string line = modules[i].name;
        if (!modules[i].args.empty()) line += " " + modules[i].args;
        area.put32(e, static_cast<std::uint32_t>(module_addrs[i]));
        area.put32(e + 4, static_cast<std::uint32_t>(module_addrs[i] + modules[i].bytes.size()));
        area.put32(e + 8, area.add_string(line));
        area.put32(e + 12, 0);
    }
    std::string kernel_line = kernel_name;
    if (!cmdline.empty()) kernel_line += " " + cmdline;
    const std::uint32_t cmdline_addr = area.add_string(kernel_line);
    const std::uint32_t loader_addr = area.add_string(kLoaderName);
    if (area.bytes().size() > kMultibootInfoLimit - kMultibootInfoBase) {
        throw BootError(
            fmt::format("{}: the multiboot information (command lines, module list) "
                        "needs {} bytes, more than the {} bytes available at {:#x}",
                        name, area.bytes().size(), kMultibootInfoLimit - kMultibootInfoBase,
                        kMultibootInfoBase));
    }
    if (low_end < kMultibootInfoLimit) {
        throw BootError(fmt::format("{}: guest RAM ({} bytes) is too small", name, memory.size()));
    }
    area.put32(info + 0, mbi::kMemory | mbi::kCmdline | mbi::kMods | mbi::kMmap | mbi::kLoaderName);
    area.put32(info + 4, static_cast<std::uint32_t>(kLowMemoryEnd / 1024));
    area.put32(info + 8, static_cast<std::uint32_t>((low_end - kHighMemoryStart) / 1024));
    area.put32(info + 16, cmdline_addr);
    area.put32(info + 20, static_cast<std::uint32_t>(modules.size()));
    area.put32(info + 24, static_cast<std::uint32_t>(mods_addr));
    area.put32(info + 44, static_cast<std::uint32_t>(map.size() * kMmapEntryBytes));
    area.put32(info + 48, static_cast<std::uint32_t>(mmap_addr));
    area.put32(info + 64, loader_addr);
    boot.info_addr = static_cast<std::uint32_t>(info);

    // Everything is checked: write. The ranges were validated above, so these cannot throw.
    for (const LoadSegment& s : image.segments) {
        memory.write(s.paddr, kernel.subspan(s.file_offset, s.file_size));
        memory.fill(s.paddr + s.file_size, s.mem_size - s.file_size, 0);
    }
    for (std::size_t i = 0; i < modules.size(); ++i) {
        memory.write(module_addrs[i], std::span<const std::uint8_t>(modules[i].bytes));
    }
    memory.write(kMultibootInfoBase, area.bytes());
    return boot;
}

void multiboot_cpu_state(const MultibootBoot& boot, kvm_sregs& sregs, kvm_regs& regs) {
    kvm_segment code{};
    code.base = 0;
    code.limit = 0xFFFFFFFF;
    code.selector = 0x08;
    code.type = 0xB;  // execute/read, accessed
    code.present = 1;
    code.dpl = 0;
    code.db = 1;
    code.s = 1;
    code.g = 1;
    kvm_segment data = code;
    data.selector = 0x10;
    data.type = 0x3;  // read/write, accessed
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.cr0 = 0x11;  // PE | ET; paging off
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
    // The spec leaves GDTR/IDTR undefined: the kernel loads its own before reloading segments.
    sregs.gdt = {};
    sregs.idt = {};

    regs = kvm_regs{};
    regs.rip = boot.entry;
    regs.rflags = 0x2;  // IF = 0
    regs.rax = kMultibootBootloaderMagic;
    regs.rbx = boot.info_addr;
}

}  // namespace ukvm
