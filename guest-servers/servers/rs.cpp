// RS, the reincarnation server: boot module 0. Starts the system services from its table
// (each runs with the privileges the kernel's policy table gives its program name),
// publishes their endpoints in DS, heartbeats them, and restarts one that died or stopped
// answering, after an exponential back-off, reporting it on the console.
#include "sys.hpp"

using namespace ukvm::kernel;
using user::print;

namespace {

constexpr uint64_t kMs = 1000000;
constexpr uint64_t kHeartbeatNs = 1000 * kMs;  // ping period
constexpr int kMaxMissed = 3;                  // unanswered pings before a kill
constexpr uint64_t kBackoffFirstNs = 20 * kMs;
constexpr uint64_t kBackoffMaxNs = 5000 * kMs;
constexpr uint64_t kStableNs = 10000 * kMs;  // up this long: the back-off starts over

// The boot services, in start order. DS comes first so that the others can be published.
struct ServiceSpec {
    const char* name;  // in DS
    const char* args;
    bool restart;                   // restart when it dies
    bool heartbeat;                 // it answers RS's pings
    const char* program = nullptr;  // the boot program when it is not name
};
constexpr ServiceSpec kServices[] = {
    {"ds", "", true, true},
    {"pm", "", true, true},
    {"tty", "", true, true},
    {"pci", "", true, true},             // before the drivers, which claim their devices from it
    {"vblk0", "0", true, true, "vblk"},  // the first virtio-blk disk (kENoDev without one)
    {"vnet0", "0", true, true, "vnet"},  // the first virtio-net device (kENoDev without one)
    {"vcons", "", true, true},           // virtio-console input for TTY (idle without one)
    {"inet", "", true, true},            // TCP/IP (en0's address: its boot module's arguments)
    {"mfs", "", true, true},             // the root file system on vblk0 (mounted on first use)
    {"vfs", "", true, true},             // file descriptors and the file calls
    {"init", "", false, false},          // the root of user space; it keeps a shell running
};
constexpr int kMaxServices = 16;

struct Service {
    ServiceSpec spec;
    Endpoint endpoint = kNone;
    uint64_t started_ns = 0;
    uint64_t restart_at_ns = 0;  // 0: none pending
    uint64_t backoff_ns = kBackoffFirstNs;
    uint64_t last_pong_ns = 0;
    int missed = 0;
    int restarts = 0;
};
Service g_state[kMaxServices];
int g_nr = 0;

// The table, then the services named in RS's arguments (restarted and heartbeaten; for
// tests: "hang" is a service that stops answering; "vblk1:vblk:1" the second disk's
// driver). "--only NAME...": DS and the named ones, no other table entries (the in-guest
// test suite's RS area).
void load_table(const char* args) {
    bool only = strncmp(args, "--only", 6) == 0 && (args[6] == ' ' || args[6] == '\0');
    for (const ServiceSpec& spec : kServices)
        if (!only || strcmp(spec.name, "ds") == 0) g_state[g_nr++].spec = spec;
    if (only) args += 6;
    static char names[128];
    strncpy(names, args, sizeof names - 1);
    for (char* p = names; *p && g_nr < kMaxServices;) {
        while (*p == ' ') *p++ = '\0';
        if (!*p) break;
        ServiceSpec& spec = g_state[g_nr++].spec;
        spec = {p, "", true, true};
        // NAME:PROGRAM:ARG runs PROGRAM with ARG as service NAME (e.g. vblk1:vblk:1).
        for (int field = 0; *p && *p != ' '; ++p) {
            if (*p != ':' || field == 2) continue;
            *p = '\0';
            if (field++ == 0)
                spec.program = p + 1;
            else
                spec.args = p + 1;
        }
    }
}
uint64_t g_next_ping_ns = 0;

int32_t generation(Endpoint e) {
    return e / kGenerationSize;
}

void publish(int i) {
    Endpoint ds = g_state[0].endpoint;
    if (ds == kNone) return;
    Message m{};
    user::set_name(&m, g_state[i].spec.name);
    m.m_type = proto::kDsPublish;
    m.i64[2] = g_state[i].endpoint;
    int32_t r = user::sendrec(ds, &m);
    if (r != kOk || m.m_type != kOk)
        print("rs: publishing %s in DS failed (%d/%d)\n", g_state[i].spec.name, r, m.m_type);
}

bool start(int i, uint64_t now) {
    Message m{};
    const ServiceSpec& spec = g_state[i].spec;
    user::set_name(&m, spec.program ? spec.program : spec.name);
    strncpy(reinterpret_cast<char*>(m.bytes + kSpawnArgsOffset), g_state[i].spec.args,
            kSpawnArgsMax - 1);
    int32_t r = user::kernel_call(kSysSpawn, &m);
    if (r < 0) {
        print("rs: cannot start %s (%d)\n", g_state[i].spec.name, r);
        return false;
    }
    Service& s = g_state[i];
    s.endpoint = static_cast<Endpoint>(m.u64[0]);
    s.started_ns = s.last_pong_ns = now;
    s.missed = 0;
    s.restart_at_ns = 0;
    if (i == 0) {
        for (int j = 0; j < g_nr; ++j)
            if (g_state[j].endpoint != kNone) publish(j);  // a new DS knows nothing yet
    } else {
        publish(i);
    }
    return true;
}

// A service's process ended (reason/detail from the kernel): schedule its restart.
void died(Endpoint e, uint64_t reason, uint64_t detail, uint64_t now) {
    for (int i = 0; i < g_nr; ++i) {
        Service& s = g_state[i];
        if (s.endpoint != e) continue;
        char how[32];
        if (reason == kExitNormal)
            user::format(how, sizeof how, "exited with status %lu", detail);
        else if (reason == kExitFault)
            user::format(how, sizeof how, "faulted (vector %lu)", detail);
        else
            user::format(how, sizeof how, "was killed (signal %lu)", detail);
        print("rs: %s (endpoint %d, generation %d) %s\n", g_state[i].spec.name, e, generation(e),
              how);
        s.endpoint = kNone;
        if (!g_state[i].spec.restart) return;
        if (now - s.started_ns >= kStableNs) s.backoff_ns = kBackoffFirstNs;
        s.restart_at_ns = now + s.backoff_ns;
        print("rs: restarting %s in %lu ms\n", g_state[i].spec.name, s.backoff_ns / kMs);
        s.backoff_ns = s.backoff_ns * 2 > kBackoffMaxNs ? kBackoffMaxNs : s.backoff_ns * 2;
        return;
    }
}

void reap(uint64_t now) {
    Message k{};
    while (user::kernel_call(kSysGetKSig, &k) == kOk && static_cast<Endpoint>(k.u64[0]) != kNone) {
        died(static_cast<Endpoint>(k.u64[0]), k.u64[1], k.u64[2], now);
        k = Message{};
    }
}

void restart_due(uint64_t now) {
    for (int i = 0; i < g_nr; ++i) {
        Service& s = g_state[i];
        if (!s.restart_at_ns || s.restart_at_ns > now) continue;
        if (start(i, now)) {
            ++s.restarts;
            print("rs: %s restarted: endpoint %d, generation %d (restart %d)\n",
                  g_state[i].spec.name, s.endpoint, generation(s.endpoint), s.restarts);
        } else {
            s.restart_at_ns = now + s.backoff_ns;
        }
    }
}

void ping(uint64_t now) {
    if (now < g_next_ping_ns) return;
    // A round that runs late means the whole VM did not run meanwhile (its host was busy):
    // the services had no chance to answer either, so such a round counts no misses.
    const bool late = now > g_next_ping_ns + kHeartbeatNs / 2;
    for (int i = 0; i < g_nr; ++i) {
        Service& s = g_state[i];
        if (!g_state[i].spec.heartbeat || s.endpoint == kNone) continue;
        if (!late && s.last_pong_ns + kHeartbeatNs < now && ++s.missed >= kMaxMissed) {
            print("rs: %s (endpoint %d) does not answer; killing it\n", g_state[i].spec.name,
                  s.endpoint);
            Message k{};
            k.u64[0] = static_cast<uint64_t>(s.endpoint);
            k.u64[1] = proto::kSigKill;
            user::kernel_call(kSysKill, &k);  // its death arrives as a SYSTEM notification
            continue;
        }
        user::notify(s.endpoint);
    }
    g_next_ping_ns = now + kHeartbeatNs;
}

void pong(Endpoint from, uint64_t now) {
    for (Service& s : g_state)
        if (s.endpoint == from) s.last_pong_ns = now, s.missed = 0;
}

void arm_alarm(uint64_t now) {
    uint64_t next = g_next_ping_ns;
    for (const Service& s : g_state)
        if (s.restart_at_ns && s.restart_at_ns < next) next = s.restart_at_ns;
    Message a{};
    a.u64[0] = next > now ? next - now : 1;
    user::kernel_call(kSysSetAlarm, &a);
}

}  // namespace

int main(const char* args) {
    load_table(args);
    uint64_t now = user::uptime_ns();
    for (int i = 0; i < g_nr; ++i) start(i, now);
    g_next_ping_ns = now + kHeartbeatNs;
    arm_alarm(now);
    for (;;) {
        Message m{};
        if (user::receive(kAny, &m) != kOk) continue;
        now = m.m_type == kNotifyMessage ? m.notify.timestamp_ns : user::uptime_ns();
        if (m.m_type != kNotifyMessage) {
            m.m_type = kENoSys;  // RS takes no requests yet
            user::sendnb(m.m_source, &m);
            continue;
        }
        if (m.m_source == kSystem) {
            reap(now);
        } else if (m.m_source == kClock) {
            restart_due(now);
            ping(now);
        } else {
            pong(m.m_source, now);
            continue;  // the alarm stands
        }
        arm_alarm(now);
    }
}
