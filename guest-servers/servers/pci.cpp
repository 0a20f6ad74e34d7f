// PCI, the bus server: enumerates bus 0 through configuration mechanism #1 (ports
// 0xCF8-0xCFF are its privilege), records each function's IDs, class, BARs (as the VMM or
// the firmware placed them) and interrupt, and hands a function to a driver its table
// allows: the kernel then lets that driver map the function's memory BARs and take its
// IOAPIC input (kSysPrivCtl). Protocol: proto::kPci* in proto.hpp.
#include "sys.hpp"

using namespace ukvm::kernel;
using user::print;

namespace {

// Which driver program may claim which functions (vendor, device ID).
struct Permit {
    const char* program;
    uint16_t vendor, device;
};
constexpr Permit kPermits[] = {
    {"vblk", 0x1af4, 0x1042},   // modern virtio-blk
    {"vnet", 0x1af4, 0x1041},   // modern virtio-net
    {"vcons", 0x1af4, 0x1043},  // modern virtio-console
};

struct Bar {
    uint64_t addr = 0, size = 0, flags = 0;
};
struct Function {
    uint16_t handle;  // bus << 8 | device << 3 | function
    uint16_t vendor, device;
    uint32_t class_rev;
    uint8_t irq;  // IOAPIC input, proto::kPciNoIrq when none
    Bar bars[6];
    Endpoint owner = kNone;
};
constexpr int kMaxFunctions = 32;
Function g_fn[kMaxFunctions];
int g_count = 0;

int32_t devio(uint16_t port, uint64_t width, bool write, uint64_t* value) {
    Message m{};
    m.u64[0] = port, m.u64[1] = width, m.u64[2] = write, m.u64[3] = *value;
    int32_t r = user::kernel_call(kSysDevIo, &m);
    if (!write) *value = r == kOk ? m.u64[0] : ~0ull;
    return r;
}

void select(uint16_t handle, uint32_t offset) {
    uint64_t a = 0x80000000u | (uint32_t{handle} << 8) | (offset & 0xfc);
    devio(0xcf8, 4, true, &a);
}

uint32_t cfg_read(uint16_t handle, uint32_t offset, uint32_t width) {
    select(handle, offset);
    uint64_t v = 0;
    devio(static_cast<uint16_t>(0xcfc + (offset & 3)), width, false, &v);
    return static_cast<uint32_t>(v);
}

void cfg_write(uint16_t handle, uint32_t offset, uint32_t width, uint32_t value) {
    select(handle, offset);
    uint64_t v = value;
    devio(static_cast<uint16_t>(0xcfc + (offset & 3)), width, true, &v);
}

// Sizes the BARs of a type-0 function (decoding off meanwhile, as the spec asks).
void read_bars(Function& f) {
    uint16_t h = f.handle;
    uint32_t command = cfg_read(h, 0x04, 2);
    cfg_write(h, 0x04, 2, command & ~3u);
    for (int i = 0; i < 6; ++i) {
        uint32_t off = 0x10 + 4 * i;
        uint32_t v = cfg_read(h, off, 4);
        cfg_write(h, off, 4, ~0u);
        uint32_t mask = cfg_read(h, off, 4);
        cfg_write(h, off, 4, v);
        Bar& b = f.bars[i];
        if (v & 1) {
            uint32_t size = ~(mask & ~3u) + 1;
            if ((mask & ~3u) && size <= 0x10000) b = {v & ~3u, size, proto::kPciBarIo};
            continue;
        }
        uint64_t addr = v & ~0xfull, m64 = mask & ~0xfull;
        bool is64 = ((v >> 1) & 3) == 2 && i < 5;
        if (!m64 && !is64) continue;  // not implemented: reads back 0
        uint64_t flags = v & 8 ? proto::kPciBarPrefetch : 0;
        if (is64) {
            uint32_t hi = cfg_read(h, off + 4, 4);
            cfg_write(h, off + 4, 4, ~0u);
            uint32_t mhi = cfg_read(h, off + 4, 4);
            cfg_write(h, off + 4, 4, hi);
            addr |= uint64_t{hi} << 32;
            m64 |= uint64_t{mhi} << 32;
            flags |= proto::kPciBar64;
            ++i;  // the upper half
        } else {
            m64 |= 0xffffffff00000000ull;
        }
        if (m64 & 0xffffffffull || (is64 && m64)) b = {addr, ~m64 + 1, flags};
    }
    cfg_write(h, 0x04, 2, command);
}

void enumerate() {
    for (uint16_t dev = 0; dev < 32; ++dev) {
        for (uint16_t fn = 0; fn < 8 && g_count < kMaxFunctions; ++fn) {
            uint16_t h = static_cast<uint16_t>(dev << 3 | fn);
            uint32_t id = cfg_read(h, 0, 4);
            if ((id & 0xffff) == 0xffff || id == 0) {
                if (fn == 0) break;
                continue;
            }
            Function& f = g_fn[g_count++];
            f.handle = h;
            f.vendor = static_cast<uint16_t>(id);
            f.device = static_cast<uint16_t>(id >> 16);
            f.class_rev = cfg_read(h, 0x08, 4);
            uint32_t header = cfg_read(h, 0x0e, 1);
            uint32_t line = cfg_read(h, 0x3c, 1), pin = cfg_read(h, 0x3d, 1);
            // The Interrupt Line is the IOAPIC input: ukvm writes 16 + i there, SeaBIOS the
            // ISA IRQ its PIRQ routing chose (an IOAPIC input of the same number).
            f.irq = pin && line < 24 ? static_cast<uint8_t>(line) : proto::kPciNoIrq;
            if ((header & 0x7f) == 0) read_bars(f);
            if (fn == 0 && !(header & 0x80)) break;  // single-function device
        }
    }
}

// The program a live endpoint runs (false if it is not alive).
bool program_of(Endpoint e, char (&name)[kNameMax]) {
    Message m{};
    m.u64[0] = static_cast<uint64_t>(endpoint_slot(e));
    if (endpoint_slot(e) < 0 || user::kernel_call(kSysProcInfo, &m) != kOk) return false;
    ProcInfo info;
    memcpy(&info, m.bytes, sizeof info);
    if (info.endpoint != e) return false;
    memcpy(name, info.name, kNameMax);
    name[kNameMax - 1] = '\0';
    return true;
}

Function* by_handle(uint64_t handle) {
    for (int i = 0; i < g_count; ++i)
        if (g_fn[i].handle == handle) return &g_fn[i];
    return nullptr;
}

int32_t privctl(Endpoint e, uint64_t what, uint64_t a, uint64_t b) {
    Message m{};
    m.u64[0] = static_cast<uint64_t>(e), m.u64[1] = what, m.u64[2] = a, m.u64[3] = b;
    return user::kernel_call(kSysPrivCtl, &m);
}

int32_t claim(Message& m) {
    char name[kNameMax];
    if (!program_of(m.m_source, name)) return kESrch;
    Function* f = nullptr;
    for (int i = 0, n = 0; i < g_count && !f; ++i)
        if (g_fn[i].vendor == m.u64[0] && g_fn[i].device == m.u64[1] && n++ == int64_t(m.u64[2]))
            f = &g_fn[i];
    if (!f) return proto::kENoDev;
    bool permitted = false;
    for (const Permit& p : kPermits)
        permitted = permitted || (strcmp(p.program, name) == 0 && p.vendor == f->vendor &&
                                  p.device == f->device);
    if (!permitted) return kEPerm;
    char owner[kNameMax];
    if (f->owner != kNone && f->owner != m.m_source && program_of(f->owner, owner)) return kEBusy;
    for (const Bar& b : f->bars) {
        if (!b.size || !b.addr || (b.flags & proto::kPciBarIo)) continue;
        if (int32_t r = privctl(m.m_source, kPrivMem, b.addr, b.size); r != kOk) return r;
    }
    if (f->irq != proto::kPciNoIrq)
        if (int32_t r = privctl(m.m_source, kPrivIrq, f->irq, 0); r != kOk) return r;
    cfg_write(f->handle, 0x04, 2, cfg_read(f->handle, 0x04, 2) | 0x6);  // memory, bus master
    f->owner = m.m_source;
    print("pci: %02x.%u %04x:%04x -> %s (endpoint %d)\n", f->handle >> 3, f->handle & 7u, f->vendor,
          f->device, name, m.m_source);
    m.u64[0] = f->handle;
    m.u64[1] = f->irq;
    m.u64[2] = f->class_rev;
    return kOk;
}

bool valid_access(uint64_t offset, uint64_t width) {
    return (width == 1 || width == 2 || width == 4) && offset < 256 && offset % width == 0;
}

int32_t handle(Message& m) {
    switch (m.m_type) {
        case proto::kPciClaim:
            return claim(m);
        case proto::kPciBar: {
            Function* f = by_handle(m.u64[0]);
            if (!f || m.u64[1] >= 6) return kEInval;
            const Bar& b = f->bars[m.u64[1]];
            m.u64[0] = b.addr, m.u64[1] = b.size, m.u64[2] = b.flags;
            return kOk;
        }
        case proto::kPciConfigRead: {
            Function* f = by_handle(m.u64[0]);
            if (!f || !valid_access(m.u64[1], m.u64[2])) return kEInval;
            m.u64[0] = cfg_read(f->handle, static_cast<uint32_t>(m.u64[1]),
                                static_cast<uint32_t>(m.u64[2]));
            return kOk;
        }
        case proto::kPciConfigWrite: {
            Function* f = by_handle(m.u64[0]);
            if (!f || !valid_access(m.u64[1], m.u64[2])) return kEInval;
            if (f->owner != m.m_source) return kEPerm;
            if (m.u64[1] != 0x04 && m.u64[1] < 0x40) return kEPerm;
            cfg_write(f->handle, static_cast<uint32_t>(m.u64[1]), static_cast<uint32_t>(m.u64[2]),
                      static_cast<uint32_t>(m.u64[3]));
            return kOk;
        }
        case proto::kPciList: {
            if (m.u64[0] >= uint64_t(g_count)) return proto::kENoDev;
            const Function& f = g_fn[m.u64[0]];
            m.u64[0] = f.handle;
            m.u64[1] = uint64_t{f.vendor} << 16 | f.device;
            m.u64[2] = f.class_rev;
            m.u64[3] = f.irq;
            m.i64[4] = f.owner;
            return kOk;
        }
        default:
            return kENoSys;
    }
}

}  // namespace

int main(const char*) {
    enumerate();
    user::serve(handle);
}
