/* The part of <string.h> lwIP uses, implemented by the guest runtime (lib/user.cpp,
 * lib/sys.cpp): lwIP is compiled without the host's C library headers. */
#ifndef UKVM_GUEST_STRING_H
#define UKVM_GUEST_STRING_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
void* memcpy(void* dst, const void* src, size_t n);
void* memmove(void* dst, const void* src, size_t n);
void* memset(void* dst, int c, size_t n);
int memcmp(const void* a, const void* b, size_t n);
size_t strlen(const char* s);
int strcmp(const char* a, const char* b);
int strncmp(const char* a, const char* b, size_t n);
char* strchr(const char* s, int c);
#ifdef __cplusplus
}
#endif
#endif
