#include "vmm/kvm.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace ukvm {

namespace {

// ioctl(2), retried on EINTR unless the caller wants to see it; throws KvmError otherwise.
template <typename Arg>
int checked_ioctl(int fd, unsigned long request, const char* name, Arg arg) {
    for (;;) {
        int r = ::ioctl(fd, request, arg);
        if (r >= 0) return r;
        if (errno == EINTR) continue;
        throw KvmError(name, errno);
    }
}

// <linux/kvm.h>'s kvm_cpuid2 ends in __DECLARE_FLEX_ARRAY, whose empty struct has size 1 in
// C++: sizeof and the entries offset differ from the kernel's (8 bytes, entries at 8), and so
// do the ioctl numbers derived from them. Lay the buffer out by hand with the C values.
constexpr std::size_t kCpuidHeader = 8;  // nent, padding
constexpr unsigned long kGetSupportedCpuid =
    _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, kCpuidHeader);
constexpr unsigned long kSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, kCpuidHeader);

std::vector<std::uint8_t> cpuid_buffer(std::span<const kvm_cpuid_entry2> entries,
                                       std::uint32_t nent) {
    std::vector<std::uint8_t> buf(kCpuidHeader + nent * sizeof(kvm_cpuid_entry2));
    std::memcpy(buf.data(), &nent, sizeof nent);
    if (!entries.empty())
        std::memcpy(buf.data() + kCpuidHeader, entries.data(), entries.size_bytes());
    return buf;
}

}  // namespace

KvmError::KvmError(const std::string& what, int err)
    : std::runtime_error(fmt::format("{} failed: {} (errno {})", what, std::strerror(err), err)),
      err_(err) {}

Fd& Fd::operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
}

void Fd::reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

Mapping::Mapping(Mapping&& other) noexcept
    : addr_(std::exchange(other.addr_, nullptr)), len_(std::exchange(other.len_, 0)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
    if (this != &other) {
        reset();
        addr_ = std::exchange(other.addr_, nullptr);
        len_ = std::exchange(other.len_, 0);
    }
    return *this;
}

void Mapping::reset() {
    if (addr_ != nullptr) ::munmap(addr_, len_);
    addr_ = nullptr;
    len_ = 0;
}

Mapping Mapping::anonymous(std::size_t len) {
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw KvmError(fmt::format("mmap of {} bytes of guest RAM", len), errno);
    return Mapping(p, len);
}

