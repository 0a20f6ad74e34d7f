// The test guests' runtime: see rt.hpp. Runs in ring 0 (emulated on PVM hosts), so the
// paths are short: one hypercall per console line, no UART status polling.
#include "rt.hpp"

namespace hc = ukvm::hc;

// gcc may emit calls to these even in freestanding code.
extern "C" {
void* memcpy(void* dst, const void* src, size_t n) {
    void* d = dst;
    asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}
void* memset(void* dst, int c, size_t n) {
    void* d = dst;
    asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}
void* memmove(void* dst, const void* src, size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    auto* s = static_cast<const unsigned char*>(src);
    if (d <= s || d >= s + n) return memcpy(dst, src, n);
    while (n-- > 0) d[n] = s[n];
    return dst;
}
int memcmp(const void* a, const void* b, size_t n) {
    auto* x = static_cast<const unsigned char*>(a);
    auto* y = static_cast<const unsigned char*>(b);
    for (size_t i = 0; i < n; ++i) {
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    }
    return 0;
}
}

namespace rt {
namespace {

constexpr uint16_t kCom1 = 0x3f8;
constexpr uint16_t kDebugExitPort = 0xf4;
constexpr uint16_t kCmosIndex = 0x70;
constexpr uint16_t kCmosData = 0x71;

struct State {
    bool ukvm;
    const MultibootInfo* info;
    uint64_t memory_bytes;
    char cmdline[1024];
    char line[256];
    size_t line_len;
};
State state;

// A reply buffer that is always valid, aligned and in RAM; guests run on one vCPU.
hc::Message scratch;

bool probe_ukvm() {
    scratch = make_message(hc::kVersion);
    scratch.m_source = 0x5a5a5a5a;
    hypercall_at(uint32_t(reinterpret_cast<uintptr_t>(&scratch)));
    hc::VersionReply reply;
    memcpy(&reply, scratch.payload, sizeof reply);
    return scratch.m_source == hc::kVmmEndpoint && scratch.m_type == hc::kOk &&
           reply.magic == hc::kMagic;
}

void copy_string(char* dst, size_t size, const char* src) {
    size_t i = 0;
    for (; src != nullptr && src[i] != '\0' && i + 1 < size; ++i) dst[i] = src[i];
    dst[i] = '\0';
}

void read_boot_info() {
    if (state.ukvm) {
        hc::BufferRequest req{reinterpret_cast<uintptr_t>(state.cmdline), sizeof state.cmdline};
        scratch = make_message(hc::kBootInfo, req);
        if (hypercall(scratch) == hc::kOk) {
            hc::BootInfoReply reply;
            memcpy(&reply, scratch.payload, sizeof reply);
            state.memory_bytes = reply.memory_bytes;
            state.cmdline[sizeof state.cmdline - 1] = '\0';
            return;
        }
    }
    const MultibootInfo* info = state.info;
    if (info == nullptr) return;
    if (info->flags & kInfoMemory) {
        // mem_upper counts the KiB above 1 MiB up to the first hole.
        state.memory_bytes = (uint64_t(info->mem_upper) + 1024) * 1024;
    }
    if (info->flags & kInfoCmdline) {
        copy_string(state.cmdline, sizeof state.cmdline,
                    reinterpret_cast<const char*>(uintptr_t(info->cmdline)));
    }
}

void uart_write(const char* s, size_t n) {
    // Emulated 16550s (QEMU, ukvm) are always ready; polling LSR would double the exits.
    for (size_t i = 0; i < n; ++i) outb(kCom1, uint8_t(s[i]));
}

void console_write(const char* s, size_t n) {
    if (!state.ukvm) return uart_write(s, n);
    hc::BufferRequest req{reinterpret_cast<uintptr_t>(s), n};
    scratch = make_message(hc::kConsoleWrite, req);
    hypercall(scratch);
}

uint8_t cmos_read(uint8_t reg) {
    outb(kCmosIndex, reg);
    return inb(kCmosData);
}

uint64_t cmos_unix_seconds() {
    // Wait out an update in progress so the fields are consistent (at most ~2 ms).
    for (int i = 0; i < 10000 && (cmos_read(0x0a) & 0x80); ++i) {
    }
    const uint8_t status_b = cmos_read(0x0b);
    auto field = [&](uint8_t reg) -> uint32_t {
        uint8_t v = cmos_read(reg);
        if (!(status_b & 0x04)) v = uint8_t((v & 0x0f) + (v >> 4) * 10);  // BCD
        return v;
    };
    const uint32_t second = field(0x00), minute = field(0x02), day = field(0x07),
                   month = field(0x08), year = 2000 + field(0x09);
    uint8_t hour_raw = cmos_read(0x04);
    const bool pm = hour_raw & 0x80;
    hour_raw &= 0x7f;
    uint32_t hour = (status_b & 0x04) ? hour_raw : (hour_raw & 0x0f) + (hour_raw >> 4) * 10;
    if (!(status_b & 0x02)) hour = (hour % 12) + (pm ? 12 : 0);  // 12-hour mode
    if (month < 1 || month > 12 || day < 1 || day > 31) return 0;
    // Days since the epoch from a civil date (proleptic Gregorian, March-based years).
    const uint32_t y = year - (month <= 2);
    const uint32_t era = y / 400;
    const uint32_t yoe = y - era * 400;
    const uint32_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    const uint32_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    const uint64_t days = uint64_t(era) * 146097 + doe - 719468;
    return days * 86400 + hour * 3600 + minute * 60 + second;
}

// printf output sink: a line buffer flushed at '\n' or when full.
void put(char c) {
    if (state.line_len == sizeof state.line) flush();
    state.line[state.line_len++] = c;
    if (c == '\n') flush();
}

void put_unsigned(uint64_t v, unsigned base, int width, char pad, bool negative) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0);
    if (negative) {
        if (pad == '0') put('-');
        --width;
    }
    for (int i = n; i < width; ++i) put(pad);
    if (negative && pad != '0') put('-');
    while (n > 0) put(digits[--n]);
}

}  // namespace

