#include "boot_image.hpp"

#include "arch/x86_64/layout.h"
#include "clock.hpp"
#include "elf.hpp"
#include "grant.hpp"
#include "lib.hpp"
#include "sched.hpp"
#include "table.hpp"

namespace kernel::boot_image {

using namespace ukvm::kernel;

namespace {

Module g_modules[kMaxModules];
int g_count = 0;

constexpr uint64_t kStackSize = 64 * 1024;

}  // namespace

// Users may send to every server; a new server becomes reachable for existing users.
void connect(Proc* p) {
    for (Proc& other : proc::table) {
        if (other.blocked & kSlotFree || other.is_task() || &other == p) continue;
        if (other.priv.cls == ProcClass::kUser && p->priv.cls == ProcClass::kServer)
            other.priv.send_mask |= 1ull << p->index();
        if (p->priv.cls == ProcClass::kUser && other.priv.cls == ProcClass::kServer)
            p->priv.send_mask |= 1ull << other.index();
    }
}

void add(uint64_t start, uint64_t end, const char* cmdline) {
    if (g_count == kMaxModules) return;
    Module& m = g_modules[g_count++];
    m.start = start;
    m.end = end;
    size_t n = cmdline ? strlen(cmdline) : 0;
    if (n >= kCmdlineLen) n = kCmdlineLen - 1;
    memcpy(m.cmdline, cmdline, n);
    m.cmdline[n] = '\0';
    // name = the first word's file name
    size_t end_of_path = 0, base = 0;
    while (end_of_path < n && m.cmdline[end_of_path] != ' ') {
        if (m.cmdline[end_of_path] == '/') base = end_of_path + 1;
        ++end_of_path;
    }
    size_t len = end_of_path - base;
    if (len >= kNameLen) len = kNameLen - 1;
    memcpy(m.name, m.cmdline + base, len);
    m.name[len] = '\0';
}

int count() {
    return g_count;
}
const Module* get(int index) {
    return index >= 0 && index < g_count ? &g_modules[index] : nullptr;
}

namespace {

// A fresh address space for module m: its ELF image, a stack, and the command line (the
// module's, or its path followed by args) at the top of the stack. 0 on failure, else
// the entry point; *arg is the command line's address.
uint64_t load(const Module* m, const char* args, AddressSpace& as, uint64_t* arg) {
    char cmdline[kCmdlineLen];
    size_t path = 0;
    while (m->cmdline[path] && m->cmdline[path] != ' ') ++path;
    if (args && path + 2 < kCmdlineLen) {
        size_t n = strlen(args);
        if (path + 1 + n >= kCmdlineLen) n = kCmdlineLen - 2 - path;
        memcpy(cmdline, m->cmdline, path);
        cmdline[path] = ' ';
        memcpy(cmdline + path + 1, args, n);
        cmdline[path + 1 + n] = '\0';
    } else {
        memcpy(cmdline, m->cmdline, kCmdlineLen);
    }
    size_t len = strlen(cmdline) + 1;
    *arg = kUserTop - align_up<uint64_t>(len, 16);
    if (!as.create()) return 0;
    uint64_t entry = elf::load(reinterpret_cast<const uint8_t*>(m->start), m->end - m->start, as);
    if (entry && (!as.map_zeroed(kUserTop - kStackSize, kStackSize, AddressSpace::kWritable) ||
                  !as.copy_out({*arg}, cmdline, len)))
        entry = 0;
    if (!entry) as.destroy();  // (out of memory, or a malformed image reported at boot)
    return entry;
}

// The registers and FPU state of a program starting at entry (ukvm/kernel.h).
void start_state(Proc* p, uint64_t entry, uint64_t arg) {
    sched::init_fpu_state(p);
    p->regs = Regs{};
    p->regs.rip = entry;
    p->regs.cs = SEL_UCODE;
    p->regs.ss = SEL_UDATA;
    p->regs.rflags = RFLAGS_RESERVED | RFLAGS_IF;
    p->regs.rsp = arg - 8;  // as if called: the ABI expects rsp % 16 == 8 at entry
    p->regs.rdi = arg;
    p->regs.rsi = static_cast<uint64_t>(p->endpoint);
    p->regs.rdx = static_cast<uint64_t>(p->parent);
}

}  // namespace

Proc* spawn(int index, Endpoint parent, int32_t* error, const char* args) {
    const Module* m = get(index);
    if (!m) return *error = kEInval, nullptr;
    Proc* p = proc::allocate();
    if (!p) return *error = kEBusy, nullptr;
    uint64_t arg = 0;
    uint64_t entry = load(m, args, p->as, &arg);
    if (!entry) {
        p->blocked = kSlotFree;
        return *error = kENoMem, nullptr;
    }
    memcpy(p->name, m->name, kNameLen);
    p->priv = table::privileges_for(m->name);
    p->parent = parent;
    p->module = index;
    start_state(p, entry, arg);
    p->blocked = 0;
    connect(p);
    sched::ready(p);
    return p;
}

int32_t exec(Proc* p, int index, const char* args) {
    const Module* m = get(index);
    if (!m) return kEInval;
    AddressSpace as;
    uint64_t arg = 0;
    uint64_t entry = load(m, args, as, &arg);
    if (!entry) return kENoMem;
    // The old program's memory and what refers to it go; the process (endpoint, parent,
    // privileges, pending notifications, callers queued on it) stays.
    grant::revoke_all(p);
    clock::cancel_alarm(p);
    sched::forget_address_space(p->as);
    sched::forget_fpu(p);
    p->as.destroy();
    p->as = as;
    p->heap_va = kHeapBase;
    p->device_va = kDeviceMapBase;
    memcpy(p->name, m->name, kNameLen);
    p->module = index;
    start_state(p, entry, arg);
    if (p->blocked == 0) sched::unready(p);
    p->blocked = 0;
    p->reply_pending = false;
    p->get_from = kNone;
    p->entered_by_syscall = false;
    sched::ready(p);
    return kOk;
}

}  // namespace kernel::boot_image
