/* lwIP's architecture glue for the freestanding guest: x86_64, little endian, no host libc
 * (the few functions lwIP calls come from the guest runtime), diagnostics on the console. */
#ifndef UKVM_LWIP_ARCH_CC_H
#define UKVM_LWIP_ARCH_CC_H

#include <stddef.h>
#include <stdint.h>

#define BYTE_ORDER LITTLE_ENDIAN

#define LWIP_NO_INTTYPES_H 1
#define X8_F "02x"
#define U16_F "u"
#define S16_F "d"
#define X16_F "x"
#define U32_F "u"
#define S32_F "d"
#define X32_F "x"
#define SZT_F "lu"

#define LWIP_NO_LIMITS_H 1
#define LWIP_NO_CTYPE_H 1
#define LWIP_NO_UNISTD_H 1
#define SSIZE_MAX 0x7fffffffffffffffL
#define INT_MAX 0x7fffffff
typedef long ssize_t;

#ifdef __cplusplus
extern "C" {
#endif
void ukvm_lwip_diag(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void ukvm_lwip_assert(const char* what, const char* file, int line) __attribute__((noreturn));
uint32_t ukvm_lwip_rand(void);
#ifdef __cplusplus
}
#endif

#define LWIP_PLATFORM_DIAG(x) \
    do {                      \
        ukvm_lwip_diag x;     \
    } while (0)
#define LWIP_PLATFORM_ASSERT(x) ukvm_lwip_assert(x, __FILE__, __LINE__)
#define LWIP_RAND() ukvm_lwip_rand()

#endif
