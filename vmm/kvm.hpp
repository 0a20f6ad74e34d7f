// Thin RAII wrappers over the KVM ioctl API: /dev/kvm, one VM, its vCPUs.
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace ukvm {

// The host refused: an ioctl or syscall failed. The message names the call and errno.
class KvmError : public std::runtime_error {
public:
    KvmError(const std::string& what, int err);
    int error() const { return err_; }

private:
    int err_;
};

// An owned file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }
    void reset(int fd = -1);

private:
    int fd_ = -1;
};

// An owned mmap'd range.
class Mapping {
public:
    Mapping() = default;
    Mapping(void* addr, std::size_t len) : addr_(addr), len_(len) {}
    Mapping(Mapping&& other) noexcept;
    Mapping& operator=(Mapping&& other) noexcept;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() { reset(); }

    void* get() const { return addr_; }
    std::size_t size() const { return len_; }
    void reset();

    // An anonymous private read/write mapping, zero-filled, not backed by swap reservation.
    static Mapping anonymous(std::size_t len);

private:
    void* addr_ = nullptr;
    std::size_t len_ = 0;
};

class Vm;
class Vcpu;

// /dev/kvm: checks the API version and exposes the capabilities the VMM relies on.
class Kvm {
public:
    Kvm();  // throws KvmError (ENOENT/EACCES when /dev/kvm is missing or not accessible)

    int check_extension(long cap) const;
    std::size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }
    // KVM_GET_SUPPORTED_CPUID, as kvm_cpuid_entry2 entries.
    const std::vector<kvm_cpuid_entry2>& supported_cpuid() const { return cpuid_; }
    int fd() const { return fd_.get(); }

private:
    Fd fd_;
    std::size_t vcpu_mmap_size_ = 0;
    std::vector<kvm_cpuid_entry2> cpuid_;
};

class Vm {
public:
    explicit Vm(const Kvm& kvm);

    // host must stay mapped for as long as the VM exists.
    void set_user_memory_region(std::uint32_t slot, std::uint64_t gpa, std::uint64_t size,
                                void* host);
    void set_tss_addr(std::uint64_t gpa);
    void set_identity_map_addr(std::uint64_t gpa);
    void create_irqchip();
    void create_pit2();
    void irq_line(std::uint32_t irq, bool level);
    int fd() const { return fd_.get(); }
    const Kvm& kvm() const { return kvm_; }

private:
    const Kvm& kvm_;
    Fd fd_;
};

class Vcpu {
public:
    Vcpu(Vm& vm, std::uint32_t id);

    std::uint32_t id() const { return id_; }
    kvm_run& run_state() const { return *static_cast<kvm_run*>(run_.get()); }

    // KVM_RUN. Returns false when interrupted by a signal (EINTR) or immediate_exit.
    bool run();

    kvm_regs regs() const;
    void set_regs(const kvm_regs& regs);
    kvm_sregs sregs() const;
    void set_sregs(const kvm_sregs& sregs);
    kvm_mp_state mp_state() const;
    // KVM_SET_CPUID2 with the host's supported CPUID, APIC IDs set to this vCPU's id.
    void set_cpuid(std::span<const kvm_cpuid_entry2> supported);

private:
    std::uint32_t id_;
    Fd fd_;
    Mapping run_;
};

}  // namespace ukvm
