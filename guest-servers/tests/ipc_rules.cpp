// ipc_rules: IPC rules and their error codes: bad calls, rendezvous, FIFO and selective receive,
// SENDNB, REPLYRECV, generations, dead partners, user privileges. One area of the in-guest test
// suite (harness.hpp), started by ipc_test; prints "N passed, M failed" and exits with M.
#include "harness.hpp"

using namespace ukvm::kernel;
using t::g_echo;
using t::request;
using t::sync_echo;
using t::wait_child;

namespace {

bool test_user_privileges() {
    Endpoint u = user::spawn("ipc_user");
    Endpoint other = user::spawn("fault");  // another user process, asking us what to do
    CHECK(u > 0);
    CHECK(other > 0);
    Message m{};
    CHECK_EQ(user::receive(u, &m), kOk);
    CHECK_EQ(m.m_type, proto::kAsk);
    Message reply = request(0, other);
    CHECK_EQ(user::send(u, &reply), kOk);
    CHECK_EQ(user::receive(u, &m), kOk);
    CHECK_EQ(m.m_type, proto::kReport);
    CHECK_EQ(m.i64[0], kETrapDenied);               // NOTIFY
    CHECK_EQ(m.i64[1], kETrapDenied);               // SEND
    CHECK_EQ(m.i64[2], kETrapDenied);               // RECEIVE
    CHECK_EQ(m.i64[3], kECallDenied);               // SENDREC to another user
    CHECK_EQ(m.i64[4], kECallDenied);               // a kernel call outside its mask
    CHECK_EQ(m.i64[5], kEFault);                    // a message buffer in kernel memory
    CHECK_EQ(static_cast<int32_t>(m.i64[6]), kOk);  // the VMM's time call
    CHECK_EQ(static_cast<int32_t>(m.i64[6] >> 32), kETrapDenied);  // REPLYRECV
    reply = request(0);
    CHECK_EQ(user::send(u, &reply), kOk);  // its final report gets an (empty) reply
    // Let the other user exit normally.
    CHECK_EQ(user::receive(other, &m), kOk);
    reply = request(0, proto::kExitNormally);
    CHECK_EQ(user::send(other, &reply), kOk);
    uint64_t reason = 0, detail = 0;
    CHECK(wait_child(other, &reason, &detail));
    CHECK_EQ(reason, kExitNormal);
    CHECK_EQ(detail, 7);
    CHECK(wait_child(u, &reason, &detail));
    CHECK_EQ(reason, kExitNormal);
    return true;
}

bool test_bad_calls() {
    Message m{};
    CHECK_EQ(user::ipc(0, g_echo, &m), kEBadCall);
    CHECK_EQ(user::ipc(42, g_echo, &m), kEBadCall);
    CHECK_EQ(user::send(kAny, &m), kEBadSrcDst);
    CHECK_EQ(user::send(0x7fffffff, &m), kEBadSrcDst);
    CHECK_EQ(user::receive(kNrProcs + 3, &m), kEBadSrcDst);
    CHECK_EQ(user::sendrec(user::self(), &m), kELocked);
    CHECK_EQ(user::sendrec(g_echo, reinterpret_cast<Message*>(0x100000)), kEFault);
    CHECK_EQ(user::sendrec(g_echo, reinterpret_cast<Message*>(0x50000000)), kEFault);
    CHECK_EQ(user::receive(kAny, reinterpret_cast<Message*>(0x40400000)),
             kEFault);  // text: read-only
    CHECK_EQ(user::send(kClock, &m), kEBadRequest);
    return true;
}

bool test_sendrec_echo() {
    Message m = request(proto::kEcho, 11, 22, 33);
    CHECK_EQ(user::sendrec(g_echo, &m), kOk);
    CHECK_EQ(m.m_type, proto::kEchoReply);
    CHECK_EQ(m.m_source, g_echo);  // stamped by the kernel, not forged
    CHECK_EQ(m.i64[0], 11);
    CHECK_EQ(m.i64[2], 33);
    return true;
}

bool test_send_then_receive() {
    Message m = request(proto::kEchoPlain, 5);
    CHECK_EQ(user::send(g_echo, &m), kOk);
    Message r{};
    CHECK_EQ(user::receive(g_echo, &r), kOk);
    CHECK_EQ(r.m_type, proto::kEchoReply);
    CHECK_EQ(r.i64[0], 5);
    return true;
}

bool test_sendnb_to_a_receiver() {
    CHECK_EQ(sync_echo(), kOk);
    Message m = request(proto::kEchoPlain, 42);
    CHECK_EQ(user::sendnb(g_echo, &m), kOk);  // echo waits in RECEIVE(ANY)
    CHECK_EQ(user::receive(g_echo, &m), kOk);
    CHECK_EQ(m.m_type, proto::kEchoReply);
    CHECK_EQ(m.i64[0], 42);
    return true;
}

bool test_queued_sender_dies() {
    Endpoint x = user::spawn("ipc_echo");
    CHECK(x > 0);
    Message m = request(proto::kSendTo, user::self(), 5);
    CHECK_EQ(user::send(x, &m), kOk);
    user::sleep_ns(2000000);  // x is now queued, sending to us
    CHECK(t::kill_and_wait(x));
    // Its message went with it: nothing from x arrives before our alarm.
    Message k{};
    k.u64[0] = 3000000;
    CHECK_EQ(user::kernel_call(kSysSetAlarm, &k), kOk);
    do {
        CHECK_EQ(user::receive(kAny, &m), kOk);
        CHECK(m.m_source != x);
    } while (m.m_source != kClock);
    return true;
}

bool test_reply_recv() {
    // The reply goes out (SENDNB), then we wait, here for our alarm; echo's answer to the
    // "reply" stays queued until we ask for it. SENDNB needs echo in RECEIVE: after a
    // SENDREC of kEcho it is (echo answers those with REPLYRECV, atomically back in
    // RECEIVE), while after its plain SEND of kEchoPlain it may not be yet.
    CHECK_EQ(sync_echo(), kOk);
    Message m = request(proto::kEchoPlain, 8);
    CHECK_EQ(user::reply_recv(g_echo, g_echo, &m), kOk);  // echo receives, then answers
    CHECK_EQ(m.m_type, proto::kEchoReply);
    CHECK_EQ(m.i64[0], 8);
    CHECK_EQ(sync_echo(), kOk);
    Message a{};
    a.u64[0] = 2000000;
    CHECK_EQ(user::kernel_call(kSysSetAlarm, &a), kOk);
    m = request(proto::kEchoPlain, 9);
    CHECK_EQ(user::reply_recv(g_echo, kClock, &m), kOk);
    CHECK_EQ(m.m_source, kClock);
    CHECK_EQ(user::receive(g_echo, &m), kOk);
    CHECK_EQ(m.i64[0], 9);
    // A dead reply target ends the call before the receive.
    Endpoint dead = user::spawn("ipc_echo");
    CHECK(dead > 0);
    CHECK(t::kill_and_wait(dead));
    CHECK_EQ(user::reply_recv(dead, kAny, &m), kEDeadSrcDst);
    return true;
}

bool test_fifo_and_selective_receive() {
    Endpoint a = user::spawn("ipc_echo");
    Endpoint b = user::spawn("ipc_echo");
    Endpoint c = user::spawn("ipc_echo");
    CHECK(a > 0 && b > 0 && c > 0);
    Message m = request(proto::kSendTo, user::self(), 1);
    CHECK_EQ(user::send(a, &m), kOk);
    user::sleep_ns(2000000);
    m = request(proto::kSendTo, user::self(), 2);
    CHECK_EQ(user::send(b, &m), kOk);
    user::sleep_ns(2000000);
    m = request(proto::kSendTo, user::self(), 3);
    CHECK_EQ(user::send(c, &m), kOk);
    user::sleep_ns(2000000);  // all three now queued on us, in order a, b, c
    Message r{};
    CHECK_EQ(user::receive(c, &r), kOk);  // selective: c first
    CHECK_EQ(r.i64[1], 3);
    CHECK_EQ(user::receive(kAny, &r), kOk);
    CHECK_EQ(r.m_source, a);
    CHECK_EQ(r.i64[1], 1);
    CHECK_EQ(user::receive(kAny, &r), kOk);
    CHECK_EQ(r.m_source, b);
    Endpoint spawned[] = {a, b, c};
    for (Endpoint e : spawned) {
        m = request(proto::kExit, 0);
        CHECK_EQ(user::send(e, &m), kOk);
        CHECK(wait_child(e));
    }
    return true;
}

bool test_generations() {
    Endpoint e1 = user::spawn("ipc_echo");
    CHECK(e1 > 0);
    uint64_t reason = 0;
    CHECK(t::kill_and_wait(e1, &reason));
    CHECK_EQ(reason, kExitKilled);
    Endpoint e2 = user::spawn("ipc_echo");
    CHECK(e2 > 0);
    CHECK_EQ(endpoint_slot(e2), endpoint_slot(e1));  // same slot, new generation
    CHECK(e2 != e1);
    Message m = request(proto::kEcho);
    CHECK_EQ(user::sendrec(e1, &m), kEDeadSrcDst);
    CHECK_EQ(user::receive(e1, &m), kEDeadSrcDst);
    m = request(proto::kEcho, 9);
    CHECK_EQ(user::sendrec(e2, &m), kOk);
    CHECK_EQ(m.m_source, e2);
    CHECK(t::kill_and_wait(e2));
    return true;
}

bool test_partner_dies_while_blocked() {
    // Echo SENDRECs a holder that never replies; when we kill the holder, echo's SENDREC
    // fails with EDEADSRCDST and echo tells us so.
    Endpoint holder = user::spawn("ipc_echo");
    CHECK(holder > 0);
    Message m = request(proto::kForward, holder, proto::kHold);
    CHECK_EQ(user::send(g_echo, &m), kOk);
    user::sleep_ns(2000000);
    CHECK_EQ(t::kill(holder), kOk);
    CHECK_EQ(user::receive(g_echo, &m), kOk);
    CHECK_EQ(m.m_type, proto::kForward);
    CHECK_EQ(m.i64[0], kEDeadSrcDst);
    CHECK(wait_child(holder));
    return true;
}

}  // namespace

int main(const char*) {
    t::begin("ipc_rules");
    t::run("user privileges", test_user_privileges);
    t::run("bad calls", test_bad_calls);
    t::run("sendrec echo", test_sendrec_echo);
    t::run("send then receive", test_send_then_receive);
    t::run("FIFO senders and selective receive", test_fifo_and_selective_receive);
    t::run("SENDNB to a receiver", test_sendnb_to_a_receiver);
    t::run("REPLYRECV", test_reply_recv);
    t::run("a queued sender dies", test_queued_sender_dies);
    t::run("endpoint generations", test_generations);
    t::run("partner dies while blocked", test_partner_dies_while_blocked);
    return t::finish();
}
