// ipc_notify: notifications: coalescing, no effect on a pending SENDREC, priority over queued
// messages. One area of the in-guest test suite (harness.hpp), started by ipc_test; prints "N
// passed, M failed" and exits with M.
#include "harness.hpp"

using namespace ukvm::kernel;
using t::g_echo;
using t::request;

namespace {

bool test_notify_coalesces_and_waits_for_reply() {
    // Echo notifies us 3 times while we wait in SENDREC: the reply must come first (a
    // notification cannot end a SENDREC), and the three notifications are one.
    Message m = request(proto::kNotifyThenReply, 3);
    CHECK_EQ(user::sendrec(g_echo, &m), kOk);
    CHECK_EQ(m.m_type, proto::kNotifyThenReply);
    Message n{};
    CHECK_EQ(user::receive(kAny, &n), kOk);
    CHECK_EQ(n.m_type, kNotifyMessage);
    CHECK_EQ(n.m_source, g_echo);
    // No second notification: the next message is our own alarm.
    Message a{};
    a.u64[0] = 5000000;
    CHECK_EQ(user::kernel_call(kSysSetAlarm, &a), kOk);
    CHECK_EQ(user::receive(kAny, &n), kOk);
    CHECK_EQ(n.m_source, kClock);
    CHECK_EQ(n.m_type, kNotifyMessage);
    return true;
}

bool test_notification_before_queued_message() {
    // Echo notifies us and then sends its reply while we are not receiving: RECEIVE
    // takes the pending notification before the queued message (MINIX order).
    Message m = request(proto::kNotifyThenReply, 1);
    CHECK_EQ(user::send(g_echo, &m), kOk);
    user::sleep_ns(2000000);
    Message r{};
    CHECK_EQ(user::receive(g_echo, &r), kOk);
    CHECK_EQ(r.m_type, kNotifyMessage);
    CHECK_EQ(r.m_source, g_echo);
    CHECK_EQ(user::receive(g_echo, &r), kOk);
    CHECK_EQ(r.m_type, proto::kNotifyThenReply);
    return true;
}

}  // namespace

int main(const char*) {
    t::begin("ipc_notify");
    t::run("notify coalesces, sendrec waits for the reply",
           test_notify_coalesces_and_waits_for_reply);
    t::run("notification before a queued message", test_notification_before_queued_message);
    return t::finish();
}
