// ukvm hypercall ABI, version 1: the one header the VMM and every guest include.
//
// A hypercall is a 32-bit `out` to kPort whose value is the guest-physical address of a
// 64-byte, 16-byte-aligned Minix-format message (m_source, m_type, 56-byte payload).
// The guest fills m_type with a Call and the payload with that call's request; the VMM
// validates the address, handles the call and overwrites the message in place with the
// reply: m_source = kVmmEndpoint, m_type = a Status (0 or a negative error), payload =
// the call's reply struct. A message the VMM cannot reach is left untouched and the
// call is dropped with a warning (there is nowhere to put a reply).
//
// Freestanding: fixed-width types only, no library dependencies; see docs/hypercall-abi.md.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace ukvm::hc {

inline constexpr uint32_t kAbiVersion = 1;
inline constexpr uint16_t kPort = 0x0500;          // the hypercall doorbell (32-bit out only)
inline constexpr uint32_t kMagic = 0x4d564b55;     // "UKVM" little-endian, in VersionReply
inline constexpr int32_t kVmmEndpoint = -16;       // m_source of every reply
inline constexpr uint32_t kMaxIoBytes = 1u << 20;  // per console write / log call

enum Call : int32_t {
    kVersion = 1,       // -> VersionReply. Also the probe: on another VMM nothing answers.
    kConsoleWrite = 2,  // BufferRequest -> CountReply
    kTime = 3,          // -> TimeReply
    kHalt = 4,          // HaltRequest; never returns (the VM ends with that status)
    kBootInfo = 5,      // BufferRequest (cmdline buffer) -> BootInfoReply
    kLog = 6,           // LogRequest -> CountReply
    kEvents = 7,        // -> EventsReply: takes (and clears) the host's pending requests
    kReboot = 8,        // no payload; never returns (the VM ends as a reset: ukvm exits 4)
};

// Status codes in a reply's m_type (Linux errno values, negated).
enum Status : int32_t {
    kOk = 0,
    kE2Big = -7,    // a length above kMaxIoBytes
    kEFault = -14,  // a buffer outside guest RAM, or whose range overflows
    kEInval = -22,  // a malformed request (bad field values, reserved bits set)
    kENoSys = -38,  // an unknown call number
};

struct alignas(16) Message {
    int32_t m_source;
    int32_t m_type;
    uint8_t payload[56];
};
static_assert(sizeof(Message) == 64, "a Minix message is 64 bytes");

// kConsoleWrite, kBootInfo: a byte range in guest-physical memory.
struct BufferRequest {
    uint64_t addr;
    uint64_t len;
};

// kConsoleWrite, kLog: how many bytes were consumed.
struct CountReply {
    uint64_t count;
};

struct VersionReply {
    uint32_t magic;    // kMagic
    uint32_t version;  // kAbiVersion
};

struct TimeReply {
    uint64_t realtime_ns;   // wall clock, nanoseconds since the Unix epoch (UTC)
    uint64_t monotonic_ns;  // nanoseconds since the VM was created
};

struct HaltRequest {
    int32_t status;  // the VMM's exit status; 0..255, anything else becomes 255
};

// kBootInfo: the VMM copies as much of the command line as fits (NUL-terminated when
// room allows) into the request's buffer; a zero-length buffer just asks for the sizes.
struct BootInfoReply {
    uint64_t memory_bytes;  // guest RAM
    uint64_t cmdline_len;   // the full command line's length, without a NUL
    uint32_t vcpus;
    uint32_t abi_version;
};

// kEvents: requests from the host, one bit each. The VMM sets a bit and pulses IOAPIC input
// kEventIrq (edge); the guest calls kEvents to learn which. A bit stays set until taken.
inline constexpr uint32_t kEventIrq = 9;  // the ISA line ACPI uses for its power button
enum EventBits : uint64_t {
    kEventPowerOff = 1,  // the operator asks for a clean shutdown (`ukvm ctl SOCKET shutdown`)
};
struct EventsReply {
    uint64_t pending;  // the EventBits that were set; now cleared
};

enum LogLevel : uint32_t { kLogDebug = 0, kLogInfo = 1, kLogWarn = 2, kLogError = 3 };

struct LogRequest {
    uint32_t level;     // a LogLevel
    uint32_t reserved;  // must be 0
    uint64_t addr;
    uint64_t len;
};

static_assert(sizeof(BufferRequest) <= sizeof(Message::payload));
static_assert(sizeof(BootInfoReply) <= sizeof(Message::payload));
static_assert(sizeof(LogRequest) <= sizeof(Message::payload));
static_assert(sizeof(TimeReply) <= sizeof(Message::payload));
static_assert(sizeof(EventsReply) <= sizeof(Message::payload));

}  // namespace ukvm::hc
