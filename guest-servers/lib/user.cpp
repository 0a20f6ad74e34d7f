#include "user.hpp"

#include "proto.hpp"

#include "ukvm/format.h"

using namespace ukvm::kernel;

extern "C" {

// rep movsb/stosb: ring-3 code runs natively, and the CPU moves whole lines this way.
void* memcpy(void* dst, const void* src, size_t n) {
    void* d = dst;
    asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

void* memmove(void* dst, const void* src, size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    auto* s = static_cast<const unsigned char*>(src);
    if (d <= s || d >= s + n) return memcpy(dst, src, n);
    while (n--) d[n] = s[n];  // overlapping, destination above: backwards
    return dst;
}

void* memset(void* dst, int c, size_t n) {
    void* d = dst;
    asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

int memcmp(const void* a, const void* b, size_t n) {
    auto* x = static_cast<const unsigned char*>(a);
    auto* y = static_cast<const unsigned char*>(b);
    for (size_t i = 0; i < n; ++i)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char* s) {
    size_t n = 0;
    while (s[n]) ++n;
    return n;
}

extern void (*__init_array_start[])(), (*__init_array_end[])();

[[noreturn]] void ukvm_user_start(const char* cmdline, Endpoint self, Endpoint parent);
}

namespace user {

namespace {
Endpoint g_self = kNone;
Endpoint g_parent = kNone;
const char* g_args = "";
}  // namespace

Endpoint self() {
    return g_self;
}
Endpoint parent() {
    return g_parent;
}
const char* args() {
    return g_args;
}

int32_t kernel_call(int32_t call, Message* m) {
    m->m_type = call;
    int32_t r = sendrec(kSystem, m);
    return r != kOk ? r : m->m_type;
}

void write_direct(const char* s, size_t n) {
    Message m{};
    m.m_type = ukvm::hc::kConsoleWrite;
    m.u64[0] = reinterpret_cast<uintptr_t>(s);
    m.u64[1] = n;
    sendrec(kVmm, &m);
}

namespace {

// Whether this process's console output goes through TTY: user programs' does; servers and
// drivers write directly (TTY itself, and the servers TTY calls, must never wait for it).
bool through_tty() {
    static int route = -1;
    if (route < 0) {
        Message m{};
        route = kernel_call(kSysGetInfo, &m) == kOk && m.u64[3] == 2;
    }
    return route == 1;
}

// Larger writes are copied (natively, in ring 3) into one buffer granted to TTY once, so
// that a write costs TTY's safecopy but no grant calls of its own.
char g_wbuf[proto::kTtyWriteMax];
Endpoint g_wbuf_tty = kNone;  // the TTY g_wbuf_grant is for
uint64_t g_wbuf_grant = 0;

bool wbuf_grant(Endpoint tty) {
    if (g_wbuf_tty == tty) return true;
    Message g{};
    if (g_wbuf_tty != kNone) {
        g.u64[0] = g_wbuf_grant;
        kernel_call(kSysGrantRevoke, &g);
        g_wbuf_tty = kNone;
    }
    g.u64[0] = static_cast<uint64_t>(tty);
    g.u64[1] = reinterpret_cast<uintptr_t>(g_wbuf);
    g.u64[2] = sizeof g_wbuf;
    g.u64[3] = kGrantRead;
    if (kernel_call(kSysGrantCreate, &g) != kOk) return false;
    g_wbuf_grant = g.u64[0];
    g_wbuf_tty = tty;
    return true;
}

// One kTtyWrite of at most kTtyWriteMax bytes: kOk once TTY has them (or the caller wrote
// them itself on TTY's word), else the IPC error.
int32_t tty_write(Endpoint tty, const char* s, size_t n) {
    Message m{};
    m.m_type = proto::kTtyWrite;
    m.u64[0] = n;
    m.u64[1] = proto::kTtyInline;
    if (n <= proto::kTtyInlineMax) {
        memcpy(m.bytes + proto::kTtyInlineOffset, s, n);
    } else {
        if (!wbuf_grant(tty)) return kENoMem;
        memcpy(g_wbuf, s, n);
        m.u64[1] = g_wbuf_grant;
    }
    int32_t r = sendrec(tty, &m);
    // A signal that took the writer out of a wait for room (kEIntr): the bytes are dropped,
    // as a terminal's output is when the program is interrupted.
    if (r != kOk) return r == kEIntr ? kOk : r;
    if (m.m_type == kOk && m.u64[0] == proto::kTtyWriteSelf) write_direct(s, n);
    return m.m_type;
}

}  // namespace

void forget_console_grant() {
    g_wbuf_tty = kNone;  // a forked child: the grant is the parent's
}

void write(const char* s, size_t n) {
    static Endpoint tty = kNone;
    if (!through_tty()) return write_direct(s, n);
    while (n > 0) {
        const size_t chunk = n < proto::kTtyWriteMax ? n : proto::kTtyWriteMax;
        int32_t r = tty == kNone ? kESrch : tty_write(tty, s, chunk);
        if (r != kOk) {  // TTY restarted (a new endpoint), or none yet
            tty = find("tty");
            r = tty == kNone ? kESrch : tty_write(tty, s, chunk);
        }
        if (r != kOk) write_direct(s, chunk);  // no TTY: straight to the console
        s += chunk, n -= chunk;
    }
}

size_t vformat(char* buf, size_t size, const char* fmt, va_list ap) {
    return ukvm::fmt::vformat(buf, size, fmt, ap);
}

namespace {

void write_chunk(const char* text, size_t n) {
    write(text, n);
}

}  // namespace

size_t format(char* buf, size_t size, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t n = vformat(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void print(const char* fmt, ...) {
    char buf[256];
    ukvm::fmt::Out out{buf, sizeof buf, write_chunk};
    va_list ap;
    va_start(ap, fmt);
    const size_t n = ukvm::fmt::vformat_to(out, fmt, ap);
    va_end(ap);
    write(buf, n - out.start);
}

[[noreturn]] void serve(int32_t (*handle)(Message& m)) {
    Message m{};
    int32_t r = receive(kAny, &m);
    for (;;) {
        if (r != kOk) {
            r = receive(kAny, &m);
            continue;
        }
        if (m.m_type == kNotifyMessage) {
            if (m.m_source == parent()) notify(m.m_source);  // RS's heartbeat
            r = receive(kAny, &m);
            continue;
        }
        Endpoint client = m.m_source;
        m.m_type = handle(m);
        r = reply_recv(client, kAny, &m);
    }
}

uint64_t uptime_ns() {
    Message m{};
    kernel_call(kSysTimes, &m);
    return m.u64[0];
}

void sleep_ns(uint64_t delay_ns) {
    // A CLOCK notification left over from an earlier alarm must not cut the sleep short.
    uint64_t deadline = uptime_ns() + delay_ns;
    for (uint64_t now = 0; (now = uptime_ns()) < deadline;) {
        Message m{};
        m.u64[0] = deadline - now;
        kernel_call(kSysSetAlarm, &m);
        receive(kClock, &m);
    }
}

[[noreturn]] void exit(int status) {
    Message m{};
    m.u64[0] = static_cast<uint64_t>(status);
    kernel_call(kSysExit, &m);
    for (;;) asm volatile("ud2");
}

[[noreturn]] void halt(int status) {
    Message m{};
    m.m_type = ukvm::hc::kHalt;
    m.i64[0] = status;  // HaltRequest.status: the first 4 bytes, little-endian
    sendrec(kVmm, &m);
    exit(status);
}

[[noreturn]] void reboot() {
    Message m{};
    m.m_type = ukvm::hc::kReboot;
    sendrec(kVmm, &m);
    exit(1);
}

void set_name(Message* m, const char* name) {
    size_t n = strlen(name);
    if (n >= kNameMax) n = kNameMax - 1;
    memset(m->bytes, 0, kNameMax);
    memcpy(m->bytes, name, n);
}

Endpoint spawn(const char* program) {
    Message m{};
    set_name(&m, program);
    int32_t r = kernel_call(kSysSpawn, &m);
    return r < 0 ? r : static_cast<Endpoint>(m.u64[0]);
}

Endpoint find(const char* program) {
    Message m{};
    set_name(&m, program);
    return kernel_call(kSysFindProc, &m) < 0 ? kNone : static_cast<Endpoint>(m.u64[0]);
}

}  // namespace user

extern "C" [[noreturn]] void ukvm_user_start(const char* cmdline, Endpoint self, Endpoint parent) {
    for (auto* f = __init_array_start; f != __init_array_end; ++f) (*f)();
    user::g_self = self;
    user::g_parent = parent;
    const char* a = cmdline;
    while (*a && *a != ' ') ++a;
    while (*a == ' ') ++a;
    user::g_args = a;
    user::exit(main(a));
}
