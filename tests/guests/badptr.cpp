// badptr: hypercalls a buggy or hostile guest could make. Each check prints one line,
// "check <name>: ok" or "check <name>: FAIL ..."; the guest exits 0 only if all pass.
//
// Two kinds: messages the VMM cannot use (outside RAM, misaligned, straddling the end of
// RAM) must be dropped and left untouched, and the VMM must keep answering; well-formed
// messages with bad requests must get the status hypercall.h documents.
#include "rt/rt.hpp"

namespace hc = ukvm::hc;

namespace {

int checks;
int failures;

void check(const char* name, bool ok, const char* detail = "") {
    ++checks;
    if (!ok) ++failures;
    rt::printf("check %s: %s%s\n", name, ok ? "ok" : "FAIL ", ok ? "" : detail);
}

// Checks a reply's source and status.
void check_status(const char* name, const hc::Message& reply, int32_t expected) {
    ++checks;
    if (reply.m_source == hc::kVmmEndpoint && reply.m_type == expected) {
        rt::printf("check %s: ok\n", name);
        return;
    }
    ++failures;
    rt::printf("check %s: FAIL expected m_source %d m_type %d, got %d %d\n", name, hc::kVmmEndpoint,
               expected, reply.m_source, reply.m_type);
}

hc::Message msg;

template <typename Request>
const hc::Message& call(int32_t number, const Request& req) {
    msg = rt::make_message(number, req);
    rt::hypercall(msg);
    return msg;
}
const hc::Message& call(int32_t number) {
    msg = rt::make_message(number);
    rt::hypercall(msg);
    return msg;
}

// The VMM still answers a well-formed kVersion after whatever came before.
bool vmm_answers() {
    const hc::Message& r = call(hc::kVersion);
    hc::VersionReply v;
    __builtin_memcpy(&v, r.payload, sizeof v);
    return r.m_source == hc::kVmmEndpoint && r.m_type == hc::kOk && v.magic == hc::kMagic;
}

// A kVersion request at an address the VMM must refuse; afterwards the bytes there are
// unchanged (when they are RAM) and the VMM still answers.
void check_dropped(const char* name, uint64_t addr, bool in_ram) {
    uint8_t before[64];
    auto* bytes = reinterpret_cast<uint8_t*>(addr);
    if (in_ram) {
        const hc::Message m = rt::make_message(hc::kVersion);
        __builtin_memcpy(before, &m, sizeof before);
        for (int i = 8; i < 64; ++i) before[i] = uint8_t(0xa0 + i);
        // Only the bytes below the end of RAM exist.
        const uint64_t ram = rt::memory_bytes();
        const uint64_t n = addr + 64 <= ram ? 64 : ram - addr;
        __builtin_memcpy(bytes, before, n);
        rt::hypercall_at(uint32_t(addr));
        bool untouched = true;
        for (uint64_t i = 0; i < n; ++i) untouched = untouched && bytes[i] == before[i];
        check(name, untouched && vmm_answers(), "message modified or VMM stopped answering");
    } else {
        rt::hypercall_at(uint32_t(addr));
        check(name, vmm_answers(), "VMM stopped answering");
    }
}

alignas(64) uint8_t buffer[256];

}  // namespace

