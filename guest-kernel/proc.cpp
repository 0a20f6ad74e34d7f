#include "proc.hpp"

#include "arch/x86_64/layout.h"
#include "clock.hpp"
#include "console.hpp"
#include "grant.hpp"
#include "ipc.hpp"
#include "lib.hpp"
#include "sched.hpp"
#include "task.hpp"

namespace kernel::proc {

using namespace ukvm::kernel;

namespace {

struct TaskInfo {
    Endpoint nr;
    const char* name;
};
constexpr TaskInfo kTasks[] = {
    {kVmm, "vmm"}, {kIdle, "idle"}, {kClock, "clock"}, {kSystem, "system"}, {kHardware, "hardware"},
};

int32_t generation(Endpoint e) {
    return e / kGenerationSize;
}

}  // namespace

bool is_valid_endpoint(Endpoint e) {
    if (e >= -kNrTasks && e < 0) return true;
    return e >= 0 && endpoint_slot(e) < kNrProcs && generation(e) <= kMaxGeneration;
}

Proc* lookup(Endpoint e) {
    if (!is_valid_endpoint(e)) return nullptr;
    Proc* p = by_slot(endpoint_slot(e));
    if (!p || (p->blocked & kSlotFree) || p->endpoint != e) return nullptr;
    return p;
}

void init() {
    for (int i = 0; i < kNrSlots; ++i) {
        table[i].nr = i - kNrTasks;
        table[i].endpoint = table[i].nr;
    }
    for (const TaskInfo& t : kTasks) {
        Proc* p = by_slot(t.nr);
        p->blocked = 0;  // alive, never scheduled: it is not in a ready queue
        p->priv.cls = ProcClass::kTask;
        p->priv.priority = 0;
        memcpy(p->name, t.name, strlen(t.name) + 1);
    }
}

Proc* allocate() {
    for (int nr = 0; nr < kNrProcs; ++nr) {
        Proc* p = by_slot(nr);
        if (!(p->blocked & kSlotFree)) continue;
        int32_t gen = generation(p->endpoint) + 1;
        if (gen > kMaxGeneration) gen = 1;
        Endpoint endpoint = gen * kGenerationSize + nr;
        *p = Proc{};
        p->nr = nr;
        p->endpoint = endpoint;
        return p;
    }
    return nullptr;
}

void exit(Proc* p, uint64_t reason, uint64_t detail) {
    if (p->runnable()) sched::unready(p);
    ipc::cleanup(p);
    grant::revoke_all(p);
    clock::cancel_alarm(p);
    task::forget(p);
    sched::forget_address_space(p->as);
    sched::forget_fpu(p);
    p->as.destroy();
    p->blocked = kSlotFree;
    if (current == p) current = nullptr;
    task::child_exited(p, reason, detail);

    bool any_left = false;
    for (int nr = 0; nr < kNrProcs; ++nr) any_left |= !(by_slot(nr)->blocked & kSlotFree);
    if (!any_left) {
        print("ukvm-kernel: no processes left, powering off\n");
        console::halt(reason == kExitNormal ? static_cast<int>(detail) : 1);
    }
}

}  // namespace kernel::proc
