#include "lib.hpp"

#include "console.hpp"

extern "C" {

// Quadword string instructions where possible: on the PVM host the kernel is emulated
// and each iteration of a rep prefix costs about as much as an instruction.
void* memcpy(void* dst, const void* src, size_t n) {
    void* ret = dst;
    size_t q = n / 8, r = n % 8;
    asm volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(q) : : "memory");
    asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(r) : : "memory");
    return ret;
}

void* memset(void* dst, int c, size_t n) {
    void* ret = dst;
    uint64_t v = 0x0101010101010101ull * static_cast<uint8_t>(c);
    size_t q = n / 8, r = n % 8;
    asm volatile("rep stosq" : "+D"(dst), "+c"(q) : "a"(v) : "memory");
    asm volatile("rep stosb" : "+D"(dst), "+c"(r) : "a"(v) : "memory");
    return ret;
}

void* memmove(void* dst, const void* src, size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    auto* s = static_cast<const unsigned char*>(src);
    if (d <= s || d >= s + n) return memcpy(dst, src, n);
    while (n--) d[n] = s[n];
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
}

namespace kernel {

int strncmp(const char* a, const char* b, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        if (a[i] != b[i])
            return static_cast<unsigned char>(a[i]) - static_cast<unsigned char>(b[i]);
        if (!a[i]) return 0;
    }
    return 0;
}

const char* strstr(const char* haystack, const char* needle) {
    size_t n = strlen(needle);
    for (; *haystack; ++haystack)
        if (strncmp(haystack, needle, n) == 0) return haystack;
    return nullptr;
}

namespace {

struct Out {
    char* buf;
    size_t size;
    size_t len = 0;
    void put(char c) {
        if (len + 1 < size) buf[len] = c;
        ++len;
    }
};

void put_number(Out& out, uint64_t v, unsigned base, int width, char pad) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (width-- > n) out.put(pad);
    while (n) out.put(digits[--n]);
}

}  // namespace

size_t vformat(char* buf, size_t size, const char* fmt, va_list ap) {
    Out out{buf, size};
    for (; *fmt; ++fmt) {
        if (*fmt != '%') {
            out.put(*fmt);
            continue;
        }
        ++fmt;
        char pad = ' ';
        if (*fmt == '0') pad = '0', ++fmt;
        int width = 0;
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        int longs = 0;
        while (*fmt == 'l') ++longs, ++fmt;
        if (*fmt == 'z') longs = 1, ++fmt;
        switch (*fmt) {
            case 's': {
                const char* s = va_arg(ap, const char*);
                for (s = s ? s : "(null)"; *s; ++s) out.put(*s);
                break;
            }
            case 'c':
                out.put(static_cast<char>(va_arg(ap, int)));
                break;
            case 'd': {
                int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
                if (v < 0) out.put('-'), v = -v;
                put_number(out, static_cast<uint64_t>(v), 10, width, pad);
                break;
            }
            case 'u':
                put_number(out, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, width,
                           pad);
                break;
            case 'x':
                put_number(out, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, width,
                           pad);
                break;
            case 'p':
                out.put('0'), out.put('x');
                put_number(out, reinterpret_cast<uintptr_t>(va_arg(ap, void*)), 16, 0, pad);
                break;
            case '%':
                out.put('%');
                break;
            default:
                out.put('?');
                break;
        }
    }
    if (size) buf[out.len < size ? out.len : size - 1] = '\0';
    return out.len;
}

size_t format(char* buf, size_t size, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t n = vformat(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void print(const char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    size_t n = vformat(buf, sizeof buf, fmt, ap);
    va_end(ap);
    console::write(buf, n < sizeof buf ? n : sizeof buf - 1);
}

[[noreturn]] void panic(const char* fmt, ...) {
    char buf[512];
    size_t n = format(buf, sizeof buf, "ukvm-kernel: panic: ");
    va_list ap;
    va_start(ap, fmt);
    n += vformat(buf + n, sizeof buf - n, fmt, ap);
    va_end(ap);
    if (n > sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    console::write(buf, n);
    console::halt(console::kStatusPanic);
}

}  // namespace kernel
