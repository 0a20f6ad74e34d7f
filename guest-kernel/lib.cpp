#include "lib.hpp"

#include "console.hpp"
#include "ukvm/format.h"

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

size_t vformat(char* buf, size_t size, const char* fmt, va_list ap) {
    return ukvm::fmt::vformat(buf, size, fmt, ap);
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
