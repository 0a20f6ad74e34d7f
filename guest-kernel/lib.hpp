// Freestanding basics: memory functions, a small formatter, and the kernel's print/panic.
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
void* memcpy(void* dst, const void* src, size_t n);
void* memset(void* dst, int c, size_t n);
void* memmove(void* dst, const void* src, size_t n);
int memcmp(const void* a, const void* b, size_t n);
size_t strlen(const char* s);
}

namespace kernel {

int strncmp(const char* a, const char* b, size_t n);
const char* strstr(const char* haystack, const char* needle);

// printf subset (ukvm/format.h): %s %c %d %u %x %p, l/ll/z, width, 0 and - flags.
size_t vformat(char* buf, size_t size, const char* fmt, va_list ap);
size_t format(char* buf, size_t size, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
void print(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void panic(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

template <typename T>
constexpr T align_up(T v, T a) {
    return (v + a - 1) & ~(a - 1);
}
template <typename T>
constexpr T align_down(T v, T a) {
    return v & ~(a - 1);
}

}  // namespace kernel
