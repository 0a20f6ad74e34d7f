// The test guests' runtime: console, exit, hypercalls, boot information, on ukvm (through
// the hypercall ABI) and elsewhere (COM1 and QEMU's isa-debug-exit).
//
// A guest defines guest_main; the runtime has already detected ukvm and read the command
// line and memory size, and exits with guest_main's return value.
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <ukvm/hypercall.h>

extern "C" int guest_main(uint32_t magic, uint32_t info);

namespace rt {

inline constexpr uint32_t kMultibootBootloaderMagic = 0x2BADB002;

struct MultibootInfo {
    uint32_t flags;
    uint32_t mem_lower;  // KiB, flags bit 0
    uint32_t mem_upper;
    uint32_t boot_device;
    uint32_t cmdline;     // flags bit 2
    uint32_t mods_count;  // flags bit 3
    uint32_t mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length;
    uint32_t mmap_addr;
    uint32_t drives_length;
    uint32_t drives_addr;
    uint32_t config_table;
    uint32_t boot_loader_name;  // flags bit 9
};

struct MultibootModule {
    uint32_t mod_start;
    uint32_t mod_end;
    uint32_t cmdline;
    uint32_t reserved;
};

inline constexpr uint32_t kInfoMemory = 1u << 0;
inline constexpr uint32_t kInfoCmdline = 1u << 2;
inline constexpr uint32_t kInfoModules = 1u << 3;
inline constexpr uint32_t kInfoLoaderName = 1u << 9;

// Boot facts, gathered before guest_main.
bool on_ukvm();                         // loader name "ukvm" and the kVersion probe answered
const MultibootInfo* multiboot_info();  // null when the magic was wrong
const char* loader_name();              // "" when the loader gave none
const char* cmdline();                  // from kBootInfo on ukvm, multiboot elsewhere
uint64_t memory_bytes();                // from kBootInfo on ukvm, multiboot elsewhere; 0 if unknown
// The value of the first "key=N" word of the command line (decimal or 0x hex), or fallback.
uint64_t cmdline_number(const char* key, uint64_t fallback);

// Console: buffered per line, one hypercall per line on ukvm, COM1 elsewhere.
void write(const char* s, size_t n);
void flush();
void printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void vprintf(const char* fmt, va_list args);

// Ends the VM with status: kHalt on ukvm; isa-debug-exit elsewhere (QEMU then exits with
// status*2+1), or cli; hlt if nothing listens there.
[[noreturn]] void exit(int status);

// Sends m to the VMM and returns the reply's status (m.m_type). m must be 16-byte aligned.
int32_t hypercall(ukvm::hc::Message& m);
inline void hypercall_at(uint32_t address) {
    asm volatile("outl %0, %1" ::"a"(address), "Nd"(ukvm::hc::kPort) : "memory");
}
// A request message for call with req copied into its payload.
template <typename Request>
ukvm::hc::Message make_message(int32_t call, const Request& req);
ukvm::hc::Message make_message(int32_t call);

// Wall clock in nanoseconds since the Unix epoch: kTime on ukvm, the CMOS RTC elsewhere
// (one-second resolution). 0 when unknown.
uint64_t realtime_ns();
struct DateTime {
    uint32_t year, month, day, hour, minute, second;
};
DateTime to_datetime(uint64_t unix_seconds);

// Port I/O and the TSC.
inline void outb(uint16_t port, uint8_t v) {
    asm volatile("outb %0, %1" ::"a"(v), "Nd"(port));
}
inline void outl(uint16_t port, uint32_t v) {
    asm volatile("outl %0, %1" ::"a"(v), "Nd"(port));
}
inline uint8_t inb(uint16_t port) {
    uint8_t v;
    asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
inline uint32_t inl(uint16_t port) {
    uint32_t v;
    asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

// PCI configuration space of bus 0 through 0xCF8/0xCFC (mechanism #1), by slot (function 0).
inline uint32_t pci_config_address(uint8_t slot, uint8_t reg) {
    return 0x80000000u | (uint32_t(slot) << 11) | (reg & 0xFC);
}
inline uint32_t pci_read(uint8_t slot, uint8_t reg) {
    outl(0xCF8, pci_config_address(slot, reg));
    return inl(0xCFC);
}
inline void pci_write(uint8_t slot, uint8_t reg, uint32_t v) {
    outl(0xCF8, pci_config_address(slot, reg));
    outl(0xCFC, v);
}

inline uint64_t rdtsc() {
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t(hi) << 32) | lo;
}

// Continues in fn, in ring 3 with IOPL 3 (port I/O still works, hlt does not) on the
// given stack. fn must end with rt::exit.
[[noreturn]] void enter_ring3(void (*fn)(), void* stack_top);

size_t strlen(const char* s);
bool starts_with(const char* s, const char* prefix);
bool contains(const char* haystack, const char* needle);

template <typename Request>
ukvm::hc::Message make_message(int32_t call, const Request& req) {
    static_assert(sizeof(Request) <= sizeof(ukvm::hc::Message::payload));
    ukvm::hc::Message m = make_message(call);
    __builtin_memcpy(m.payload, &req, sizeof req);
    return m;
}

}  // namespace rt