extern "C" int guest_main(uint32_t, uint32_t) {
    if (!rt::on_ukvm()) {
        rt::printf("badptr: needs ukvm hypercalls\n");
        return 1;
    }
    const uint64_t ram = rt::memory_bytes();
    rt::printf("badptr: memory %lu MiB\n", ram >> 20);
    if (ram < (4 << 20) || ram > 0xc0000000) {
        rt::printf("badptr: needs 4 MiB .. 3 GiB of RAM\n");
        return 1;
    }
    const uint64_t buf = reinterpret_cast<uintptr_t>(buffer);
    const uint64_t top = 0xffffffffffffffffull;

    check("version answers", vmm_answers(), "no kVersion reply");

    // Messages the VMM cannot reach or must not use: dropped, untouched.
    check_dropped("message at end of RAM", ram, false);
    check_dropped("message in 3-4 GiB hole", 0xc0000000, false);
    check_dropped("message at 4 GiB - 64", 0xffffffc0, false);
    check_dropped("message misaligned by 8", buf + 8, true);
    check_dropped("message misaligned by 4", buf + 4, true);
    check_dropped("message misaligned by 1", buf + 1, true);
    check_dropped("message straddling end of RAM by 48", ram - 16, true);
    check_dropped("message straddling end of RAM by 16", ram - 48, true);

    // The last whole message in RAM is fine.
    {
        auto* last = reinterpret_cast<hc::Message*>(ram - 64);
        *last = rt::make_message(hc::kVersion);
        rt::hypercall(*last);
        check_status("message in last 64 bytes of RAM", *last, hc::kOk);
    }

    // Buffers out of range: -EFAULT.
    check_status("console buffer at end of RAM",
                 call(hc::kConsoleWrite, hc::BufferRequest{ram, 16}), hc::kEFault);
    check_status("console buffer straddling end of RAM",
                 call(hc::kConsoleWrite, hc::BufferRequest{ram - 8, 16}), hc::kEFault);
    check_status("console buffer in 3-4 GiB hole",
                 call(hc::kConsoleWrite, hc::BufferRequest{0xc0000000, 16}), hc::kEFault);
    check_status("console buffer above 4 GiB",
                 call(hc::kConsoleWrite, hc::BufferRequest{1ull << 40, 16}), hc::kEFault);
    check_status("console buffer wrapping past 2^64",
                 call(hc::kConsoleWrite, hc::BufferRequest{top - 15, 32}), hc::kEFault);
    check_status("log buffer wrapping past 2^64",
                 call(hc::kLog, hc::LogRequest{hc::kLogInfo, 0, top - 7, 16}), hc::kEFault);
    {
        // A reply buffer straddling the end: refused, and the RAM part left alone.
        auto* tail = reinterpret_cast<volatile uint8_t*>(ram - 8);
        for (int i = 0; i < 8; ++i) tail[i] = 0xee;
        check_status("bootinfo buffer straddling end of RAM",
                     call(hc::kBootInfo, hc::BufferRequest{ram - 8, 64}), hc::kEFault);
        bool untouched = true;
        for (int i = 0; i < 8; ++i) untouched = untouched && tail[i] == 0xee;
        check("bootinfo straddling buffer untouched", untouched, "the VMM wrote part of it");
    }
    check_status("bootinfo buffer wrapping past 2^64",
                 call(hc::kBootInfo, hc::BufferRequest{top - 31, 64}), hc::kEFault);

    // Oversized: -E2BIG (the range itself is in RAM).
    check_status("console write of kMaxIoBytes + 1",
                 call(hc::kConsoleWrite, hc::BufferRequest{0, hc::kMaxIoBytes + 1}), hc::kE2Big);
    check_status("log of kMaxIoBytes + 1",
                 call(hc::kLog, hc::LogRequest{hc::kLogInfo, 0, 0, hc::kMaxIoBytes + 1}),
                 hc::kE2Big);

    // Malformed: -EINVAL.
    static const char text[] = "badptr: log line that must be rejected\n";
    check_status("log with reserved field set",
                 call(hc::kLog, hc::LogRequest{hc::kLogInfo, 1, reinterpret_cast<uintptr_t>(text),
                                               sizeof text - 1}),
                 hc::kEInval);
    check_status(
        "log with unknown level",
        call(hc::kLog, hc::LogRequest{99, 0, reinterpret_cast<uintptr_t>(text), sizeof text - 1}),
        hc::kEInval);

    // Unknown calls: -ENOSYS.
    check_status("call 0", call(0), hc::kENoSys);
    check_status("call 9", call(9), hc::kENoSys);  // (8 is kReboot)
    check_status("call -1", call(-1), hc::kENoSys);
    check_status("call 0x7fffffff", call(0x7fffffff), hc::kENoSys);

    // Valid edge cases still work.
    {
        const hc::Message& r = call(hc::kBootInfo, hc::BufferRequest{0, 0});
        hc::BootInfoReply info;
        __builtin_memcpy(&info, r.payload, sizeof info);
        check_status("bootinfo with empty buffer", r, hc::kOk);
        check("bootinfo sizes",
              info.memory_bytes == ram && info.cmdline_len == rt::strlen(rt::cmdline()) &&
                  info.abi_version == hc::kAbiVersion,
              "memory, cmdline length or ABI version wrong");
    }
    {
        static const char line[] = "badptr: console write ok\n";
        const hc::Message& r =
            call(hc::kConsoleWrite,
                 hc::BufferRequest{reinterpret_cast<uintptr_t>(line), sizeof line - 1});
        hc::CountReply count;
        __builtin_memcpy(&count, r.payload, sizeof count);
        check_status("console write", r, hc::kOk);
        check("console write count", count.count == sizeof line - 1, "wrong count");
    }
    check("version answers at the end", vmm_answers(), "no kVersion reply");

    rt::printf("badptr: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
