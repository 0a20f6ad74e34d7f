// ipc_deadlock: deadlock detection (ELOCKED) and SENDNB to a process that is not receiving
// (ENOTREADY). One area of the in-guest test suite (harness.hpp), started by ipc_test; prints "N
// passed, M failed" and exits with M.
#include "harness.hpp"

using namespace ukvm::kernel;
using t::check;
using t::g_echo;
using t::request;

namespace {

bool test_deadlock_and_notready() {
    // Echo blocks in SEND to us (we are not receiving); our SENDREC to it would close a
    // cycle: ELOCKED. SENDNB to it: ENOTREADY (it is not receiving). If our alarm wakes us
    // before echo reached its SEND, the cycle closes from echo's side instead (echo gets
    // ELOCKED and answers our SENDREC), which is just as correct: try again, waiting longer.
    for (uint64_t wait_ns = 2000000; wait_ns <= 256000000; wait_ns *= 4) {
        Message m = request(proto::kSendTo, user::self(), 77);
        CHECK_EQ(user::send(g_echo, &m), kOk);
        user::sleep_ns(wait_ns);  // let echo run into its SEND
        Message x = request(proto::kEcho);
        int32_t r = user::sendrec(g_echo, &x);
        if (r == kOk) {
            CHECK_EQ(x.m_type, proto::kEchoReply);
            continue;
        }
        CHECK_EQ(r, kELocked);
        CHECK_EQ(user::sendnb(g_echo, &x), kENotReady);
        CHECK_EQ(user::receive(g_echo, &x), kOk);
        CHECK_EQ(x.m_type, proto::kSendTo);
        CHECK_EQ(x.i64[1], 77);
        return true;
    }
    return check(false, "echo never blocked in SEND within 256 ms", __LINE__);
}

}  // namespace

int main(const char*) {
    t::begin("ipc_deadlock");
    t::run("deadlock (ELOCKED) and SENDNB (ENOTREADY)", test_deadlock_and_notready);
    return t::finish();
}
