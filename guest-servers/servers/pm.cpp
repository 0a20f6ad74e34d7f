// PM, the process manager: starts programs from the boot image on request (spawn: a new
// process, as the kernel's child of PM and PM's child of the requester), forks (the
// kernel copies the requester while it waits for PM's reply), execs (the kernel replaces
// the waiting requester's program), reports their
// end to a waiting parent (wait), gives out process ids, sends signals (default actions
// here; handlers run in the process through the kernel's kSysSigSend), lists processes
// and powers the machine off or reboots it (user processes get SIGTERM, then SIGKILL
// after a grace period, then the file system syncs).
//
// Pids are PM's own: small numbers handed out on first sight of an endpoint (system
// services included), kept per process slot, so a restarted service gets a new pid.
#include <ukvm/hypercall.h>

#include "sys.hpp"

using namespace ukvm::kernel;
using user::print;

namespace {

struct Pid {
    Endpoint endpoint = kNone;
    int32_t pid = 0;
};
Pid g_pids[kNrProcs];  // by slot
int32_t g_next_pid = 1;

int32_t pid_of(Endpoint e) {
    if (e < 0 || endpoint_slot(e) >= kNrProcs) return 0;  // kernel tasks, kNone
    Pid& p = g_pids[endpoint_slot(e)];
    if (p.endpoint != e) p = {e, g_next_pid++};
    return p.pid;
}

Endpoint endpoint_of(int32_t pid) {
    for (const Pid& p : g_pids)
        if (p.pid == pid && p.endpoint != kNone) return p.endpoint;
    return kNone;
}

// VFS keeps each process's file descriptors: a fork copies them, an exit closes them.
void tell_vfs(int32_t call, Endpoint a, Endpoint b = kNone) {
    Message v{};
    v.m_type = call;
    v.i64[0] = a, v.i64[1] = b;
    sys::call("vfs", &v);  // no VFS (kESrch): nothing to do
}

// Processes PM started, live or ended and not yet waited for (zombies).
struct Child {
    Endpoint endpoint = kNone;  // kNone: a free entry
    Endpoint parent = kNone;    // who asked for it
    int32_t pid = 0;
    bool zombie = false;
    uint64_t reason = 0, detail = 0;
};
constexpr int kMaxChildren = 48;
Child g_children[kMaxChildren];

// Parents blocked in kPmWait.
struct Waiter {
    Endpoint parent = kNone;
    int32_t pid = 0;  // -1: any child
};
Waiter g_waiters[16];

// A power-off or reboot in progress: the user processes got SIGTERM; once they have all
// ended, or kPowerOffGraceNs has passed, the rest get SIGKILL, the file system syncs and
// the machine halts (or reboots). Meanwhile nobody new starts and no wait is answered
// (init would only start another shell).
struct PowerOff {
    bool active = false;
    bool reboot = false;
    int status = 0;
    Endpoint requester = kNone;  // kPmPowerOff's caller: it waits for the end, untouched
    uint64_t deadline_ns = 0;
};
PowerOff g_power_off;
constexpr uint64_t kPowerOffGraceNs = 1000000000;

// Signal dispositions, by slot (reset when a new process takes the slot).
struct Signals {
    Endpoint endpoint = kNone;
    uint64_t handler[proto::kNrSignals] = {};  // kSigDefault, kSigIgnore or an address
    uint64_t restorer = 0;
    uint32_t pending = 0;  // caught signals not delivered yet (kSysSigSend said kEBusy)
};
Signals g_signals[kNrProcs];
uint64_t g_retry_ns = 0;  // when to try the pending ones again (0: none)
constexpr uint64_t kRetryNs = 20000000;

Signals& signals_of(Endpoint e) {
    Signals& s = g_signals[endpoint_slot(e)];
    if (s.endpoint != e) s = Signals{e};
    return s;
}

bool matches(const Child& c, Endpoint parent, int32_t pid) {
    return c.endpoint != kNone && c.parent == parent && (pid == -1 || c.pid == pid);
}

// Replies to a wait with c's end and frees c.
void deliver(Endpoint parent, Child& c) {
    Message r{};
    r.m_type = c.pid;
    r.i64[1] = static_cast<int64_t>(c.reason);
    r.i64[2] = static_cast<int64_t>(c.detail);
    user::sendnb(parent, &r);  // it waits in SENDREC; if it died meanwhile, no one cares
    c = Child{};
}

int32_t do_spawn(Message& m) {
    if (g_power_off.active) return kEBusy;
    Child* c = nullptr;
    for (Child& x : g_children)
        if (x.endpoint == kNone) c = &x;
    if (!c) return kEBusy;
    Endpoint parent = m.m_source;
    m.bytes[kNameMax - 1] = '\0';
    m.bytes[55] = '\0';
    int32_t r = user::kernel_call(kSysSpawn, &m);
    if (r < 0) return r;
    auto e = static_cast<Endpoint>(m.u64[0]);
    *c = Child{e, parent, pid_of(e)};
    return c->pid;
}

// The caller, waiting for our reply, runs another program from now on: no reply.
int32_t do_exec(Message& m, bool* deferred) {
    Endpoint client = m.m_source;
    m.bytes[kNameMax - 1] = '\0';
    memset(m.bytes + kSpawnArgsOffset + kExecArgsMax - 1, 0,
           56 - kSpawnArgsOffset - kExecArgsMax + 1);
    m.i64[6] = client;
    int32_t r = user::kernel_call(kSysExec, &m);
    *deferred = r == kOk;
    if (r == kOk) {  // caught signals go back to their default; ignored ones stay ignored
        Signals& s = signals_of(client);
        for (uint64_t& h : s.handler)
            if (h != proto::kSigIgnore) h = proto::kSigDefault;
    }
    return r;
}

// The caller, waiting for our reply, is copied by the kernel; both get a reply (the
// child's pid, and 0 in the child).
int32_t do_fork(Message& m) {
    if (g_power_off.active) return kEBusy;
    Child* c = nullptr;
    for (Child& x : g_children)
        if (x.endpoint == kNone) c = &x;
    if (!c) return kEBusy;
    Endpoint parent = m.m_source;
    Message k{};
    k.u64[0] = static_cast<uint64_t>(parent);
    int32_t r = user::kernel_call(kSysFork, &k);
    if (r < 0) return r;
    auto e = static_cast<Endpoint>(k.u64[0]);
    *c = Child{e, parent, pid_of(e)};
    tell_vfs(proto::kVfsFork, parent, e);
    Signals& cs = signals_of(e);  // the child keeps its parent's dispositions
    memcpy(cs.handler, signals_of(parent).handler, sizeof cs.handler);
    cs.restorer = signals_of(parent).restorer;
    Message child{};
    child.m_type = 0;
    user::sendnb(e, &child);
    return c->pid;
}

// Returns the pid at once, or -1 when the caller must wait (no reply now).
int32_t do_wait(Message& m, bool* deferred) {
    auto pid = static_cast<int32_t>(m.i64[0]);
    bool any = false;
    for (Child& c : g_children) {
        if (!matches(c, m.m_source, pid)) continue;
        if (c.zombie) {
            int32_t found = c.pid;
            m.i64[1] = static_cast<int64_t>(c.reason);
            m.i64[2] = static_cast<int64_t>(c.detail);
            c = Child{};
            return found;
        }
        any = true;
    }
    if (!any) return proto::kEChild;
    for (Waiter& w : g_waiters) {
        if (w.parent != kNone) continue;
        w = {m.m_source, pid};
        *deferred = true;
        return 0;
    }
    return kEBusy;
}

bool ignored_by_default(int sig) {
    return sig == proto::kSigChld;
}

int32_t terminate(Endpoint e, int sig) {
    Message k{};
    k.u64[0] = static_cast<uint64_t>(e);
    k.u64[1] = static_cast<uint64_t>(sig);
    int32_t r = user::kernel_call(kSysKill, &k);
    return r == kEDeadSrcDst ? kESrch : r;
}

void drop_deferred(Endpoint e);
void arm_alarm(uint64_t now);

// Does what signal sig means to the live process e: terminate it, nothing, or run its
// handler (now, or once the server holding its request has answered).
int32_t send_signal(Endpoint e, int sig) {
    if (e < 0 || endpoint_slot(e) >= kNrProcs) return kESrch;
    Signals& s = signals_of(e);
    uint64_t h = s.handler[sig];
    if (sig == proto::kSigKill || (h == proto::kSigDefault && !ignored_by_default(sig)))
        return terminate(e, sig);
    if (h == proto::kSigDefault || h == proto::kSigIgnore) return kOk;
    drop_deferred(e);  // its wait or sleep ends with EINTR
    Message k{};
    k.u64[0] = static_cast<uint64_t>(e);
    k.u64[1] = static_cast<uint64_t>(sig);
    k.u64[2] = h;
    k.u64[3] = s.restorer;
    k.u64[4] = static_cast<uint64_t>(user::find("tty"));  // a line read may be abandoned
    int32_t r = user::kernel_call(kSysSigSend, &k);
    if (r == kEBusy) {
        s.pending |= 1u << sig;
        if (!g_retry_ns) {
            uint64_t now = user::uptime_ns();
            g_retry_ns = now + kRetryNs;
            arm_alarm(now);
        }
        return kOk;
    }
    if (r == kEFault) return terminate(e, sig);  // no room for the frame
    return r == kEInval ? kESrch : r;
}

void retry_pending(uint64_t now) {
    if (!g_retry_ns || g_retry_ns > now) return;
    g_retry_ns = 0;
    for (Signals& s : g_signals) {
        uint32_t pending = s.pending;
        s.pending = 0;
        for (int sig = 1; pending && sig < proto::kNrSignals; ++sig)
            if (pending & (1u << sig)) send_signal(s.endpoint, sig);
    }
}

// A signal to the requester itself goes out after the reply (else it would interrupt
// its own kill with EINTR).
Endpoint g_self_signal_to = kNone;
int g_self_signal = 0;

// kill(-pid, sig): every live child pid started (the shell's foreground job: there are
// no process groups of their own).
int32_t kill_children(Endpoint parent, int sig) {
    int32_t r = kESrch;
    for (Child& c : g_children) {
        if (c.endpoint == kNone || c.zombie || c.parent != parent) continue;
        r = kOk;
        if (sig) send_signal(c.endpoint, sig);
    }
    return r;
}

int32_t do_kill(Message& m) {
    auto pid = static_cast<int32_t>(m.i64[0]);
    auto sig = static_cast<int>(m.i64[1]);
    if (sig < 0 || sig >= proto::kNrSignals) return kEInval;
    Endpoint e = endpoint_of(pid < 0 ? -pid : pid);
    if (e == kNone) return kESrch;
    if (pid < 0) return kill_children(e, sig);
    // The process managers themselves stay.
    if (e == user::self() || e == user::find("rs")) return kEPerm;
    if (sig == 0) return kOk;
    if (e == m.m_source) {
        g_self_signal_to = e, g_self_signal = sig;
        return kOk;
    }
    return send_signal(e, sig);
}

int32_t do_sigaction(Message& m) {
    auto sig = static_cast<int>(m.i64[0]);
    if (sig <= 0 || sig >= proto::kNrSignals || sig == proto::kSigKill) return kEInval;
    if (m.u64[1] >= kUserTop) return kEInval;
    Signals& s = signals_of(m.m_source);
    uint64_t old = s.handler[sig];
    s.handler[sig] = m.u64[1];
    if (m.u64[1] > proto::kSigIgnore) s.restorer = m.u64[2];
    m.u64[1] = old;
    return kOk;
}

int32_t do_procs(Message& m) {
    Message k{};
    k.u64[0] = static_cast<uint64_t>(m.i64[0]);
    int32_t r = user::kernel_call(kSysProcInfo, &k);
    if (r != kOk) return r;
    ProcInfo info;
    memcpy(&info, k.bytes, sizeof info);
    int32_t ids[2] = {pid_of(info.endpoint), pid_of(info.parent)};
    for (const Child& c : g_children)  // PM's children: their parent is the requester
        if (c.endpoint == info.endpoint && c.endpoint != kNone) ids[1] = pid_of(c.parent);
    memcpy(m.bytes, &info, sizeof info);
    memcpy(m.bytes + proto::kPidOffset, ids, sizeof ids);
    return kOk;
}

// Callers of kPmSleep, answered when their time has come (PM's one alarm is set for the
// earliest).
struct Sleeper {
    Endpoint endpoint = kNone;
    uint64_t wake_ns = 0;
};
Sleeper g_sleepers[16];

void arm_alarm(uint64_t now) {
    uint64_t next = 0;
    for (const Sleeper& s : g_sleepers)
        if (s.endpoint != kNone && (!next || s.wake_ns < next)) next = s.wake_ns;
    if (g_retry_ns && (!next || g_retry_ns < next)) next = g_retry_ns;
    if (g_power_off.active && (!next || g_power_off.deadline_ns < next))
        next = g_power_off.deadline_ns;
    Message a{};
    a.u64[0] = next ? (next > now ? next - now : 1) : 0;
    user::kernel_call(kSysSetAlarm, &a);
}

int32_t do_sleep(Message& m, bool* deferred) {
    for (Sleeper& s : g_sleepers) {
        if (s.endpoint != kNone) continue;
        uint64_t now = user::uptime_ns();
        s = {m.m_source, now + m.u64[0]};
        arm_alarm(now);
        *deferred = true;
        return kOk;
    }
    return kEBusy;
}

// A signal handler is about to run in e: its deferred wait or sleep ends (the kernel
// makes the call return kEIntr), so PM must not answer it later.
void drop_deferred(Endpoint e) {
    for (Waiter& w : g_waiters)
        if (w.parent == e) w = Waiter{};
    for (Sleeper& s : g_sleepers)
        if (s.endpoint == e) s = Sleeper{};
}

void wake(uint64_t now) {
    retry_pending(now);
    for (Sleeper& s : g_sleepers) {
        if (s.endpoint == kNone || s.wake_ns > now) continue;
        Message r{};
        r.m_type = kOk;
        user::sendnb(s.endpoint, &r);
        s = Sleeper{};
    }
    arm_alarm(now);
}

// SYSTEM told us children ended: make them zombies and answer waiting parents.
void reap() {
    Message k{};
    while (user::kernel_call(kSysGetKSig, &k) == kOk && static_cast<Endpoint>(k.u64[0]) != kNone) {
        auto e = static_cast<Endpoint>(k.u64[0]);
        tell_vfs(proto::kVfsExit, e);
        for (Child& c : g_children) {
            if (c.endpoint != e) continue;
            c.zombie = true;
            c.reason = k.u64[1];
            c.detail = k.u64[2];
            // Its children are orphans now: nobody will wait for them.
            for (Child& o : g_children)
                if (o.parent == e && o.zombie) o = Child{};
            bool parent_alive = false;
            for (const Child& p : g_children) parent_alive |= p.endpoint == c.parent && !p.zombie;
            Endpoint parent = c.parent;
            for (Waiter& w : g_waiters) {
                if (g_power_off.active) break;
                if (w.parent == kNone || !matches(c, w.parent, w.pid)) continue;
                w = Waiter{};
                deliver(c.parent, c);
                break;
            }
            if (!g_power_off.active)
                send_signal(parent, proto::kSigChld);  // ignored unless it has a handler
            // A parent PM did not start (init, a service) is alive while the kernel says so.
            if (c.endpoint != kNone && !parent_alive) {
                Message info{};
                info.u64[0] = static_cast<uint64_t>(endpoint_slot(c.parent));
                bool alive = user::kernel_call(kSysProcInfo, &info) == kOk &&
                             reinterpret_cast<ProcInfo*>(info.bytes)->endpoint == c.parent;
                if (!alive) c = Child{};
            }
        }
        k = Message{};
    }
}

bool running_user_process(const Child& c) {
    return c.endpoint != kNone && !c.zombie && c.endpoint != g_power_off.requester;
}

// The end of a power-off: SIGKILL for what is left, the file system's cache to the disk
// (VFS, when DS knows one, gets proto::kVfsSync and answers once everything is on disk),
// then halt or reboot.
[[noreturn]] void finish_power_off() {
    for (Child& c : g_children)
        if (running_user_process(c)) terminate(c.endpoint, proto::kSigKill);
    tell_vfs(proto::kVfsSync, kNone);
    if (g_power_off.reboot) {
        print("pm: reboot\n");
        user::reboot();
    }
    print("pm: power off\n");
    user::halt(g_power_off.status);
}

// Done once every user process has ended, or when the grace period is over.
void check_power_off(uint64_t now) {
    if (!g_power_off.active) return;
    bool left = false;
    for (const Child& c : g_children) left |= running_user_process(c);
    if (!left || now >= g_power_off.deadline_ns) finish_power_off();
}

// Warns every user process PM started with SIGTERM (a handler may clean up) and lets the
// main loop run on until they have ended or the grace period is over.
void begin_power_off(int status, bool reboot, Endpoint requester) {
    if (g_power_off.active) return;
    uint64_t now = user::uptime_ns();
    g_power_off = {true, reboot, status, requester, now + kPowerOffGraceNs};
    for (Child& c : g_children)
        if (running_user_process(c)) send_signal(c.endpoint, proto::kSigTerm);
    arm_alarm(now);
    check_power_off(now);
}

// The host asked for a clean power-off (hc::kEventPowerOff, docs/hypercall-abi.md).
void host_power_off() {
    print("pm: the host asked for a shutdown; powering off\n");
    begin_power_off(0, false, kNone);
}

// IRQ hc::kEventIrq fired: take the host's pending requests.
void host_events() {
    Message m{};
    m.m_type = ukvm::hc::kEvents;
    if (user::sendrec(kVmm, &m) != kOk || m.m_type != ukvm::hc::kOk) return;
    if (m.u64[0] & ukvm::hc::kEventPowerOff) host_power_off();
}

}  // namespace