Kvm::Kvm() {
    int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) throw KvmError("open /dev/kvm", errno);
    fd_.reset(fd);

    int version = checked_ioctl(fd, KVM_GET_API_VERSION, "KVM_GET_API_VERSION", 0);
    if (version != KVM_API_VERSION) {
        throw std::runtime_error(
            fmt::format("/dev/kvm speaks API version {}, ukvm needs {}", version, KVM_API_VERSION));
    }
    // What the VMM cannot work without.
    struct Required {
        long cap;
        const char* name;
    };
    for (auto [cap, name] :
         {Required{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
          Required{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"}, Required{KVM_CAP_PIT2, "KVM_CAP_PIT2"},
          Required{KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
          Required{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
          Required{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"}}) {
        if (check_extension(cap) <= 0) {
            throw std::runtime_error(fmt::format("/dev/kvm lacks required capability {}", name));
        }
    }
    vcpu_mmap_size_ = static_cast<std::size_t>(
        checked_ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE", 0));

    // Size the buffer in entries and grow on E2BIG.
    for (std::uint32_t nent = 128;; nent *= 2) {
        std::vector<std::uint8_t> buf = cpuid_buffer({}, nent);
        if (::ioctl(fd, kGetSupportedCpuid, buf.data()) == 0) {
            std::uint32_t got = 0;
            std::memcpy(&got, buf.data(), sizeof got);
            cpuid_.resize(got);
            std::memcpy(cpuid_.data(), buf.data() + kCpuidHeader, got * sizeof(kvm_cpuid_entry2));
            break;
        }
        if (errno != E2BIG || nent >= 4096) throw KvmError("KVM_GET_SUPPORTED_CPUID", errno);
    }
}

int Kvm::check_extension(long cap) const {
    return checked_ioctl(fd_.get(), KVM_CHECK_EXTENSION, "KVM_CHECK_EXTENSION", cap);
}

Vm::Vm(const Kvm& kvm) : kvm_(kvm) {
    fd_.reset(checked_ioctl(kvm.fd(), KVM_CREATE_VM, "KVM_CREATE_VM", 0));
}

void Vm::set_user_memory_region(std::uint32_t slot, std::uint64_t gpa, std::uint64_t size,
                                void* host) {
    kvm_userspace_memory_region region{};
    region.slot = slot;
    region.guest_phys_addr = gpa;
    region.memory_size = size;
    region.userspace_addr = reinterpret_cast<std::uint64_t>(host);
    checked_ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, "KVM_SET_USER_MEMORY_REGION", &region);
}

void Vm::set_tss_addr(std::uint64_t gpa) {
    checked_ioctl(fd_.get(), KVM_SET_TSS_ADDR, "KVM_SET_TSS_ADDR", static_cast<unsigned long>(gpa));
}

void Vm::set_identity_map_addr(std::uint64_t gpa) {
    checked_ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, "KVM_SET_IDENTITY_MAP_ADDR", &gpa);
}

void Vm::create_irqchip() {
    checked_ioctl(fd_.get(), KVM_CREATE_IRQCHIP, "KVM_CREATE_IRQCHIP", 0);
}

void Vm::create_pit2() {
    kvm_pit_config config{};
    checked_ioctl(fd_.get(), KVM_CREATE_PIT2, "KVM_CREATE_PIT2", &config);
}

void Vm::irq_line(std::uint32_t irq, bool level) {
    kvm_irq_level line{};
    line.irq = irq;
    line.level = level ? 1 : 0;
    checked_ioctl(fd_.get(), KVM_IRQ_LINE, "KVM_IRQ_LINE", &line);
}

Vcpu::Vcpu(Vm& vm, std::uint32_t id) : id_(id) {
    fd_.reset(
        checked_ioctl(vm.fd(), KVM_CREATE_VCPU, "KVM_CREATE_VCPU", static_cast<unsigned long>(id)));
    std::size_t size = vm.kvm().vcpu_mmap_size();
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
    if (p == MAP_FAILED) throw KvmError("mmap of kvm_run", errno);
    run_ = Mapping(p, size);
}

bool Vcpu::run() {
    if (::ioctl(fd_.get(), KVM_RUN, 0) == 0) return true;
    if (errno == EINTR || errno == EAGAIN) return false;
    throw KvmError("KVM_RUN", errno);
}

kvm_regs Vcpu::regs() const {
    kvm_regs r{};
    checked_ioctl(fd_.get(), KVM_GET_REGS, "KVM_GET_REGS", &r);
    return r;
}

void Vcpu::set_regs(const kvm_regs& regs) {
    checked_ioctl(fd_.get(), KVM_SET_REGS, "KVM_SET_REGS", &regs);
}

kvm_sregs Vcpu::sregs() const {
    kvm_sregs s{};
    checked_ioctl(fd_.get(), KVM_GET_SREGS, "KVM_GET_SREGS", &s);
    return s;
}

void Vcpu::set_sregs(const kvm_sregs& sregs) {
    checked_ioctl(fd_.get(), KVM_SET_SREGS, "KVM_SET_SREGS", &sregs);
}

kvm_mp_state Vcpu::mp_state() const {
    kvm_mp_state s{};
    checked_ioctl(fd_.get(), KVM_GET_MP_STATE, "KVM_GET_MP_STATE", &s);
    return s;
}

void Vcpu::set_cpuid(std::span<const kvm_cpuid_entry2> supported) {
    std::vector<kvm_cpuid_entry2> entries(supported.begin(), supported.end());
    for (kvm_cpuid_entry2& e : entries) {
        // Each vCPU reports its own APIC ID (leaf 1 EBX[31:24], leaf 0xB/0x1F EDX).
        if (e.function == 1) e.ebx = (e.ebx & 0x00FFFFFFu) | (id_ << 24);
        if (e.function == 0xB || e.function == 0x1F) e.edx = id_;
    }
    std::vector<std::uint8_t> buf =
        cpuid_buffer(entries, static_cast<std::uint32_t>(entries.size()));
    checked_ioctl(fd_.get(), kSetCpuid2, "KVM_SET_CPUID2", buf.data());
}

}  // namespace ukvm
