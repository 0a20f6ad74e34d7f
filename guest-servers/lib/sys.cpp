#include "sys.hpp"

using namespace ukvm::kernel;

extern "C" {

int strcmp(const char* a, const char* b) {
    while (*a && *a == *b) ++a, ++b;
    return static_cast<unsigned char>(*a) - static_cast<unsigned char>(*b);
}

int strncmp(const char* a, const char* b, size_t n) {
    for (; n; --n, ++a, ++b) {
        if (*a != *b) return static_cast<unsigned char>(*a) - static_cast<unsigned char>(*b);
        if (!*a) return 0;
    }
    return 0;
}

char* strchr(const char* s, int c) {
    for (;; ++s) {
        if (*s == static_cast<char>(c)) return const_cast<char*>(s);
        if (!*s) return nullptr;
    }
}

char* strncpy(char* dst, const char* src, size_t n) {
    size_t i = 0;
    for (; i < n && src[i]; ++i) dst[i] = src[i];
    for (; i < n; ++i) dst[i] = '\0';
    return dst;
}

// malloc: first fit over a free list of blocks carved from anonymous memory the kernel
// maps in 64 KiB chunks (or larger, for a large request). Blocks keep their size in a
// 16-byte header; freed blocks are not merged (guest programs are small and short).
namespace {
struct Block {
    size_t size;  // bytes after the header
    Block* next;  // in the free list
};
Block* g_free = nullptr;
char* g_chunk = nullptr;
size_t g_chunk_left = 0;
constexpr size_t kChunk = 64 * 1024;
}  // namespace

void* malloc(size_t n) {
    n = (n + 15) & ~size_t{15};
    for (Block** b = &g_free; *b; b = &(*b)->next) {
        if ((*b)->size < n) continue;
        Block* found = *b;
        *b = found->next;
        return found + 1;
    }
    size_t need = n + sizeof(Block);
    if (need > g_chunk_left) {
        size_t len = need > kChunk ? need : kChunk;
        Message m{};
        m.u64[0] = 0, m.u64[1] = len, m.u64[2] = kMapWritable;
        if (user::kernel_call(kSysMapAnon, &m) != kOk) return nullptr;
        g_chunk = reinterpret_cast<char*>(m.u64[0]);
        g_chunk_left = (len + 4095) & ~size_t{4095};
    }
    auto* b = reinterpret_cast<Block*>(g_chunk);
    b->size = n;
    g_chunk += need;
    g_chunk_left -= need;
    return b + 1;
}

void free(void* p) {
    if (!p) return;
    Block* b = static_cast<Block*>(p) - 1;
    b->next = g_free;
    g_free = b;
}

}  // extern "C"

namespace sys {

bool parse_int(const char* s, int64_t* out) {
    bool neg = *s == '-';
    if (neg) ++s;
    if (!*s) return false;
    int64_t v = 0;
    for (; *s; ++s) {
        if (*s < '0' || *s > '9') return false;
        v = v * 10 + (*s - '0');
    }
    *out = neg ? -v : v;
    return true;
}

namespace {

struct Cached {
    const char* name;
    Endpoint endpoint;
};
Cached g_servers[] = {{"ds", kNone}, {"pm", kNone}, {"tty", kNone}, {"rs", kNone}, {"vfs", kNone}};

Endpoint& cache_for(const char* name) {
    for (Cached& c : g_servers)
        if (strcmp(c.name, name) == 0) return c.endpoint;
    static Endpoint other;  // anything else is looked up every time
    other = kNone;
    return other;
}

Endpoint lookup(const char* name) {
    if (strcmp(name, "ds") == 0) return user::find("ds");
    Endpoint e = ds_lookup(name);
    return e != kNone ? e : user::find(name);
}

}  // namespace

Endpoint ds_lookup(const char* name) {
    Endpoint& ds = cache_for("ds");
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (ds == kNone) ds = user::find("ds");
        if (ds == kNone) return kNone;
        Message m{};
        user::set_name(&m, name);
        m.m_type = proto::kDsLookup;
        int32_t r = user::sendrec(ds, &m);
        if (r == kEDeadSrcDst || r == kEBadSrcDst) {
            ds = kNone;
            continue;
        }
        return r == kOk && m.m_type == kOk ? static_cast<Endpoint>(m.i64[2]) : kNone;
    }
    return kNone;
}

int32_t call(const char* name, Message* m) {
    Endpoint& e = cache_for(name);
    Message request = *m;
    for (int attempt = 0;; ++attempt) {
        if (e == kNone) e = lookup(name);
        if (e == kNone) return kESrch;
        *m = request;
        int32_t r = user::sendrec(e, m);
        if ((r == kEDeadSrcDst || r == kEBadSrcDst) && attempt == 0) {
            e = kNone;
            continue;
        }
        return r != kOk ? r : m->m_type;
    }
}

int32_t spawn(const char* program, const char* args) {
    Message m{};
    user::set_name(&m, program);
    strncpy(reinterpret_cast<char*>(m.bytes + kSpawnArgsOffset), args, kSpawnArgsMax - 1);
    m.m_type = proto::kPmSpawn;
    return call("pm", &m);
}