bool on_ukvm() {
    return state.ukvm;
}
const MultibootInfo* multiboot_info() {
    return state.info;
}
const char* cmdline() {
    return state.cmdline;
}
uint64_t memory_bytes() {
    return state.memory_bytes;
}

const char* loader_name() {
    if (state.info == nullptr || !(state.info->flags & kInfoLoaderName)) return "";
    return reinterpret_cast<const char*>(uintptr_t(state.info->boot_loader_name));
}

size_t strlen(const char* s) {
    size_t n = 0;
    while (s[n] != '\0') ++n;
    return n;
}

bool starts_with(const char* s, const char* prefix) {
    while (*prefix != '\0') {
        if (*s++ != *prefix++) return false;
    }
    return true;
}

bool contains(const char* haystack, const char* needle) {
    for (; *haystack != '\0'; ++haystack) {
        if (starts_with(haystack, needle)) return true;
    }
    return *needle == '\0';
}

uint64_t cmdline_number(const char* key, uint64_t fallback) {
    const size_t key_len = strlen(key);
    for (const char* p = state.cmdline; *p != '\0'; ++p) {
        const bool word_start = p == state.cmdline || p[-1] == ' ';
        if (!word_start || !starts_with(p, key) || p[key_len] != '=') continue;
        p += key_len + 1;
        unsigned base = 10;
        if (p[0] == '0' && p[1] == 'x') {
            base = 16;
            p += 2;
        }
        uint64_t v = 0;
        bool any = false;
        for (;; ++p, any = true) {
            unsigned d;
            if (*p >= '0' && *p <= '9') {
                d = unsigned(*p - '0');
            } else if (base == 16 && *p >= 'a' && *p <= 'f') {
                d = unsigned(*p - 'a' + 10);
            } else {
                break;
            }
            v = v * base + d;
        }
        return any ? v : fallback;
    }
    return fallback;
}

hc::Message make_message(int32_t call) {
    hc::Message m{};
    m.m_type = call;
    return m;
}

int32_t hypercall(hc::Message& m) {
    hypercall_at(uint32_t(reinterpret_cast<uintptr_t>(&m)));
    return m.m_type;
}

void write(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) put(s[i]);
}

void flush() {
    if (state.line_len == 0) return;
    console_write(state.line, state.line_len);
    state.line_len = 0;
}

