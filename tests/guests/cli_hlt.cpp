// cli_hlt: halts with interrupts disabled, which nothing can ever wake; ukvm must notice
// and end the VM as a guest fault instead of hanging.
#include "rt/rt.hpp"

extern "C" int guest_main(uint32_t, uint32_t) {
    rt::printf("cli_hlt: cli; hlt\n");
    asm volatile("cli; hlt");
    rt::printf("cli_hlt: woke up from hlt with interrupts disabled\n");
    return 1;
}
