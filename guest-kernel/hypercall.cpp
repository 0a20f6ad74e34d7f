#include "hypercall.hpp"

#include "arch/x86_64/cpu.hpp"
#include "lib.hpp"

namespace kernel::hypercall {

namespace {
bool g_available = false;
}

bool available() {
    return g_available;
}

void call(ukvm::hc::Message& msg) {
    cpu::outl(ukvm::hc::kPort, static_cast<uint32_t>(reinterpret_cast<uintptr_t>(&msg)));
    asm volatile("" : : : "memory");
}

bool probe() {
    // Elsewhere the port is unassigned: the write is dropped and the message stays as is.
    ukvm::hc::Message msg{};
    msg.m_type = ukvm::hc::kVersion;
    call(msg);
    ukvm::hc::VersionReply reply;
    memcpy(&reply, msg.payload, sizeof reply);
    g_available = msg.m_source == ukvm::hc::kVmmEndpoint && msg.m_type == ukvm::hc::kOk &&
                  reply.magic == ukvm::hc::kMagic;
    return g_available;
}

}  // namespace kernel::hypercall