int main(const char*) {
    // Host requests (power off) arrive as an interrupt; without ukvm nobody raises it.
    Message irq{};
    irq.u64[0] = ukvm::hc::kEventIrq;
    irq.u64[1] = 1;
    user::kernel_call(kSysIrqCtl, &irq);
    host_events();  // a request posted before we listened
    // Pids in start order for what already runs (RS, DS, PM, ...).
    for (uint64_t slot = 0;;) {
        Message k{};
        k.u64[0] = slot;
        if (user::kernel_call(kSysProcInfo, &k) != kOk) break;
        auto* info = reinterpret_cast<const ProcInfo*>(k.bytes);
        pid_of(info->endpoint);
        slot = static_cast<uint64_t>(endpoint_slot(info->endpoint)) + 1;
    }
    for (;;) {
        Message m{};
        if (user::receive(kAny, &m) != kOk) continue;
        if (m.m_type == kNotifyMessage) {
            if (m.m_source == kSystem)
                reap();
            else if (m.m_source == kClock)
                wake(m.notify.timestamp_ns);
            else if (m.m_source == kHardware && (m.notify.bits & (1ull << ukvm::hc::kEventIrq)))
                host_events();
            else if (m.m_source == user::parent())
                user::notify(m.m_source);  // RS's heartbeat
            check_power_off(user::uptime_ns());
            continue;
        }
        Endpoint client = m.m_source;
        bool deferred = false;
        int32_t r;
        switch (m.m_type) {
            case proto::kPmSpawn:
                r = do_spawn(m);
                break;
            case proto::kPmExec:
                r = do_exec(m, &deferred);
                break;
            case proto::kPmSleep:
                r = do_sleep(m, &deferred);
                break;
            case proto::kPmFork:
                r = do_fork(m);
                break;
            case proto::kPmWait:
                r = do_wait(m, &deferred);
                break;
            case proto::kPmGetPid: {
                r = pid_of(client);
                m.i64[0] = 0;
                for (const Child& c : g_children)
                    if (c.endpoint == client) m.i64[0] = pid_of(c.parent);
                break;
            }
            case proto::kPmKill:
                r = do_kill(m);
                break;
            case proto::kPmSigAction:
                r = do_sigaction(m);
                break;
            case proto::kPmProcs:
                r = do_procs(m);
                break;
            case proto::kPmPowerOff:
                print("pm: %s (requested by pid %d)\n", m.i64[1] == 1 ? "reboot" : "power off",
                      pid_of(client));
                begin_power_off(static_cast<int>(m.i64[0]), m.i64[1] == 1, client);
                deferred = true;  // the caller waits for the end
                break;
            default:
                r = kENoSys;
                break;
        }
        if (deferred) continue;
        m.m_type = r;
        user::sendnb(client, &m);
        if (g_self_signal_to != kNone) {
            send_signal(g_self_signal_to, g_self_signal);
            g_self_signal_to = kNone;
        }
    }
}
