// The VMM as an IPC endpoint: a permitted process SENDRECs kVmm with a hypercall-ABI
// request (buffers given as its own user addresses); the kernel copies the buffers into
// kernel memory, makes one hypercall and delivers the reply. Without ukvm (QEMU) the
// same requests are served from the UART, the TSC and isa-debug-exit.
#include "arch/x86_64/cpu.hpp"
#include "clock.hpp"
#include "console.hpp"
#include "hypercall.hpp"
#include "lib.hpp"
#include "sched.hpp"
#include "task.hpp"

namespace kernel::task {

namespace hc = ukvm::hc;
using namespace ukvm::kernel;

namespace {

constexpr size_t kChunk = 4096;
alignas(4096) uint8_t g_bounce[kChunk];
alignas(16) hc::Message g_hmsg;

template <typename T>
T payload(const Message& m) {
    T v;
    memcpy(&v, m.bytes, sizeof v);
    return v;
}
template <typename T>
void set_payload(Message& m, const T& v) {
    memset(m.bytes, 0, sizeof m.bytes);
    memcpy(m.bytes, &v, sizeof v);
}

// One hypercall with the kernel buffer g_bounce standing in for the user's.
int32_t forward(hc::Call call, const void* request, size_t request_size, void* reply,
                size_t reply_size) {
    g_hmsg = {};
    g_hmsg.m_type = call;
    memcpy(g_hmsg.payload, request, request_size);
    hypercall::call(g_hmsg);
    if (reply) memcpy(reply, g_hmsg.payload, reply_size);
    return g_hmsg.m_type;
}

// Console writes and log lines: the user's bytes in kChunk pieces.
int32_t write_out(Proc* caller, Message& m, bool log) {
    uint64_t addr, len;
    uint32_t level = 0;
    if (log) {
        auto req = payload<hc::LogRequest>(m);
        if (req.reserved) return hc::kEInval;
        addr = req.addr, len = req.len, level = req.level;
    } else {
        auto req = payload<hc::BufferRequest>(m);
        addr = req.addr, len = req.len;
    }
    if (len > hc::kMaxIoBytes) return hc::kE2Big;
    uint64_t done = 0;
    while (done < len) {
        size_t n = len - done < kChunk ? len - done : kChunk;
        if (!caller->as.copy_in(g_bounce, {addr + done}, n)) return hc::kEFault;
        if (!hypercall::available()) {
            console::write(reinterpret_cast<const char*>(g_bounce), n);
        } else if (log) {
            hc::LogRequest req{level, 0, reinterpret_cast<uintptr_t>(g_bounce), n};
            int32_t s = forward(hc::kLog, &req, sizeof req, nullptr, 0);
            if (s != hc::kOk) return s;
        } else {
            hc::BufferRequest req{reinterpret_cast<uintptr_t>(g_bounce), n};
            int32_t s = forward(hc::kConsoleWrite, &req, sizeof req, nullptr, 0);
            if (s != hc::kOk) return s;
        }
        done += n;
    }
    set_payload(m, hc::CountReply{done});
    return hc::kOk;
}

}  // namespace

int32_t vmm_call(Proc* caller, Message& m) {
    switch (m.m_type) {
        case hc::kVersion:
            set_payload(m, hc::VersionReply{hc::kMagic, hc::kAbiVersion});
            return hypercall::available() ? hc::kOk : hc::kENoSys;
        case hc::kConsoleWrite:
            return write_out(caller, m, false);
        case hc::kLog:
            return write_out(caller, m, true);
        case hc::kTime: {
            hc::TimeReply reply{0, clock::uptime_ns()};
            if (hypercall::available()) {
                int32_t s = forward(hc::kTime, nullptr, 0, &reply, sizeof reply);
                if (s != hc::kOk) return s;
            }
            set_payload(m, reply);
            return hc::kOk;
        }
        case hc::kHalt: {
            // Ending the machine is for the system (PM's poweroff), not for any user.
            if (caller->priv.cls == ProcClass::kUser) return ukvm::kernel::kEPerm;
            auto req = payload<hc::HaltRequest>(m);
            print("ukvm-kernel: %s halts the machine with status %d\n", caller->name, req.status);
            sched::print_stats();
            console::halt(req.status);
        }
        case hc::kReboot: {
            if (caller->priv.cls == ProcClass::kUser) return ukvm::kernel::kEPerm;
            print("ukvm-kernel: %s reboots the machine\n", caller->name);
            sched::print_stats();
            console::reboot();
        }
        case hc::kBootInfo: {
            auto req = payload<hc::BufferRequest>(m);
            if (!hypercall::available()) return hc::kENoSys;
            size_t n = req.len < kChunk ? req.len : kChunk;
            hc::BufferRequest kreq{reinterpret_cast<uintptr_t>(g_bounce), n};
            hc::BootInfoReply reply{};
            int32_t s = forward(hc::kBootInfo, &kreq, sizeof kreq, &reply, sizeof reply);
            if (s != hc::kOk) return s;
            if (n && !caller->as.copy_out({req.addr}, g_bounce, n)) return hc::kEFault;
            set_payload(m, reply);
            return hc::kOk;
        }
        case hc::kEvents: {
            // The host's requests (power off) are for the system, as halting is.
            if (caller->priv.cls == ProcClass::kUser) return ukvm::kernel::kEPerm;
            if (!hypercall::available()) return hc::kENoSys;
            hc::EventsReply reply{};
            int32_t s = forward(hc::kEvents, nullptr, 0, &reply, sizeof reply);
            if (s != hc::kOk) return s;
            set_payload(m, reply);
            return hc::kOk;
        }
        default:
            return hc::kENoSys;
    }
}

}  // namespace kernel::task
