// Asks the host's PVM hypervisor who it is, from ring 3, with the synthetic CPUID of the
// PVM ABI (`invlpg 0xffffffffff4d5650; cpuid`): the PVM signature and ABI version tell
// whether a PVM-aware kernel (native ring-0 speed on such hosts) could run here. On any
// other host the INVLPG faults in ring 3 and the kernel kills this program.
#include "user.hpp"

namespace {

void synthetic_cpuid(uint32_t leaf, uint32_t r[4]) {
    asm volatile(".byte 0x0f, 0x01, 0x3c, 0x25, 0x50, 0x56, 0x4d, 0xff\n\tcpuid"
                 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                 : "a"(leaf), "c"(0));
}

}  // namespace

int main(const char*) {
    uint32_t sig[4], kvm[4], features[4];
    synthetic_cpuid(0x40000000, kvm);
    synthetic_cpuid(0x40000200, sig);
    synthetic_cpuid(0x40000201, features);
    char kvm_name[13] = {}, pvm_name[13] = {};
    memcpy(kvm_name, &kvm[1], 4), memcpy(kvm_name + 4, &kvm[2], 4),
        memcpy(kvm_name + 8, &kvm[3], 4);
    memcpy(pvm_name, &sig[1], 4), memcpy(pvm_name + 4, &sig[2], 4),
        memcpy(pvm_name + 8, &sig[3], 4);
    user::print(
        "pvm_probe: 0x40000000 \"%s\" max %x; 0x40000200 \"%s\" max %x; ABI %u features %x\n",
        kvm_name, kvm[0], pvm_name, sig[0], features[0], features[1]);
    user::halt(0);
}
