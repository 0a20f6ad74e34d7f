/* Nothing of <stdio.h> is needed by the lwIP files INET compiles. */
#ifndef UKVM_GUEST_STDIO_H
#define UKVM_GUEST_STDIO_H
#include <stddef.h>
#endif
