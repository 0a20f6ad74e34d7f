#include "multiboot.hpp"

#include "boot_image.hpp"
#include "frames.hpp"
#include "lib.hpp"

namespace kernel::multiboot {

namespace {

struct [[gnu::packed]] Info {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr;
    uint32_t drives_length, drives_addr, config_table, boot_loader_name;
};
struct [[gnu::packed]] ModuleEntry {
    uint32_t start, end, string, reserved;
};
struct [[gnu::packed]] MmapEntry {
    uint32_t size;
    uint64_t base, length;
    uint32_t type;
};
constexpr uint32_t kFlagMem = 1u << 0;
constexpr uint32_t kFlagCmdline = 1u << 2;
constexpr uint32_t kFlagMods = 1u << 3;
constexpr uint32_t kFlagMmap = 1u << 6;
constexpr uint32_t kFlagLoaderName = 1u << 9;

char g_cmdline[256];
char g_loader[32];

void copy_string(char* dst, size_t size, const char* src) {
    size_t n = strlen(src);
    if (n >= size) n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

template <typename T>
const T* at(uint64_t phys) {
    return reinterpret_cast<const T*>(phys);
}

// The loader's own structures, kept out of the frame allocator (see frames::assume_zeroed).
struct Span {
    uint64_t start, end;
};
Span g_used[8 + boot_image::kMaxModules];
int g_nused = 0;

void used(uint64_t start, uint64_t len) {
    if (g_nused < static_cast<int>(sizeof g_used / sizeof *g_used))
        g_used[g_nused++] = {start, start + len};
}
void used_string(uint32_t address) {
    if (address) used(address, strlen(at<char>(address)) + 1);
}

}  // namespace

void read(uint32_t info_address) {
    const Info* info = at<Info>(info_address);
    used(info_address, sizeof(Info));
    if (info->flags & kFlagCmdline) used_string(info->cmdline);
    if (info->flags & kFlagLoaderName) used_string(info->boot_loader_name);
    if (info->flags & kFlagMmap) used(info->mmap_addr, info->mmap_length);
    if (info->flags & kFlagCmdline)
        copy_string(g_cmdline, sizeof g_cmdline, at<char>(info->cmdline));
    if (info->flags & kFlagLoaderName)
        copy_string(g_loader, sizeof g_loader, at<char>(info->boot_loader_name));
    if (info->flags & kFlagMods) {
        const ModuleEntry* mods = at<ModuleEntry>(info->mods_addr);
        used(info->mods_addr, uint64_t{info->mods_count} * sizeof(ModuleEntry));
        for (uint32_t i = 0; i < info->mods_count; ++i) {
            used_string(mods[i].string);
            if (mods[i].end > frames::kLimit || mods[i].end < mods[i].start)
                panic("boot module %u at %x..%x is outside the first GiB", i, mods[i].start,
                      mods[i].end);
            boot_image::add(mods[i].start, mods[i].end,
                            mods[i].string ? at<char>(mods[i].string) : "");
        }
    }
    if (info->flags & kFlagMmap) {
        for (uint64_t a = info->mmap_addr; a < uint64_t{info->mmap_addr} + info->mmap_length;) {
            const MmapEntry* e = at<MmapEntry>(a);
            if (e->type == 1) frames::add_range(e->base, e->base + e->length);
            a += e->size + 4;
        }
    } else if (info->flags & kFlagMem) {
        frames::add_range(0x100000, 0x100000 + uint64_t{info->mem_upper} * 1024);
    } else {
        panic("the boot loader gave no memory map");
    }
    for (int i = 0; i < g_nused; ++i) frames::reserve(g_used[i].start, g_used[i].end);
}

const char* loader_name() {
    return g_loader;
}

const char* cmdline() {
    return g_cmdline;
}

}  // namespace kernel::multiboot