void vprintf(const char* fmt, va_list args) {
    for (; *fmt != '\0'; ++fmt) {
        if (*fmt != '%') {
            put(*fmt);
            continue;
        }
        ++fmt;
        char pad = ' ';
        if (*fmt == '0') {
            pad = '0';
            ++fmt;
        }
        int width = 0;
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        int longs = 0;
        while (*fmt == 'l') ++longs, ++fmt;
        switch (*fmt) {
            case 'd':
            case 'i': {
                const int64_t v = longs ? va_arg(args, int64_t) : va_arg(args, int);
                put_unsigned(v < 0 ? 0 - uint64_t(v) : uint64_t(v), 10, width, pad, v < 0);
                break;
            }
            case 'u':
            case 'x': {
                const uint64_t v = longs ? va_arg(args, uint64_t) : va_arg(args, unsigned);
                put_unsigned(v, *fmt == 'x' ? 16 : 10, width, pad, false);
                break;
            }
            case 'p':
                put('0'), put('x');
                put_unsigned(reinterpret_cast<uintptr_t>(va_arg(args, void*)), 16, width, pad,
                             false);
                break;
            case 's': {
                const char* s = va_arg(args, const char*);
                if (s == nullptr) s = "(null)";
                const int len = int(strlen(s));
                for (int i = len; i < width; ++i) put(' ');
                write(s, size_t(len));
                break;
            }
            case 'c':
                put(char(va_arg(args, int)));
                break;
            case '%':
                put('%');
                break;
            default:  // unknown conversion: show it rather than guess
                put('%');
                if (*fmt == '\0') return;
                put(*fmt);
        }
    }
}

void printf(const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
}

void exit(int status) {
    flush();
    if (state.ukvm) {
        scratch = make_message(hc::kHalt, hc::HaltRequest{status});
        hypercall(scratch);
    }
    outl(kDebugExitPort, uint32_t(status));
    for (;;) asm volatile("cli; hlt");
}

uint64_t realtime_ns() {
    if (state.ukvm) {
        scratch = make_message(hc::kTime);
        if (hypercall(scratch) != hc::kOk) return 0;
        hc::TimeReply reply;
        memcpy(&reply, scratch.payload, sizeof reply);
        return reply.realtime_ns;
    }
    return cmos_unix_seconds() * 1000000000ull;
}

DateTime to_datetime(uint64_t unix_seconds) {
    // Civil date from days since the epoch (proleptic Gregorian, March-based years).
    const uint64_t z = unix_seconds / 86400 + 719468;
    const uint64_t secs = unix_seconds % 86400;
    const uint64_t era = z / 146097;
    const uint64_t doe = z - era * 146097;
    const uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const uint64_t mp = (5 * doy + 2) / 153;
    DateTime t;
    t.day = uint32_t(doy - (153 * mp + 2) / 5 + 1);
    t.month = uint32_t(mp < 10 ? mp + 3 : mp - 9);
    t.year = uint32_t(yoe + era * 400 + (t.month <= 2));
    t.hour = uint32_t(secs / 3600);
    t.minute = uint32_t(secs / 60 % 60);
    t.second = uint32_t(secs % 60);
    return t;
}

extern "C" [[noreturn]] void rt_enter_ring3(void (*fn)(), void* stack_top);

void enter_ring3(void (*fn)(), void* stack_top) {
    flush();
    // fn starts as if called: its stack is 8 bytes below a 16-byte boundary.
    rt_enter_ring3(fn, static_cast<char*>(stack_top) - 8);
}

}  // namespace rt

extern "C" [[noreturn]] void rt_entry(uint32_t magic, uint32_t info) {
    using namespace rt;
    if (magic == kMultibootBootloaderMagic) {
        state.info = reinterpret_cast<const MultibootInfo*>(uintptr_t(info));
    }
    const char* name = loader_name();
    // Only probe under a loader that calls itself ukvm: elsewhere the port may mean
    // something else.
    if (starts_with(name, "ukvm")) {
        state.ukvm = probe_ukvm();
        if (!state.ukvm) printf("rt: loader says ukvm but the kVersion probe got no answer\n");
    }
    read_boot_info();
    rt::exit(guest_main(magic, info));
}
