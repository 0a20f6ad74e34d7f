/* The part of <stdlib.h> lwIP uses (netif_find: atoi), implemented by INET. */
#ifndef UKVM_GUEST_STDLIB_H
#define UKVM_GUEST_STDLIB_H
#include <stddef.h>
int atoi(const char* s);
#endif
