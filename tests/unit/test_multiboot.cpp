// The Multiboot loader against synthetic kernels built here, byte by byte.
#include "vmm/boot/multiboot.hpp"

#include <elf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "vmm/machine.hpp"

namespace ukvm {
namespace {

using ::testing::HasSubstr;

constexpr std::uint64_t kMiB = 1ull << 20;

struct Segment {
    std::uint64_t paddr;
    std::uint64_t vaddr;
    std::vector<std::uint8_t> data;
    std::uint64_t memsz;
};

struct KernelSpec {
    bool is64 = false;
    std::uint64_t entry = 0x100000;
    std::vector<Segment> segments;
    std::uint32_t mb_flags = 0x3;
    bool header = true;
    bool bad_checksum = false;
    std::uint64_t header_offset = 0;  // 0: right after the program headers
};

template <typename T>
void put(std::vector<std::uint8_t>& out, std::uint64_t off, const T& v) {
    if (out.size() < off + sizeof(T)) out.resize(off + sizeof(T));
    std::memcpy(out.data() + off, &v, sizeof(T));
}

void put_mb_header(std::vector<std::uint8_t>& out, std::uint64_t off, std::uint32_t flags,
                   bool bad_checksum) {
    put<std::uint32_t>(out, off, kMultibootHeaderMagic);
    put<std::uint32_t>(out, off + 4, flags);
    put<std::uint32_t>(
        out, off + 8,
        static_cast<std::uint32_t>(-(kMultibootHeaderMagic + flags)) + (bad_checksum ? 1 : 0));
}

// An ELF32 or ELF64 executable with the given PT_LOAD segments and a Multiboot header.
std::vector<std::uint8_t> make_elf(const KernelSpec& k) {
    std::vector<std::uint8_t> out;
    const std::size_t ehsize = k.is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
    const std::size_t phsize = k.is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    const std::uint64_t phoff = ehsize;
    const std::uint64_t mb_off =
        k.header_offset ? k.header_offset : (phoff + k.segments.size() * phsize + 3) & ~3ull;
    std::uint64_t data_off = std::max<std::uint64_t>(mb_off + 12, 0x100);
    std::vector<std::uint64_t> offsets;
    for (const Segment& s : k.segments) {
        offsets.push_back(data_off);
        data_off += s.data.size();
    }
    if (k.is64) {
        Elf64_Ehdr eh{};
        std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
        eh.e_ident[EI_CLASS] = ELFCLASS64;
        eh.e_ident[EI_DATA] = ELFDATA2LSB;
        eh.e_ident[EI_VERSION] = EV_CURRENT;
        eh.e_type = ET_EXEC;
        eh.e_machine = EM_X86_64;
        eh.e_version = EV_CURRENT;
        eh.e_entry = k.entry;
        eh.e_phoff = phoff;
        eh.e_ehsize = sizeof(Elf64_Ehdr);
        eh.e_phentsize = sizeof(Elf64_Phdr);
        eh.e_phnum = static_cast<Elf64_Half>(k.segments.size());
        put(out, 0, eh);
        for (std::size_t i = 0; i < k.segments.size(); ++i) {
            Elf64_Phdr ph{};
            ph.p_type = PT_LOAD;
            ph.p_offset = offsets[i];
            ph.p_paddr = k.segments[i].paddr;
            ph.p_vaddr = k.segments[i].vaddr;
            ph.p_filesz = k.segments[i].data.size();
            ph.p_memsz = k.segments[i].memsz;
            put(out, phoff + i * phsize, ph);
        }
    } else {
        Elf32_Ehdr eh{};
        std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
        eh.e_ident[EI_CLASS] = ELFCLASS32;
        eh.e_ident[EI_DATA] = ELFDATA2LSB;
        eh.e_ident[EI_VERSION] = EV_CURRENT;
        eh.e_type = ET_EXEC;
        eh.e_machine = EM_386;
        eh.e_version = EV_CURRENT;
        eh.e_entry = static_cast<Elf32_Addr>(k.entry);
        eh.e_phoff = static_cast<Elf32_Off>(phoff);
        eh.e_ehsize = sizeof(Elf32_Ehdr);
        eh.e_phentsize = sizeof(Elf32_Phdr);
        eh.e_phnum = static_cast<Elf32_Half>(k.segments.size());
        put(out, 0, eh);
        for (std::size_t i = 0; i < k.segments.size(); ++i) {
            Elf32_Phdr ph{};
            ph.p_type = PT_LOAD;
            ph.p_offset = static_cast<Elf32_Off>(offsets[i]);
            ph.p_paddr = static_cast<Elf32_Addr>(k.segments[i].paddr);
            ph.p_vaddr = static_cast<Elf32_Addr>(k.segments[i].vaddr);
            ph.p_filesz = static_cast<Elf32_Word>(k.segments[i].data.size());
            ph.p_memsz = static_cast<Elf32_Word>(k.segments[i].memsz);
            put(out, phoff + i * phsize, ph);
        }
    }
    if (k.header) put_mb_header(out, mb_off, k.mb_flags, k.bad_checksum);
    out.resize(std::max<std::uint64_t>(out.size(), offsets.empty() ? 0 : offsets[0]));
    for (std::size_t i = 0; i < k.segments.size(); ++i) {
        out.resize(std::max<std::uint64_t>(out.size(), offsets[i]));
        out.insert(out.begin() + static_cast<std::ptrdiff_t>(offsets[i]),
                   k.segments[i].data.begin(), k.segments[i].data.end());
        out.resize(offsets[i] + k.segments[i].data.size());
    }
    return out;
}

std::vector<std::uint8_t> bytes(std::size_t n, std::uint8_t first) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(first + i);
    return v;
}

// A typical two-segment kernel: text at 1 MiB (entry there), data+bss at 1 MiB + 8 KiB.
KernelSpec simple_kernel(bool is64 = false) {
    KernelSpec k;
    k.is64 = is64;
    k.entry = 0x100010;
    k.segments = {{0x100000, 0x100000, bytes(0x40, 1), 0x40},
                  {0x102000, 0x102000, bytes(0x20, 0x80), 0x1000}};
    return k;
}

bool all_zero(const GuestMemory& m) {
    auto s = m.span(0, m.low_size());
    return std::all_of(s.begin(), s.end(), [](std::uint8_t b) { return b == 0; });
}

std::string c_string(const GuestMemory& m, std::uint64_t gpa) {
    std::string s;
    for (char c; (c = static_cast<char>(m.read<std::uint8_t>(gpa))) != 0; ++gpa) s += c;
    return s;
}

struct Info {
    const GuestMemory& m;
    std::uint32_t base;
    std::uint32_t at(std::uint32_t off) const { return m.read<std::uint32_t>(base + off); }
};

TEST(Multiboot, LoadsElf32SegmentsAndZeroesBss) {
    GuestMemory mem(8 * kMiB);
    mem.fill(0x102020, 0x10, 0xEE);  // stale bytes where bss goes must be cleared
    auto elf = make_elf(simple_kernel());
    MultibootBoot boot = load_multiboot(mem, elf, "kernel.elf", "", {});
    EXPECT_EQ(boot.entry, 0x100010u);
    EXPECT_EQ(boot.kernel_start, 0x100000u);
    EXPECT_EQ(boot.kernel_end, 0x103000u);
    std::vector<std::uint8_t> text(0x40), data(0x20);
    mem.read(0x100000, text);
    mem.read(0x102000, data);
    EXPECT_EQ(text, bytes(0x40, 1));
    EXPECT_EQ(data, bytes(0x20, 0x80));
    EXPECT_EQ(mem.read<std::uint64_t>(0x102020), 0u);
    EXPECT_EQ(mem.read<std::uint8_t>(0x102FFF), 0u);
}

TEST(Multiboot, InfoStructure) {
    GuestMemory mem(8 * kMiB);
    auto elf = make_elf(simple_kernel());
    MultibootBoot boot = load_multiboot(mem, elf, "kernel.elf", "console=ttyS0 quiet", {});
    ASSERT_GE(boot.info_addr, kMultibootInfoBase);
    ASSERT_LT(boot.info_addr, kMultibootInfoLimit);
    Info info{mem, boot.info_addr};
    const std::uint32_t flags = info.at(0);
    EXPECT_EQ(flags, mbi::kMemory | mbi::kCmdline | mbi::kMods | mbi::kMmap | mbi::kLoaderName);
    EXPECT_EQ(info.at(4), 639u);                      // mem_lower, KiB
    EXPECT_EQ(info.at(8), (8 * kMiB - kMiB) / 1024);  // mem_upper, KiB
    EXPECT_EQ(c_string(mem, info.at(16)), "kernel.elf console=ttyS0 quiet");
    EXPECT_EQ(info.at(20), 0u);  // mods_count
    EXPECT_EQ(c_string(mem, info.at(64)), "ukvm");

    // Memory map: available low memory, reserved to 1 MiB, available up to the end of RAM.
    const std::uint32_t mmap_len = info.at(44), mmap_addr = info.at(48);
    ASSERT_EQ(mmap_len, 3u * 24);
    struct E {
        std::uint64_t base, len;
        std::uint32_t type;
    };
    std::vector<E> entries;
    for (std::uint32_t p = mmap_addr; p < mmap_addr + mmap_len;) {
        const std::uint32_t size = mem.read<std::uint32_t>(p);
        entries.push_back({mem.read<std::uint64_t>(p + 4), mem.read<std::uint64_t>(p + 12),
                           mem.read<std::uint32_t>(p + 20)});
        p += size + 4;
    }
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(entries[0].base, 0u);
    EXPECT_EQ(entries[0].len, 0x9FC00u);
    EXPECT_EQ(entries[0].type, 1u);
    EXPECT_EQ(entries[1].base, 0x9FC00u);
    EXPECT_EQ(entries[1].len, kMiB - 0x9FC00);
    EXPECT_EQ(entries[1].type, 2u);
    EXPECT_EQ(entries[2].base, kMiB);
    EXPECT_EQ(entries[2].len, 7 * kMiB);
    EXPECT_EQ(entries[2].type, 1u);
}

TEST(Multiboot, CommandLineWithoutArgumentsIsTheFileName) {
    GuestMemory mem(8 * kMiB);
    auto elf = make_elf(simple_kernel());
    MultibootBoot boot = load_multiboot(mem, elf, "kernel.elf", "", {});
    EXPECT_EQ(c_string(mem, Info{mem, boot.info_addr}.at(16)), "kernel.elf");
}

TEST(Multiboot, MemoryMapIncludesRamAbove4GiB) {
    GuestMemory mem(kLowRamLimit + 16 * kMiB);
    auto elf = make_elf(simple_kernel());
    MultibootBoot boot = load_multiboot(mem, elf, "k", "", {});
    Info info{mem, boot.info_addr};
    ASSERT_EQ(info.at(44), 4u * 24);
    const std::uint32_t last = info.at(48) + 3 * 24;
    EXPECT_EQ(mem.read<std::uint64_t>(last + 4), kHighRamBase);
    EXPECT_EQ(mem.read<std::uint64_t>(last + 12), 16 * kMiB);
    EXPECT_EQ(mem.read<std::uint32_t>(last + 20), 1u);
    EXPECT_EQ(info.at(8), (kLowRamLimit - kMiB) / 1024);
}

TEST(Multiboot, Elf64HigherHalfEntryIsTranslated) {
    KernelSpec k;
    k.is64 = true;
    k.entry = 0xFFFFFFFF80000020;
    k.segments = {{0x200000, 0xFFFFFFFF80000000, bytes(0x100, 7), 0x100}};
    GuestMemory mem(8 * kMiB);
    auto elf = make_elf(k);
    MultibootBoot boot = load_multiboot(mem, elf, "k64", "", {});
    EXPECT_EQ(boot.entry, 0x200020u);
    EXPECT_EQ(mem.read<std::uint8_t>(0x200000), 7);
    EXPECT_EQ(mem.read<std::uint8_t>(0x2000FF), static_cast<std::uint8_t>(7 + 0xFF));
}

TEST(Multiboot, ModulesArePageAlignedAfterTheKernel) {
    GuestMemory mem(8 * kMiB);
    auto elf = make_elf(simple_kernel());
    std::vector<ModuleImage> mods = {{"init.bin", "", bytes(100, 3)},
                                     {"fs.bin", "root=/ ro", bytes(5000, 9)}};
    MultibootBoot boot = load_multiboot(mem, elf, "kernel.elf", "", mods);
    Info info{mem, boot.info_addr};
    ASSERT_EQ(info.at(20), 2u);
    const std::uint32_t list = info.at(24);
    const std::uint32_t start0 = mem.read<std::uint32_t>(list);
    const std::uint32_t end0 = mem.read<std::uint32_t>(list + 4);
    const std::uint32_t start1 = mem.read<std::uint32_t>(list + 16);
    const std::uint32_t end1 = mem.read<std::uint32_t>(list + 20);
    EXPECT_EQ(start0, 0x103000u);  // the first page after the kernel's bss
    EXPECT_EQ(end0, start0 + 100);
    EXPECT_EQ(start1, 0x104000u);
    EXPECT_EQ(end1, start1 + 5000);
    EXPECT_EQ(c_string(mem, mem.read<std::uint32_t>(list + 8)), "init.bin");
    EXPECT_EQ(c_string(mem, mem.read<std::uint32_t>(list + 24)), "fs.bin root=/ ro");
    EXPECT_EQ(mem.read<std::uint8_t>(start0), 3);
    EXPECT_EQ(mem.read<std::uint8_t>(start1 + 4999), static_cast<std::uint8_t>(9 + 4999 % 256));
    EXPECT_EQ(boot.modules_end, end1);
}

TEST(Multiboot, AoutKludgeLoadsAFlatImage) {
    // Flat image linked at 1 MiB: header at file offset 0x10, 0x40 bytes loaded, bss to 0x1000.
    std::vector<std::uint8_t> img = bytes(0x40, 0x30);
    const std::uint32_t flags = 0x3 | (1u << 16);
    put_mb_header(img, 0x10, flags, false);
    put<std::uint32_t>(img, 0x1C, 0x100010);  // header_addr
    put<std::uint32_t>(img, 0x20, 0x100000);  // load_addr
    put<std::uint32_t>(img, 0x24, 0x100040);  // load_end_addr
    put<std::uint32_t>(img, 0x28, 0x101000);  // bss_end_addr
    put<std::uint32_t>(img, 0x2C, 0x100030);  // entry_addr
    img.resize(0x40);
    img.push_back(0xAA);  // past load_end: must not be loaded
    GuestMemory mem(8 * kMiB);
    MultibootBoot boot = load_multiboot(mem, img, "flat.bin", "", {});
    EXPECT_EQ(boot.entry, 0x100030u);
    EXPECT_EQ(boot.kernel_end, 0x101000u);
    EXPECT_EQ(mem.read<std::uint8_t>(0x100000), 0x30);
    EXPECT_EQ(mem.read<std::uint32_t>(0x100010), kMultibootHeaderMagic);
    EXPECT_EQ(mem.read<std::uint8_t>(0x100040), 0);
}

TEST(Multiboot, CpuStateFollowsTheSpecification) {
    MultibootBoot boot;
    boot.entry = 0x100010;
    boot.info_addr = 0x9000;
    kvm_sregs s{};
    kvm_regs r{};
    r.rsp = 0x1234;
    multiboot_cpu_state(boot, s, r);
    EXPECT_EQ(r.rax, 0x2BADB002u);
    EXPECT_EQ(r.rbx, 0x9000u);
    EXPECT_EQ(r.rip, 0x100010u);
    EXPECT_EQ(r.rflags, 0x2u);
    EXPECT_EQ(s.cr0, 0x11u);  // PE | ET, no PG
    EXPECT_EQ(s.efer, 0u);
    EXPECT_EQ(s.cs.base, 0u);
    EXPECT_EQ(s.cs.limit, 0xFFFFFFFFu);
    EXPECT_EQ(s.cs.db, 1);
    EXPECT_EQ(s.cs.l, 0);
    EXPECT_EQ(s.cs.dpl, 0);
    EXPECT_EQ(s.cs.type & 0x8, 0x8);  // code
    for (const kvm_segment* d : {&s.ds, &s.es, &s.fs, &s.gs, &s.ss}) {
        EXPECT_EQ(d->base, 0u);
        EXPECT_EQ(d->limit, 0xFFFFFFFFu);
        EXPECT_EQ(d->db, 1);
        EXPECT_EQ(d->present, 1);
        EXPECT_EQ(d->type & 0x8, 0);    // data
        EXPECT_EQ(d->type & 0x2, 0x2);  // writable
    }
}

TEST(Multiboot, LoadsFromFilesUsingTheFileNames) {
    auto dir = std::filesystem::temp_directory_path() / ("ukvm-mb-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto write = [&](const char* name, const std::vector<std::uint8_t>& b) {
        std::ofstream(dir / name, std::ios::binary)
            .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
        return dir / name;
    };
    auto kernel = write("kernel.elf", make_elf(simple_kernel()));
    auto mod = write("init", bytes(10, 0));
    GuestMemory mem(8 * kMiB);
    std::vector<ModuleConfig> mods = {{mod, "a b"}};
    MultibootBoot boot = load_multiboot(mem, kernel, "x=1", mods);
    Info info{mem, boot.info_addr};
    EXPECT_EQ(c_string(mem, info.at(16)), "kernel.elf x=1");
    EXPECT_EQ(c_string(mem, mem.read<std::uint32_t>(info.at(24) + 8)), "init a b");

    GuestMemory fresh(8 * kMiB);
    try {
        load_multiboot(fresh, dir / "missing.elf", "", {});
        FAIL() << "a missing kernel loaded";
    } catch (const BootError& e) {
        EXPECT_THAT(e.what(), HasSubstr("missing.elf"));
    }
    std::filesystem::remove_all(dir);
}

// Each malformed kernel is rejected with a message naming the file and the problem, and
// guest memory stays all zero.
struct BadCase {
    const char* name;
    std::vector<std::uint8_t> image;
    const char* message;
    std::vector<ModuleImage> modules = {};
    std::string cmdline = "";
};

std::vector<BadCase> bad_cases() {
    std::vector<BadCase> cases;
    {
        std::vector<std::uint8_t> raw(64, 0x90);
        put_mb_header(raw, 8, 0x3, false);
        cases.push_back({"not ELF, no kludge", raw, "not an ELF file"});
    }
    {
        KernelSpec k = simple_kernel();
        k.header = false;
        cases.push_back({"no header", make_elf(k), "no multiboot header"});
    }
    {
        KernelSpec k = simple_kernel();
        k.bad_checksum = true;
        cases.push_back({"bad checksum", make_elf(k), "bad checksum"});
    }
    {
        KernelSpec k = simple_kernel();
        k.header_offset = 8192;  // just past the search window
        cases.push_back({"header after 8 KiB", make_elf(k), "no multiboot header"});
    }
    {
        KernelSpec k = simple_kernel();
        k.mb_flags = 0x3 | 0x4;  // video mode
        cases.push_back({"unsupported flag", make_elf(k), "flags 0x4"});
    }
    {
        auto elf = make_elf(simple_kernel());
        std::vector<std::uint8_t> t(elf.begin(), elf.begin() + 40);
        put_mb_header(t, 0x1C, 0x3, false);  // a header, but the ELF header is cut short
        t.resize(40);
        cases.push_back({"truncated ELF header", t, "truncated ELF header"});
    }
    {
        auto elf = make_elf(simple_kernel());
        put<std::uint32_t>(elf, offsetof(Elf32_Ehdr, e_phoff), 0xFFFFFFF0);
        cases.push_back({"program headers past EOF", elf, "program headers"});
    }
    {
        auto elf = make_elf(simple_kernel());
        elf.resize(elf.size() - 1);  // the last segment's last byte is gone
        cases.push_back({"segment past EOF", elf, "runs past the end of the file"});
    }
    {
        KernelSpec k = simple_kernel(true);
        auto elf = make_elf(k);
        // p_offset of segment 0 such that offset + filesz wraps at 2^64.
        put<std::uint64_t>(elf, sizeof(Elf64_Ehdr) + offsetof(Elf64_Phdr, p_offset), ~0ull - 0x10);
        cases.push_back({"segment offset overflow", elf, "runs past the end of the file"});
    }
    {
        KernelSpec k = simple_kernel();
        k.segments[1].memsz = 0x10;  // less than its 0x20 file bytes
        cases.push_back({"filesz > memsz", make_elf(k), "larger than its memory size"});
    }
    {
        KernelSpec k = simple_kernel();
        k.segments[1].paddr = k.segments[1].vaddr = 0x100020;
        cases.push_back({"overlapping segments", make_elf(k), "overlap"});
    }
    {
        KernelSpec k = simple_kernel();
        k.segments[1].paddr = k.segments[1].vaddr = 8 * kMiB - 0x10;
        cases.push_back({"segment past RAM", make_elf(k), "outside guest RAM"});
    }
    {
        KernelSpec k = simple_kernel(true);
        k.segments[1].paddr = k.segments[1].vaddr = 0x100000000;
        cases.push_back({"segment above 4 GiB", make_elf(k), "outside guest RAM"});
    }
    {
        KernelSpec k = simple_kernel();
        k.segments[0].paddr = k.segments[0].vaddr = 0xF0000;
        k.entry = 0xF0000;
        cases.push_back({"segment below 1 MiB", make_elf(k), "below 1 MiB"});
    }
    {
        KernelSpec k = simple_kernel();
        k.entry = 0x500000;
        cases.push_back({"entry outside", make_elf(k), "entry point 0x500000"});
    }
    {
        std::vector<ModuleImage> mods = {{"big.bin", "", std::vector<std::uint8_t>(7 * kMiB)}};
        cases.push_back({"modules too large", make_elf(simple_kernel()), "do not fit", mods});
    }
    {
        cases.push_back({"info area overflow",
                         make_elf(simple_kernel()),
                         "multiboot information",
                         {},
                         std::string(700 * 1024, 'x')});
    }
    {
        std::vector<std::uint8_t> img(0x40, 0);
        put_mb_header(img, 0x10, 0x3 | (1u << 16), false);
        put<std::uint32_t>(img, 0x1C, 0x100000);  // header_addr below load_addr
        put<std::uint32_t>(img, 0x20, 0x100010);
        put<std::uint32_t>(img, 0x2C, 0x100010);
        cases.push_back({"kludge load_addr > header_addr", img, "load_addr"});
    }
    {
        std::vector<std::uint8_t> img(0x40, 0);
        put_mb_header(img, 0x10, 0x3 | (1u << 16), false);
        put<std::uint32_t>(img, 0x1C, 0x100010);
        put<std::uint32_t>(img, 0x20, 0x100000);
        put<std::uint32_t>(img, 0x24, 0x100100);  // load_end beyond the 0x40-byte file
        put<std::uint32_t>(img, 0x2C, 0x100010);
        cases.push_back({"kludge load past EOF", img, "runs past the end of the file"});
    }
    {
        std::vector<std::uint8_t> img(0x40, 0);
        put_mb_header(img, 0x10, 0x3 | (1u << 16), false);
        put<std::uint32_t>(img, 0x1C, 0x100010);
        put<std::uint32_t>(img, 0x20, 0x100000);
        put<std::uint32_t>(img, 0x24, 0x100040);
        put<std::uint32_t>(img, 0x28, 0x100020);  // bss_end below load_end
        put<std::uint32_t>(img, 0x2C, 0x100010);
        cases.push_back({"kludge bss_end < load_end", img, "bss_end_addr"});
    }
    {
        std::vector<std::uint8_t> img(0x18, 0);
        put_mb_header(img, 0x10, 0x3 | (1u << 16), false);
        img.resize(0x18);  // the kludge fields are cut off
        cases.push_back({"kludge header truncated", img, "truncated multiboot header"});
    }
    return cases;
}

TEST(Multiboot, RejectsMalformedKernelsBeforeWritingMemory) {
    for (const BadCase& c : bad_cases()) {
        SCOPED_TRACE(c.name);
        GuestMemory mem(8 * kMiB);
        try {
            load_multiboot(mem, c.image, "bad.elf", c.cmdline, c.modules);
            ADD_FAILURE() << c.name << ": loaded";
        } catch (const BootError& e) {
            EXPECT_THAT(e.what(), HasSubstr("bad.elf"));
            EXPECT_THAT(e.what(), HasSubstr(c.message));
        }
        EXPECT_TRUE(all_zero(mem)) << c.name << ": guest memory was written";
    }
}

}  // namespace
}  // namespace ukvm
