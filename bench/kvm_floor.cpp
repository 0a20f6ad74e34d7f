// The floor for VMM start-up and memory: the least a KVM program can do — create a VM
// with one page of RAM and one vCPU, run four real-mode instructions to HLT, exit.
// Deliberately plain C-style ioctls: it measures KVM, not ukvm's abstractions.
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

int fail(const char* what) {
    std::perror(what);
    return 1;
}

}  // namespace

int main() {
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) return fail("/dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) return fail("KVM_CREATE_VM");

    constexpr size_t kMem = 0x1000;
    auto* mem = static_cast<uint8_t*>(
        mmap(nullptr, kMem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (mem == MAP_FAILED) return fail("mmap");
    // mov al, 0x42; out 0x80, al; hlt
    const uint8_t code[] = {0xb0, 0x42, 0xe6, 0x80, 0xf4};
    std::memcpy(mem, code, sizeof code);
    kvm_userspace_memory_region region{0, 0, 0, kMem, reinterpret_cast<uint64_t>(mem)};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return fail("KVM_SET_USER_MEMORY_REGION");

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) return fail("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < 0) return fail("KVM_GET_VCPU_MMAP_SIZE");
    auto* run =
        static_cast<kvm_run*>(mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
    if (run == MAP_FAILED) return fail("mmap kvm_run");

    kvm_sregs sregs{};
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) return fail("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) return fail("KVM_SET_SREGS");
    kvm_regs regs{};
    regs.rip = 0;
    regs.rflags = 2;
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) return fail("KVM_SET_REGS");

    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) return fail("KVM_RUN");
        if (run->exit_reason == KVM_EXIT_HLT) return 0;
        if (run->exit_reason != KVM_EXIT_IO) {
            std::fprintf(stderr, "kvm_floor: unexpected exit %u\n", run->exit_reason);
            return 1;
        }
    }
}
