// The SYSTEM task: kernel calls, checked against the caller's call mask.
#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/lapic.hpp"
#include "boot_image.hpp"
#include "clock.hpp"
#include "frames.hpp"
#include "grant.hpp"
#include "ipc.hpp"
#include "lib.hpp"
#include "sched.hpp"
#include "task.hpp"

namespace kernel::task {

using namespace ukvm::kernel;

namespace {

struct ChildRecord {
    Endpoint parent = kNone;
    Endpoint child = kNone;
    uint64_t reason = 0, detail = 0;
};
constexpr int kMaxRecords = 32;
ChildRecord g_records[kMaxRecords];
Endpoint g_irq_owner[24];  // kNone when nobody subscribed
uint32_t g_irq_pending;    // lines that fired since their owner's last notification
bool g_irq_init = false;

// The name in a request's payload, NUL-terminated whatever the caller sent.
void request_name(const Message& m, char (&name)[kNameLen]) {
    memcpy(name, m.bytes, kNameLen);
    name[kNameLen - 1] = '\0';
}

int32_t sys_spawn(Proc* caller, Message& m) {
    char name[kNameLen];
    request_name(m, name);
    int index = -1;
    for (int i = 0; i < boot_image::count() && index < 0; ++i)
        if (strncmp(boot_image::get(i)->name, name, kNameLen) == 0) index = i;
    if (index < 0) return kESrch;
    char args[kSpawnArgsMax];
    memcpy(args, m.bytes + kSpawnArgsOffset, kSpawnArgsMax);
    args[kSpawnArgsMax - 1] = '\0';
    int32_t error = kOk;
    Proc* p = boot_image::spawn(index, caller->endpoint, &error, args[0] ? args : nullptr);
    if (!p) return error;
    m.u64[0] = static_cast<uint64_t>(p->endpoint);
    return kOk;
}

int32_t sys_findproc(Message& m) {
    char name[kNameLen];
    request_name(m, name);
    for (Proc& p : proc::table) {
        if ((p.blocked & kSlotFree) || strncmp(p.name, name, kNameLen) != 0) continue;
        m.u64[0] = static_cast<uint64_t>(p.endpoint);
        return kOk;
    }
    return kESrch;
}

int32_t sys_procinfo(Message& m) {
    for (uint64_t nr = m.u64[0]; nr < kNrProcs; ++nr) {
        const Proc* p = proc::by_slot(static_cast<int32_t>(nr));
        if (p->blocked & kSlotFree) continue;
        ProcInfo info{};
        memcpy(info.name, p->name, kNameLen);
        info.endpoint = p->endpoint;
        info.parent = p->parent;
        info.state = p->blocked >> 1;
        info.blocked_on = p->blocked & kSending     ? p->send_to
                          : p->blocked & kReceiving ? p->get_from
                                                    : kNone;
        info.priority = p->priv.priority;
        info.cls = static_cast<uint32_t>(p->priv.cls);
        memcpy(m.bytes, &info, sizeof info);
        return kOk;
    }
    return kESrch;
}

// The process e names if it waits in SENDREC for the caller's reply (its state is then
// all in its Proc), else nullptr with *error set.
Proc* waiting_client(Proc* caller, Endpoint e, int32_t* error) {
    Proc* p = proc::lookup(e);
    if (!p || p->is_task() || p == caller) return *error = kEInval, nullptr;
    if (p->blocked != kReceiving || !p->reply_pending || p->get_from != caller->endpoint)
        return *error = kEBusy, nullptr;
    return p;
}

int32_t sys_exec(Proc* caller, Message& m) {
    int32_t error = kOk;
    Proc* p = waiting_client(caller, static_cast<Endpoint>(m.i64[6]), &error);
    if (!p) return error;
    char name[kNameLen], args[kExecArgsMax];
    request_name(m, name);
    memcpy(args, m.bytes + kSpawnArgsOffset, kExecArgsMax);
    args[kExecArgsMax - 1] = '\0';
    for (int i = 0; i < boot_image::count(); ++i)
        if (strncmp(boot_image::get(i)->name, name, kNameLen) == 0)
            return boot_image::exec(p, i, args[0] ? args : nullptr);
    return kESrch;
}

int32_t sys_fork(Proc* caller, Message& m) {
    int32_t error = kOk;
    Proc* p = waiting_client(caller, static_cast<Endpoint>(m.u64[0]), &error);
    if (!p) return error;
    Proc* c = proc::allocate();
    if (!c) return kEBusy;
    if (!c->as.create() || !c->as.copy_from(p->as)) {
        c->as.destroy();
        c->blocked = kSlotFree;
        return kENoMem;
    }
    sched::save_fpu(p);
    c->regs = p->regs;
    memcpy(c->fpu, p->fpu, sizeof c->fpu);
    memcpy(c->name, p->name, kNameLen);
    c->priv = p->priv;
    c->parent = caller->endpoint;
    c->module = p->module;
    c->entered_by_syscall = p->entered_by_syscall;
    c->heap_va = p->heap_va;  // (device mappings are not copied)
    c->get_from = p->get_from;
    c->msg = p->msg;
    c->reply_pending = true;
    c->blocked = kReceiving;
    boot_image::connect(c);
    m.u64[0] = static_cast<uint64_t>(c->endpoint);
    return kOk;
}

int32_t sys_kill(Proc* caller, Message& m) {
    Proc* p = proc::lookup(static_cast<Endpoint>(m.u64[0]));
    if (!p || p->is_task()) return kEDeadSrcDst;
    if (p == caller) return kEInval;
    proc::exit(p, kExitKilled, m.u64[1]);
    return kOk;
}

// The handler's frame goes below the red zone of the interrupted code.
constexpr uint64_t kRedZone = 128;
constexpr uint64_t kUserFlags =
    0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x40000;  // CF PF AF ZF SF TF DF OF AC
constexpr uint64_t kFlagsAlways = 0x202;                               // IF and the reserved bit 1

int32_t sys_sigsend(Proc* caller, Message& m) {
    Proc* p = proc::lookup(static_cast<Endpoint>(m.u64[0]));
    if (!p || p->is_task() || p == caller || m.u64[2] >= kUserTop) return kEInval;
    bool blocked = p->blocked & (kSending | kReceiving);
    if (!(p->blocked & kSending) && p->reply_pending && p->get_from != caller->endpoint &&
        p->get_from != static_cast<Endpoint>(m.u64[4]))
        return kEBusy;  // a server holds its request: it must answer first
    Regs& r = p->regs;
    SigFrame f;
    f.restorer = m.u64[3];
    f.signal = m.u64[1];
    f.context = {blocked ? static_cast<uint64_t>(int64_t{kEIntr}) : r.rax,
                 r.rcx,
                 r.rdx,
                 r.rbx,
                 r.rbp,
                 r.rsi,
                 r.rdi,
                 r.r8,
                 r.r9,
                 r.r10,
                 r.r11,
                 r.r12,
                 r.r13,
                 r.r14,
                 r.r15,
                 r.rip,
                 r.rflags,
                 r.rsp};
    uint64_t at = ((r.rsp - kRedZone - sizeof f) & ~uint64_t{15}) - 8;
    if (r.rsp < kUserBase + kRedZone + sizeof f + 32 || !p->as.copy_out({at}, &f, sizeof f))
        return kEFault;
    if (blocked) ipc::interrupt(p);
    r.rip = m.u64[2];
    r.rsp = at;
    r.rdi = m.u64[1];
    r.rflags &= ~uint64_t{0x400};   // DF clear, as the ABI expects at a call
    p->entered_by_syscall = false;  // iretq: every register as set here
    return kOk;
}

int32_t sys_sigreturn(Proc* caller, Message& m) {
    SigFrame f;
    if (!caller->as.copy_in(&f, {m.u64[0]}, sizeof f)) return kEFault;
    const SigContext& c = f.context;
    if (c.rip >= kUserTop) return kEFault;  // iretq to a non-canonical address faults in ring 0
    Regs& r = caller->regs;
    r.rax = c.rax, r.rcx = c.rcx, r.rdx = c.rdx, r.rbx = c.rbx, r.rbp = c.rbp, r.rsi = c.rsi;
    r.rdi = c.rdi, r.r8 = c.r8, r.r9 = c.r9, r.r10 = c.r10, r.r11 = c.r11, r.r12 = c.r12;
    r.r13 = c.r13, r.r14 = c.r14, r.r15 = c.r15, r.rip = c.rip, r.rsp = c.rsp;
    r.rflags = (c.rflags & kUserFlags) | kFlagsAlways;
    caller->entered_by_syscall = false;
    return kJustReturn;
}

int32_t sys_getksig(Proc* caller, Message& m) {
    m.u64[0] = static_cast<uint64_t>(kNone);
    for (ChildRecord& r : g_records) {
        if (r.parent != caller->endpoint) continue;
        m.u64[0] = static_cast<uint64_t>(r.child);
        m.u64[1] = r.reason;
        m.u64[2] = r.detail;
        r = ChildRecord{};
        break;
    }
    return kOk;
}

int32_t sys_devio(Proc* caller, Message& m) {
    uint64_t port = m.u64[0], width = m.u64[1];
    const Priv& pv = caller->priv;
    if ((width != 1 && width != 2 && width != 4) || port < pv.io_base ||
        port + width > uint64_t{pv.io_base} + pv.io_count)
        return kEPerm;
    auto p = static_cast<uint16_t>(port);
    if (m.u64[2]) {
        uint64_t v = m.u64[3];
        if (width == 1)
            cpu::outb(p, static_cast<uint8_t>(v));
        else if (width == 2)
            cpu::outw(p, static_cast<uint16_t>(v));
        else
            cpu::outl(p, static_cast<uint32_t>(v));
    } else {
        m.u64[0] = width == 1 ? cpu::inb(p) : width == 2 ? cpu::inw(p) : cpu::inl(p);
    }
    return kOk;
}

// [pa, pa + len) lies inside [base, base + size).
bool inside(uint64_t pa, uint64_t len, uint64_t base, uint64_t size) {
    return pa >= base && len <= size && pa - base <= size - len;
}

int32_t sys_mapphys(Proc* caller, Message& m) {
    uint64_t pa = m.u64[0], len = m.u64[1];
    const Priv& pv = caller->priv;
    bool allowed = inside(pa, len, pv.mem_base, pv.mem_len);
    for (const Priv::MemRange& r : pv.granted_mem)
        allowed = allowed || inside(pa, len, r.base, r.len);
    if (len == 0 || !allowed) return kEPerm;
    uint64_t first = align_down<uint64_t>(pa, frames::kPageSize);
    uint64_t size = align_up<uint64_t>(pa + len, frames::kPageSize) - first;
    if (size > kDeviceMapTop - caller->device_va) return kENoMem;
    for (uint64_t off = 0; off < size; off += frames::kPageSize)
        if (!caller->as.map(caller->device_va + off, first + off,
                            AddressSpace::kWritable | AddressSpace::kUncached))
            return kENoMem;
    m.u64[0] = caller->device_va + (pa - first);
    caller->device_va += size;
    return kOk;
}

// kMapContiguous: n frames in a row mapped at va (the range is known to be unmapped).
int32_t map_contiguous(Proc* caller, uint64_t va, uint64_t len, unsigned flags, uint64_t* pa) {
    if (!caller->priv.driver) return kEPerm;
    uint64_t n = len / frames::kPageSize, first = frames::alloc_contiguous(n);
    if (!first) return kENoMem;
    for (uint64_t i = 0; i < n; ++i) {
        if (caller->as.map(va + i * frames::kPageSize, first + i * frames::kPageSize,
                           flags | AddressSpace::kOwned | AddressSpace::kDma))
            continue;
        caller->as.unmap(va, i * frames::kPageSize);  // frees the frames mapped so far
        for (; i < n; ++i) frames::free(first + i * frames::kPageSize);
        return kENoMem;
    }
    *pa = first;
    return kOk;
}

int32_t sys_mapanon(Proc* caller, Message& m) {
    uint64_t va = m.u64[0], len = align_up<uint64_t>(m.u64[1], frames::kPageSize);
    if (len == 0 || len > kHeapTop - kHeapBase || (va & (frames::kPageSize - 1)) ||
        (m.u64[2] & ~(kMapWritable | kMapExecutable | kMapContiguous)))
        return kEInval;
    bool pick = va == 0;
    if (!pick && (va < kUserImageBase || len > kUserTop - va)) return kEInval;
    if (pick) {
        if (len > kHeapTop - caller->heap_va) return kENoMem;
        va = caller->heap_va;
    }
    if (!caller->as.unmapped(va, len)) return pick ? kENoMem : kEBusy;
    unsigned flags = (m.u64[2] & kMapWritable ? unsigned{AddressSpace::kWritable} : 0u) |
                     (m.u64[2] & kMapExecutable ? unsigned{AddressSpace::kExecutable} : 0u);
    if (m.u64[2] & kMapContiguous) {
        uint64_t pa = 0;
        if (int32_t r = map_contiguous(caller, va, len, flags, &pa); r != kOk) return r;
        if (pick) caller->heap_va = va + len;
        m.u64[0] = va;
        m.u64[1] = pa;
        return kOk;
    }
    if (!caller->as.map_zeroed(va, len, flags)) {
        caller->as.unmap(va, len);
        return kENoMem;
    }
    if (pick) caller->heap_va = va + len;
    m.u64[0] = va;
    return kOk;
}

int32_t sys_unmap(Proc* caller, Message& m) {
    uint64_t va = m.u64[0], len = align_up<uint64_t>(m.u64[1], frames::kPageSize);
    // Only the areas the kernel calls map from; the image and the stack stay.
    bool heap = va >= kHeapBase && len <= kHeapTop - va;
    bool device = va >= kDeviceMapBase && len <= kDeviceMapTop - va;
    if ((va & (frames::kPageSize - 1)) || len == 0 || !(heap || device)) return kEInval;
    caller->as.unmap(va, len);
    return kOk;
}

int32_t sys_irqctl(Proc* caller, Message& m) {
    uint64_t irq = m.u64[0];
    if (irq >= 24 || !((caller->priv.irq_mask >> irq) & 1)) return kEPerm;
    if (!g_irq_init) {
        for (Endpoint& e : g_irq_owner) e = kNone;
        g_irq_init = true;
    }
    bool enable = m.u64[1] != 0;
    if (enable && g_irq_owner[irq] != kNone && g_irq_owner[irq] != caller->endpoint) return kEBusy;
    g_irq_owner[irq] = enable ? caller->endpoint : kNone;
    lapic::route_irq(static_cast<int>(irq), enable);
    return kOk;
}

int32_t sys_umapgrant(Proc* caller, Message& m) {
    constexpr int kMax = 32;
    if (!caller->priv.driver) return kEPerm;
    PhysRange ranges[kMax];
    int max = m.u64[6] < kMax ? static_cast<int>(m.u64[6]) : kMax;
    int32_t n = grant::umap(caller, static_cast<Endpoint>(m.u64[0]), static_cast<int32_t>(m.u64[1]),
                            m.u64[2], m.u64[3], m.u64[4], ranges, max);
    if (n <= 0) return n;
    if (!caller->as.copy_out({m.u64[5]}, ranges, sizeof(PhysRange) * static_cast<size_t>(n)))
        return kEFault;
    return n;
}

// The PCI server lets a driver map a device's memory or take its interrupt.
int32_t sys_privctl(Message& m) {
    Proc* p = proc::lookup(static_cast<Endpoint>(m.u64[0]));
    if (!p || p->is_task()) return kEDeadSrcDst;
    if (!p->priv.driver) return kEPerm;
    if (m.u64[1] == kPrivIrq) {
        if (m.u64[2] >= 24) return kEInval;
        p->priv.irq_mask |= 1ull << m.u64[2];
        return kOk;
    }
    if (m.u64[1] != kPrivMem) return kEInval;
    uint64_t base = m.u64[2], len = m.u64[3];
    // Device memory only: not the RAM the kernel maps, not the IOAPIC or LAPIC.
    constexpr uint64_t kApicBase = 0xfec00000, kApicEnd = 0xff000000;
    if (len == 0 || base < frames::kLimit || len > ~base ||
        (base < kApicEnd && base + len > kApicBase))
        return kEInval;
    for (Priv::MemRange& r : p->priv.granted_mem) {
        if (r.len && !inside(base, len, r.base, r.len)) continue;
        if (!r.len) r = {base, len};
        return kOk;
    }
    return kENoMem;
}

}  // namespace

int32_t system_call(Proc* caller, Message& m) {
    int32_t call = m.m_type;
    if (call <= 0 || call >= kNrKernelCalls) return kEBadRequest;
    if (!((caller->priv.call_mask >> call) & 1)) return kECallDenied;
    switch (call) {
        case kSysSpawn:
            return sys_spawn(caller, m);
        case kSysExit:
            proc::exit(caller, kExitNormal, m.u64[0]);
            return kOk;
        case kSysKill:
            return sys_kill(caller, m);
        case kSysGetKSig:
            return sys_getksig(caller, m);
        case kSysTimes:
            m.u64[0] = clock::uptime_ns();
            return kOk;
        case kSysSetAlarm:
            clock::set_alarm(caller, m.u64[0]);
            return kOk;
        case kSysGrantCreate: {
            int32_t id = grant::create(caller, static_cast<Endpoint>(m.u64[0]), {m.u64[1]},
                                       m.u64[2], m.u64[3]);
            if (id < 0) return id;
            m.u64[0] = static_cast<uint64_t>(id);
            return kOk;
        }
        case kSysGrantRevoke:
            return grant::revoke(caller, static_cast<int32_t>(m.u64[0]));
        case kSysSafeCopyFrom:
        case kSysSafeCopyTo:
            return grant::safecopy(caller, static_cast<Endpoint>(m.u64[0]),
                                   static_cast<int32_t>(m.u64[1]), m.u64[2], {m.u64[3]}, m.u64[4],
                                   call == kSysSafeCopyTo);
        case kSysDevIo:
            return sys_devio(caller, m);
        case kSysIrqCtl:
            return sys_irqctl(caller, m);
        case kSysMapPhys:
            return sys_mapphys(caller, m);
        case kSysMapAnon:
            return sys_mapanon(caller, m);
        case kSysUnmap:
            return sys_unmap(caller, m);
        case kSysGetInfo:
            m.u64[0] = static_cast<uint64_t>(caller->endpoint);
            m.u64[1] = static_cast<uint64_t>(caller->parent);
            m.u64[2] = static_cast<uint64_t>(boot_image::count());
            m.u64[3] = static_cast<uint64_t>(caller->priv.cls);
            return kOk;
        case kSysFindProc:
            return sys_findproc(m);
        case kSysProcInfo:
            return sys_procinfo(m);
        case kSysFork:
            return sys_fork(caller, m);
        case kSysExec:
            return sys_exec(caller, m);
        case kSysPrivCtl:
            return sys_privctl(m);
        case kSysUmapGrant:
            return sys_umapgrant(caller, m);
        case kSysSigSend:
            return sys_sigsend(caller, m);
        case kSysSigReturn:
            return sys_sigreturn(caller, m);
        default:
            return kENoSys;
    }
}

uint64_t notify_bits(Proc* source, Proc* dst) {
    if (source->endpoint == kHardware) {
        uint64_t bits = 0;
        if (g_irq_init)
            for (int irq = 0; irq < 24; ++irq)
                if (g_irq_owner[irq] == dst->endpoint && ((g_irq_pending >> irq) & 1)) {
                    bits |= 1ull << irq;
                    g_irq_pending &= ~(1u << irq);
                }
        return bits;
    }
    return 0;
}

void irq_fired(int irq) {
    if (!g_irq_init || irq < 0 || irq >= 24) return;
    g_irq_pending |= 1u << irq;
    if (Proc* p = proc::lookup(g_irq_owner[irq])) ipc::notify(proc::by_slot(kHardware), p);
}

bool waiting_for_irq() {
    if (!g_irq_init) return false;
    for (Endpoint e : g_irq_owner)
        if (e != kNone) return true;
    return false;
}

void child_exited(Proc* p, uint64_t reason, uint64_t detail) {
    Proc* parent = proc::lookup(p->parent);
    if (!parent || parent->is_task()) return;
    for (ChildRecord& r : g_records) {
        if (r.parent != kNone) continue;
        r = {parent->endpoint, p->endpoint, reason, detail};
        break;
    }
    ipc::notify(proc::by_slot(kSystem), parent);
}

void forget(Proc* p) {
    if (g_irq_init)
        for (int irq = 0; irq < 24; ++irq)
            if (g_irq_owner[irq] == p->endpoint) {
                g_irq_owner[irq] = kNone;
                lapic::route_irq(irq, false);
            }
    for (ChildRecord& r : g_records)
        if (r.parent == p->endpoint) r = ChildRecord{};
}

int32_t call(Proc* caller, Proc* dst, UserAddr where) {
    Message m;
    if (!caller->as.copy_in(&m, where, sizeof m)) return kEFault;
    Endpoint caller_e = caller->endpoint;
    int32_t status;
    switch (dst->endpoint) {
        case kSystem:
            status = system_call(caller, m);
            break;
        case kVmm:
            status = vmm_call(caller, m);
            break;
        default:
            return kEBadRequest;
    }
    // kSysExit (or a kill of oneself) leaves nobody to reply to.
    if (caller->endpoint != caller_e || (caller->blocked & kSlotFree)) return kOk;
    if (status == kJustReturn) return status;
    m.m_source = dst->endpoint;
    m.m_type = status;
    return ipc::deliver_reply(caller, where, m) ? kOk : kEFault;
}

}  // namespace kernel::task
