#include "rt/rt.hpp"
extern "C" int guest_main(uint32_t, uint32_t) {
    return 0;
}
