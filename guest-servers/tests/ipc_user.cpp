// A user-class process: checks that its privileges are those of a MINIX user (SENDREC
// only, to servers, no kernel calls beyond its own) and reports to its parent (ipc_test).
#include "protocol.hpp"
#include "user.hpp"

using namespace ukvm::kernel;

int main(const char*) {
    Message m{};
    m.m_type = proto::kAsk;
    if (user::sendrec(user::parent(), &m) != kOk) return 1;
    auto other_user = static_cast<Endpoint>(m.i64[0]);

    Message r{};
    r.m_type = proto::kReport;
    r.i64[0] = user::notify(user::parent());    // kETrapDenied
    r.i64[1] = user::send(user::parent(), &m);  // kETrapDenied
    r.i64[2] = user::receive(kAny, &m);         // kETrapDenied
    m = Message{};
    r.i64[3] = user::sendrec(other_user, &m);  // kECallDenied: users cannot talk
    m = Message{};
    user::set_name(&m, "ipc_echo");
    r.i64[4] = user::kernel_call(kSysSpawn, &m);                                     // kECallDenied
    r.i64[5] = user::sendrec(user::parent(), reinterpret_cast<Message*>(0x100000));  // kEFault
    m = Message{};
    m.m_type = ukvm::hc::kTime;
    r.i64[6] = user::sendrec(kVmm, &m);  // kOk
    // (the payload has seven words: this result shares the last one)
    int64_t reply_recv = user::reply_recv(user::parent(), kAny, &m);  // kETrapDenied
    r.i64[6] = (r.i64[6] & 0xffffffff) | (reply_recv << 32);
    user::sendrec(user::parent(), &r);
    return 0;
}
