// The printf subset of the guest kernel and the ring-3 libc, one freestanding copy:
// %d %u %x (l, ll or z for 64-bit), %s, %c, %p, %%; a width with the 0 flag (numbers) or the
// - flag (left-justified). Another character after % is printed as is.
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

namespace ukvm::fmt {

// Formatted text goes into buf; with a flush, a full buf is handed on and reused, so text
// of any length gets through a small buffer (print); without one, it is cut (format).
struct Out {
    char* buf;
    size_t size;
    void (*flush)(const char*, size_t) = nullptr;
    size_t len = 0;    // characters produced: the whole text's length
    size_t start = 0;  // the text's offset of buf[0]
    void put(char c) {
        if (flush && len - start + 1 >= size) {
            flush(buf, len - start);
            start = len;
        }
        if (len - start + 1 < size) buf[len - start] = c;
        ++len;
    }
    void pad(int n, char c) {
        while (n-- > 0) put(c);
    }
};

inline void put_number(Out& out, uint64_t v, unsigned base, int width, char pad, bool left) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (!left) out.pad(width - n, pad);
    for (int i = n; i;) out.put(digits[--i]);
    if (left) out.pad(width - n, ' ');
}

// Formats into out; returns the text's whole length.
inline size_t vformat_to(Out& out, const char* fmt, va_list ap) {
    for (; *fmt; ++fmt) {
        if (*fmt != '%') {
            out.put(*fmt);
            continue;
        }
        ++fmt;
        char pad = ' ';
        bool left = *fmt == '-';
        if (left) ++fmt;
        if (*fmt == '0') pad = '0', ++fmt;
        int width = 0;
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        int longs = 0;
        while (*fmt == 'l') ++longs, ++fmt;
        if (*fmt == 'z') longs = 1, ++fmt;
        switch (*fmt) {
            case '\0':
                return out.len;  // a lone % at the end
            case 's': {
                const char* s = va_arg(ap, const char*);
                s = s ? s : "(null)";
                int n = 0;
                while (s[n]) ++n;
                if (!left) out.pad(width - n, ' ');
                for (; *s; ++s) out.put(*s);
                if (left) out.pad(width - n, ' ');
                break;
            }
            case 'c':
                out.put(static_cast<char>(va_arg(ap, int)));
                break;
            case 'd': {
                int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
                if (v < 0) out.put('-'), v = -v;
                put_number(out, static_cast<uint64_t>(v), 10, width, pad, left);
                break;
            }
            case 'u':
                put_number(out, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, width, pad,
                           left);
                break;
            case 'x':
                put_number(out, longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, width, pad,
                           left);
                break;
            case 'p':
                out.put('0'), out.put('x');
                put_number(out, reinterpret_cast<uintptr_t>(va_arg(ap, void*)), 16, 0, pad, left);
                break;
            default:  // %% and anything else
                out.put(*fmt);
                break;
        }
    }
    return out.len;
}

// vsnprintf: at most size - 1 characters and a NUL into buf; returns the whole length.
inline size_t vformat(char* buf, size_t size, const char* fmt, va_list ap) {
    Out out{buf, size};
    const size_t n = vformat_to(out, fmt, ap);
    if (size) buf[n < size ? n : size - 1] = '\0';
    return n;
}

}  // namespace ukvm::fmt