int32_t exec(const char* program, const char* args) {
    Message m{};
    user::set_name(&m, program);
    strncpy(reinterpret_cast<char*>(m.bytes + kSpawnArgsOffset), args, kExecArgsMax - 1);
    m.m_type = proto::kPmExec;
    return call("pm", &m);
}

int32_t wait(int32_t pid, WaitStatus* status) {
    Message m{};
    m.m_type = proto::kPmWait;
    m.i64[0] = pid;
    int32_t r = call("pm", &m);
    if (r >= 0 && status)
        *status = {r, static_cast<uint64_t>(m.i64[1]), static_cast<uint64_t>(m.i64[2])};
    return r;
}

// Defined by the socket library when it is linked in: the child's view of INET (the
// parent's grant is not the child's) is made again.
extern "C" void ukvm_after_fork() __attribute__((weak));

int32_t fork() {
    Message m{};
    m.m_type = proto::kPmFork;
    int32_t r = call("pm", &m);
    if (r == 0) user::forget_console_grant();
    if (r == 0 && ukvm_after_fork) ukvm_after_fork();
    return r;
}

int32_t sleep_ns(uint64_t ns) {
    Message m{};
    m.m_type = proto::kPmSleep;
    m.u64[0] = ns;
    return call("pm", &m);
}

int32_t getpid() {
    Message m{};
    m.m_type = proto::kPmGetPid;
    return call("pm", &m);
}

int32_t kill(int32_t pid, int sig) {
    Message m{};
    m.m_type = proto::kPmKill;
    m.i64[0] = pid;
    m.i64[1] = sig;
    return call("pm", &m);
}

extern "C" void ukvm_sigreturn();

int32_t signal(int sig, SigHandler handler, SigHandler* old) {
    Message m{};
    m.m_type = proto::kPmSigAction;
    m.i64[0] = sig;
    m.u64[1] = reinterpret_cast<uint64_t>(handler);
    m.u64[2] = reinterpret_cast<uint64_t>(&ukvm_sigreturn);
    int32_t r = call("pm", &m);
    if (r == kOk && old) *old = reinterpret_cast<SigHandler>(m.u64[1]);
    return r;
}

namespace {
struct SignalName {
    int number;
    const char* name;
};
constexpr SignalName kSignalNames[] = {
    {proto::kSigHup, "HUP"},   {proto::kSigInt, "INT"},   {proto::kSigQuit, "QUIT"},
    {proto::kSigKill, "KILL"}, {proto::kSigUsr1, "USR1"}, {proto::kSigSegv, "SEGV"},
    {proto::kSigUsr2, "USR2"}, {proto::kSigPipe, "PIPE"}, {proto::kSigAlrm, "ALRM"},
    {proto::kSigTerm, "TERM"}, {proto::kSigChld, "CHLD"},
};
}  // namespace

int signal_number(const char* name) {
    int64_t n;
    if (parse_int(name, &n)) return n > 0 && n < proto::kNrSignals ? static_cast<int>(n) : 0;
    if (strncmp(name, "SIG", 3) == 0) name += 3;
    for (const SignalName& s : kSignalNames)
        if (strcmp(s.name, name) == 0) return s.number;
    return 0;
}

const char* signal_name(int sig) {
    for (const SignalName& s : kSignalNames)
        if (s.number == sig) return s.name;
    return "?";
}

bool next_proc(int32_t* slot, ProcEntry* out) {
    Message m{};
    m.m_type = proto::kPmProcs;
    m.i64[0] = *slot;
    if (call("pm", &m) != kOk) return false;
    memcpy(&out->info, m.bytes, sizeof out->info);
    memcpy(&out->pid, m.bytes + proto::kPidOffset, 4);
    memcpy(&out->parent_pid, m.bytes + proto::kPidOffset + 4, 4);
    *slot = endpoint_slot(out->info.endpoint) + 1;
    return true;
}

int32_t pid_of(const char* name) {
    ProcEntry e;
    for (int32_t slot = 0; next_proc(&slot, &e);)
        if (strcmp(e.info.name, name) == 0) return e.pid;
    return -1;
}

void poweroff(int status) {
    tty_drain();  // what was written is out before the machine stops
    Message m{};
    m.m_type = proto::kPmPowerOff;
    m.i64[0] = status;
    call("pm", &m);
    user::halt(status);  // PM is gone: the VMM directly
}

void reboot() {
    tty_drain();
    Message m{};
    m.m_type = proto::kPmPowerOff;
    m.i64[1] = 1;
    call("pm", &m);
    user::reboot();
}

int32_t read_line(char* buf, size_t n) {
    Message m{};
    m.m_type = proto::kTtyRead;
    int32_t r = call("tty", &m);
    if (r < 0) return r;
    size_t len = static_cast<size_t>(r);
    if (len > proto::kTtyDataMax) len = proto::kTtyDataMax;
    if (len > n) len = n;
    memcpy(buf, m.bytes + proto::kTtyDataOffset, len);
    return static_cast<int32_t>(len);
}

int32_t tty_foreground(int32_t pid) {
    Message m{};
    m.m_type = proto::kTtySetForeground;
    m.i64[0] = pid;
    return call("tty", &m);
}

int32_t tty_drain() {
    Message m{};
    m.m_type = proto::kTtyDrain;
    return call("tty", &m);
}

}  // namespace sys
