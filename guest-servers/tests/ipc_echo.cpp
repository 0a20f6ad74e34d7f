// ipc_test's partner server: echoes, forwards, notifies, holds and copies through grants
// on request (tests/protocol.hpp).
#include "protocol.hpp"
#include "user.hpp"

using namespace ukvm::kernel;

namespace {

uint8_t g_buffer[4096];

void safecopy(Message& m, Endpoint granter, bool to_grant) {
    uint64_t len = static_cast<uint64_t>(m.i64[2]);
    if (len > sizeof g_buffer) len = sizeof g_buffer;
    if (to_grant) memset(g_buffer, static_cast<int>(m.i64[3]), len);
    Message k{};
    k.u64[0] = static_cast<uint64_t>(granter);
    k.u64[1] = static_cast<uint64_t>(m.i64[0]);
    k.u64[2] = static_cast<uint64_t>(m.i64[1]);
    k.u64[3] = reinterpret_cast<uintptr_t>(g_buffer);
    k.u64[4] = static_cast<uint64_t>(m.i64[2]);
    int32_t r = user::kernel_call(to_grant ? kSysSafeCopyTo : kSysSafeCopyFrom, &k);
    uint64_t sum = 0;
    if (r == kOk && !to_grant)
        for (uint64_t i = 0; i < len; ++i) sum += g_buffer[i];
    m.i64[0] = r;
    m.i64[1] = static_cast<int64_t>(sum);
}

}  // namespace

int main(const char*) {
    Message m{};
    int32_t received = user::receive(kAny, &m);
    for (;; received = user::receive(kAny, &m)) {
        // kEcho replies with REPLYRECV, which also waits for the next request.
        while (received == kOk && m.m_type == proto::kEcho) {
            Endpoint from = m.m_source;
            m.m_source = 12345;  // the kernel must overwrite this
            m.m_type = proto::kEchoReply;
            received = user::reply_recv(from, kAny, &m);
        }
        if (received != kOk || m.m_type == kNotifyMessage) continue;
        Endpoint from = m.m_source;
        switch (m.m_type) {
            case proto::kClobberXmm:
                asm volatile("movq %0, %%xmm0" : : "r"(m.i64[0]));
                user::send(from, &m);
                break;
            case proto::kEchoPlain:  // the MINIX way: SEND the reply, then RECEIVE again
                m.m_source = 12345;
                m.m_type = proto::kEchoReply;
                user::send(from, &m);
                break;
            case proto::kForward: {
                Message f{};
                f.m_type = static_cast<int32_t>(m.i64[1]);
                m.i64[0] = user::sendrec(static_cast<Endpoint>(m.i64[0]), &f);
                m.i64[1] = f.m_type;
                m.i64[2] = f.m_source;
                user::send(from, &m);
                break;
            }
            case proto::kNotifyThenReply:
                for (int64_t i = 0; i < m.i64[0]; ++i) user::notify(from);
                user::send(from, &m);
                break;
            case proto::kHold:
                break;
            case proto::kSendTo:
                user::send(static_cast<Endpoint>(m.i64[0]), &m);
                break;
            case proto::kSafeRead:
                safecopy(m, from, false);
                user::send(from, &m);
                break;
            case proto::kSafeWrite:
                safecopy(m, from, true);
                user::send(from, &m);
                break;
            case proto::kExit:
                return static_cast<int>(m.i64[0]);
            case proto::kSpin: {
                static volatile uint64_t counter = 0;
                Message k{};
                k.u64[0] = static_cast<uint64_t>(from);
                k.u64[1] = reinterpret_cast<uintptr_t>(&counter);
                k.u64[2] = sizeof counter;
                k.u64[3] = kGrantRead;
                m.i64[0] = user::kernel_call(kSysGrantCreate, &k) == kOk ? k.i64[0] : -1;
                user::send(from, &m);
                for (;;) counter = counter + 1;  // preempted only by the quantum timer
            }
            default:
                break;
        }
    }
}
