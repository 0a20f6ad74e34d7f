// The in-guest IPC test suite (boot module 0, the parent of the other modules): checks
// MINIX IPC semantics, privileges, faults, grants and the clock against the kernel, prints
// "N passed, M failed" and halts the VM with status M (0 when everything passed).
//
// Boot modules: ipc_test ipc_echo ipc_user fault.
#include "protocol.hpp"
#include "user.hpp"

using namespace ukvm::kernel;
using user::print;

namespace {

int g_passed = 0;
int g_failed = 0;
Endpoint g_echo = kNone;

bool check(bool ok, const char* what, int line) {
    if (!ok) print("    check failed (line %d): %s\n", line, what);
    return ok;
}
bool check_eq(int64_t a, int64_t b, const char* what, int line) {
    if (a != b) print("    check failed (line %d): %s: %ld != %ld\n", line, what, a, b);
    return a == b;
}
#define CHECK(c)                                     \
    do {                                             \
        if (!check((c), #c, __LINE__)) return false; \
    } while (0)
#define CHECK_EQ(a, b)                                                 \
    do {                                                               \
        if (!check_eq((a), (b), #a " == " #b, __LINE__)) return false; \
    } while (0)

// A test that finds the host cannot show what it checks sets this (with the reason).
const char* g_skip_reason = nullptr;
int g_skipped = 0;

void run(const char* name, bool (*test)()) {
    g_skip_reason = nullptr;
    bool ok = test();
    if (ok && g_skip_reason) {
        ++g_skipped;
        print("SKIP %s (%s)\n", name, g_skip_reason);
        return;
    }
    ++(ok ? g_passed : g_failed);
    print("%s %s\n", ok ? "PASS" : "FAIL", name);
}

Message request(int32_t type, int64_t a = 0, int64_t b = 0, int64_t c = 0, int64_t d = 0) {
    Message m{};
    m.m_type = type;
    m.i64[0] = a, m.i64[1] = b, m.i64[2] = c, m.i64[3] = d;
    return m;
}

// Records of dead children fetched from SYSTEM but not yet asked for.
struct Death {
    Endpoint child = kNone;
    uint64_t reason = 0, detail = 0;
};
Death g_deaths[16];

bool take_death(Endpoint child, uint64_t* reason, uint64_t* detail) {
    for (Death& d : g_deaths) {
        if (d.child != child) continue;
        *reason = d.reason, *detail = d.detail;
        d = Death{};
        return true;
    }
    return false;
}

// Waits for the SYSTEM notification about a dead child and returns its record.
bool wait_child(Endpoint child, uint64_t* reason, uint64_t* detail) {
    for (int tries = 0; tries < 16; ++tries) {
        if (take_death(child, reason, detail)) return true;
        Message k{};
        while (user::kernel_call(kSysGetKSig, &k) == kOk &&
               static_cast<Endpoint>(k.u64[0]) != kNone) {
            for (Death& d : g_deaths) {
                if (d.child != kNone) continue;
                d = {static_cast<Endpoint>(k.u64[0]), k.u64[1], k.u64[2]};
                break;
            }
        }
        if (take_death(child, reason, detail)) return true;
        Message n{};
        if (user::receive(kSystem, &n) != kOk) return false;
    }
    return false;
}

// ---- boot children: run first, while they wait in SENDREC to us --------------------

bool test_user_privileges() {
    Endpoint u = user::find("ipc_user");
    Endpoint other = user::spawn("fault");  // another user process, asking us what to do
    CHECK(u != kNone);
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

bool fault_case(Endpoint child, proto::Fault kind, uint64_t vector) {
    Message m{};
    CHECK_EQ(user::receive(child, &m), kOk);
    CHECK_EQ(m.m_type, proto::kAsk);
    Message reply = request(0, kind);
    CHECK_EQ(user::send(child, &reply), kOk);
    uint64_t reason = 0, detail = 0;
    CHECK(wait_child(child, &reason, &detail));
    CHECK_EQ(reason, kExitFault);
    CHECK_EQ(detail, vector);
    // The dead child's endpoint is gone.
    m = Message{};
    CHECK_EQ(user::sendrec(child, &m), kEDeadSrcDst);
    return true;
}

bool test_fault_invalid_opcode() {
    return fault_case(user::find("fault"), proto::kInvalidOpcode, 6);
}
bool test_fault_read_kernel() {
    return fault_case(user::spawn("fault"), proto::kReadKernel, 14);
}
bool test_fault_privileged() {
    return fault_case(user::spawn("fault"), proto::kPrivileged, 13);
}
bool test_fault_divide() {
    return fault_case(user::spawn("fault"), proto::kDivide, 0);
}
bool test_fault_write_text() {
    return fault_case(user::spawn("fault"), proto::kWriteText, 14);
}
bool test_fault_execute_stack() {
    return fault_case(user::spawn("fault"), proto::kExecuteStack, 14);
}
bool test_fpu_state_is_per_process() {
    // Our xmm0 survives echo loading its own into xmm0 in between: the kernel switches
    // FPU/SSE state with the process.
    constexpr uint64_t kMine = 0x1122334455667788ull;
    asm volatile("movq %0, %%xmm0" : : "r"(kMine));
    Message m = request(proto::kClobberXmm, static_cast<int64_t>(0xdeadbeefcafef00dull));
    CHECK_EQ(user::sendrec(g_echo, &m), kOk);
    uint64_t now;
    asm volatile("movq %%xmm0, %0" : "=r"(now));
    CHECK_EQ(now, kMine);
    return true;
}
bool test_fault_unmapped() {
    return fault_case(user::spawn("fault"), proto::kUnmapped, 14);
}

// ---- IPC ----------------------------------------------------------------------------

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

// Returns once echo is back in RECEIVE: it answers kEcho with REPLYRECV, which puts it
// there atomically (after a plain SEND reply it may not be there yet when we run again).
int32_t sync_echo() {
    Message s = request(proto::kEcho);
    return user::sendrec(g_echo, &s);
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

bool test_queued_sender_dies() {
    Endpoint x = user::spawn("ipc_echo");
    CHECK(x > 0);
    Message m = request(proto::kSendTo, user::self(), 5);
    CHECK_EQ(user::send(x, &m), kOk);
    user::sleep_ns(2000000);  // x is now queued, sending to us
    Message k{};
    k.u64[0] = static_cast<uint64_t>(x);
    CHECK_EQ(user::kernel_call(kSysKill, &k), kOk);
    uint64_t reason, detail;
    CHECK(wait_child(x, &reason, &detail));
    // Its message went with it: nothing from x arrives before our alarm.
    k = Message{};
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
    Message k{};
    k.u64[0] = static_cast<uint64_t>(dead);
    CHECK_EQ(user::kernel_call(kSysKill, &k), kOk);
    uint64_t reason, detail;
    CHECK(wait_child(dead, &reason, &detail));
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
        uint64_t reason, detail;
        CHECK(wait_child(e, &reason, &detail));
    }
    return true;
}

bool test_generations() {
    Endpoint e1 = user::spawn("ipc_echo");
    CHECK(e1 > 0);
    Message k{};
    k.u64[0] = static_cast<uint64_t>(e1);
    CHECK_EQ(user::kernel_call(kSysKill, &k), kOk);
    uint64_t reason, detail;
    CHECK(wait_child(e1, &reason, &detail));
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
    k.u64[0] = static_cast<uint64_t>(e2);
    CHECK_EQ(user::kernel_call(kSysKill, &k), kOk);
    CHECK(wait_child(e2, &reason, &detail));
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
    Message k{};
    k.u64[0] = static_cast<uint64_t>(holder);
    CHECK_EQ(user::kernel_call(kSysKill, &k), kOk);
    CHECK_EQ(user::receive(g_echo, &m), kOk);
    CHECK_EQ(m.m_type, proto::kForward);
    CHECK_EQ(m.i64[0], kEDeadSrcDst);
    uint64_t reason, detail;
    CHECK(wait_child(holder, &reason, &detail));
    return true;
}

bool test_round_robin() {
    // Two spinning processes at our priority: both make progress (quantum preemption),
    // and we still get to run when our alarm fires.
    Endpoint spinner[2];
    int64_t grant[2];
    for (int i = 0; i < 2; ++i) {
        spinner[i] = user::spawn("ipc_echo");
        CHECK(spinner[i] > 0);
        Message m = request(proto::kSpin);
        CHECK_EQ(user::sendrec(spinner[i], &m), kOk);
        CHECK(m.i64[0] >= 0);
        grant[i] = m.i64[0];
    }
    user::sleep_ns(300000000);
    for (int i = 0; i < 2; ++i) {
        uint64_t count = 0;
        Message k{};
        k.u64[0] = static_cast<uint64_t>(spinner[i]);
        k.u64[1] = static_cast<uint64_t>(grant[i]);
        k.u64[2] = 0;
        k.u64[3] = reinterpret_cast<uintptr_t>(&count);
        k.u64[4] = sizeof count;
        CHECK_EQ(user::kernel_call(kSysSafeCopyFrom, &k), kOk);
        print("    spinner %d counted to %lu\n", i, count);
        CHECK(count > 1000);
        k = Message{};
        k.u64[0] = static_cast<uint64_t>(spinner[i]);
        CHECK_EQ(user::kernel_call(kSysKill, &k), kOk);
        uint64_t reason, detail;
        CHECK(wait_child(spinner[i], &reason, &detail));
    }
    return true;
}

// ---- grants -------------------------------------------------------------------------

uint8_t g_granted[8192];

bool test_grants() {
    for (size_t i = 0; i < sizeof g_granted; ++i) g_granted[i] = static_cast<uint8_t>(i);
    Message k{};
    k.u64[0] = static_cast<uint64_t>(g_echo);
    k.u64[1] = reinterpret_cast<uintptr_t>(g_granted);
    k.u64[2] = 1000;
    k.u64[3] = kGrantRead;
    CHECK_EQ(user::kernel_call(kSysGrantCreate, &k), kOk);
    int64_t read_grant = static_cast<int64_t>(k.u64[0]);

    uint64_t want = 0;
    for (int i = 100; i < 300; ++i) want += static_cast<uint8_t>(i);
    Message m = request(proto::kSafeRead, read_grant, 100, 200);
    CHECK_EQ(user::sendrec(g_echo, &m), kOk);
    CHECK_EQ(m.i64[0], kOk);
    CHECK_EQ(m.i64[1], static_cast<int64_t>(want));
    m = request(proto::kSafeRead, read_grant, 900, 200);  // past the end
    CHECK_EQ(user::sendrec(g_echo, &m), kOk);
    CHECK_EQ(m.i64[0], kEInval);
    m = request(proto::kSafeWrite, read_grant, 0, 10, 0xaa);  // no write right
    CHECK_EQ(user::sendrec(g_echo, &m), kOk);
    CHECK_EQ(m.i64[0], kEPerm);
    CHECK_EQ(g_granted[0], 0);

    // A write grant spanning a page boundary.
    k = Message{};
    k.u64[0] = static_cast<uint64_t>(g_echo);
    k.u64[1] = reinterpret_cast<uintptr_t>(g_granted) + 4000;
    k.u64[2] = 200;
    k.u64[3] = kGrantWrite;
    CHECK_EQ(user::kernel_call(kSysGrantCreate, &k), kOk);
    int64_t write_grant = static_cast<int64_t>(k.u64[0]);
    m = request(proto::kSafeWrite, write_grant, 0, 200, 0x5a);
    CHECK_EQ(user::sendrec(g_echo, &m), kOk);
    CHECK_EQ(m.i64[0], kOk);
    CHECK_EQ(g_granted[4000], 0x5a);
    CHECK_EQ(g_granted[4199], 0x5a);
    CHECK_EQ(g_granted[4200], static_cast<uint8_t>(4200));

    // Revocation.
    k = Message{};
    k.u64[0] = static_cast<uint64_t>(read_grant);
    CHECK_EQ(user::kernel_call(kSysGrantRevoke, &k), kOk);
    m = request(proto::kSafeRead, read_grant, 0, 10);
    CHECK_EQ(user::sendrec(g_echo, &m), kOk);
    CHECK_EQ(m.i64[0], kEInval);

    // A grant for someone else is no use to echo; a range we do not own cannot be granted.
    k = Message{};
    k.u64[0] = static_cast<uint64_t>(kSystem);
    k.u64[1] = reinterpret_cast<uintptr_t>(g_granted);
    k.u64[2] = 10;
    k.u64[3] = kGrantRead;
    CHECK_EQ(user::kernel_call(kSysGrantCreate, &k), kOk);
    m = request(proto::kSafeRead, static_cast<int64_t>(k.u64[0]), 0, 10);
    CHECK_EQ(user::sendrec(g_echo, &m), kOk);
    CHECK_EQ(m.i64[0], kEPerm);
    k = Message{};
    k.u64[0] = static_cast<uint64_t>(g_echo);
    k.u64[1] = 0x100000;
    k.u64[2] = 10;
    k.u64[3] = kGrantRead;
    CHECK_EQ(user::kernel_call(kSysGrantCreate, &k), kEFault);
    return true;
}

bool test_anonymous_memory() {
    Message m{};
    m.u64[0] = 0, m.u64[1] = 3 * 4096 - 100, m.u64[2] = kMapWritable;
    CHECK_EQ(user::kernel_call(kSysMapAnon, &m), kOk);
    auto* p = reinterpret_cast<volatile uint64_t*>(m.u64[0]);
    CHECK(m.u64[0] >= kHeapBase && m.u64[0] < kHeapTop);
    CHECK_EQ(p[0], 0);
    CHECK_EQ(p[3 * 512 - 1], 0);  // zeroed, and the length was rounded up to pages
    p[700] = 0x1234;
    CHECK_EQ(p[700], 0x1234);
    uint64_t first = m.u64[0];

    // At a fixed address; again at the same address is EBUSY; kernel memory is EINVAL.
    m = Message{};
    m.u64[0] = 0x65000000, m.u64[1] = 4096, m.u64[2] = kMapWritable | kMapExecutable;
    CHECK_EQ(user::kernel_call(kSysMapAnon, &m), kOk);
    CHECK_EQ(m.u64[0], 0x65000000);
    *reinterpret_cast<volatile uint8_t*>(0x65000000) = 0xc3;  // ret: executable memory
    reinterpret_cast<void (*)()>(0x65000000)();
    m = Message{};
    m.u64[0] = 0x65000000, m.u64[1] = 4096, m.u64[2] = kMapWritable;
    CHECK_EQ(user::kernel_call(kSysMapAnon, &m), kEBusy);
    m = Message{};
    m.u64[0] = 0x100000, m.u64[1] = 4096, m.u64[2] = kMapWritable;
    CHECK_EQ(user::kernel_call(kSysMapAnon, &m), kEInval);

    // Unmapped memory is gone: it cannot even be granted.
    m = Message{};
    m.u64[0] = first, m.u64[1] = 3 * 4096;
    CHECK_EQ(user::kernel_call(kSysUnmap, &m), kOk);
    m = Message{};
    m.u64[0] = static_cast<uint64_t>(g_echo), m.u64[1] = first, m.u64[2] = 8;
    m.u64[3] = kGrantRead;
    CHECK_EQ(user::kernel_call(kSysGrantCreate, &m), kEFault);
    m = Message{};
    m.u64[0] = kUserImageBase, m.u64[1] = 4096;  // our own text is not the heap
    CHECK_EQ(user::kernel_call(kSysUnmap, &m), kEInval);
    return true;
}

// ---- clock and VMM -------------------------------------------------------------------

bool test_alarm() {
    uint64_t t0 = user::uptime_ns();
    user::sleep_ns(20000000);
    uint64_t t1 = user::uptime_ns();
    CHECK(t1 - t0 >= 20000000);
    CHECK(t1 - t0 < 2000000000);
    return true;
}

bool test_vmm_endpoint() {
    Message m{};
    m.m_type = ukvm::hc::kTime;
    CHECK_EQ(user::sendrec(kVmm, &m), kOk);
    CHECK_EQ(m.m_source, kVmm);
    CHECK_EQ(m.m_type, ukvm::hc::kOk);
    CHECK(m.u64[1] > 0);  // monotonic_ns
    m = Message{};
    m.m_type = ukvm::hc::kConsoleWrite;
    m.u64[0] = 0x100000;  // kernel memory is not ours to print
    m.u64[1] = 16;
    CHECK_EQ(user::sendrec(kVmm, &m), kOk);
    CHECK_EQ(m.m_type, ukvm::hc::kEFault);
    m = Message{};
    m.m_type = 999;
    CHECK_EQ(user::sendrec(kVmm, &m), kOk);
    CHECK_EQ(m.m_type, ukvm::hc::kENoSys);
    return true;
}

int32_t devio(uint16_t port, bool write, uint8_t value, uint64_t* in = nullptr) {
    Message m{};
    m.u64[0] = port, m.u64[1] = 1, m.u64[2] = write, m.u64[3] = value;
    int32_t r = user::kernel_call(kSysDevIo, &m);
    if (in) *in = m.u64[0];
    return r;
}

bool test_irq_notification() {
    // COM1's "transmitter empty" interrupt fires as soon as it is enabled: IRQ 4 must
    // reach us as a notification from HARDWARE carrying bit 4.
    constexpr uint16_t kCom1 = 0x3f8;
    Message m{};
    m.u64[0] = 4, m.u64[1] = 1;
    CHECK_EQ(user::kernel_call(kSysIrqCtl, &m), kOk);
    m = Message{};
    m.u64[0] = 5, m.u64[1] = 1;
    CHECK_EQ(user::kernel_call(kSysIrqCtl, &m), kEPerm);  // not in our IRQ mask
    CHECK_EQ(devio(0x60, false, 0), kEPerm);              // nor is this port
    uint64_t lsr = 0;
    CHECK_EQ(devio(kCom1 + 5, false, 0, &lsr), kOk);
    CHECK(lsr & 0x20);                            // transmitter holding register empty
    CHECK_EQ(devio(kCom1 + 1, true, 0x02), kOk);  // IER: THRE interrupt on
    Message n{};
    CHECK_EQ(user::receive(kHardware, &n), kOk);
    CHECK_EQ(devio(kCom1 + 1, true, 0x00), kOk);  // and off again
    CHECK_EQ(n.m_type, kNotifyMessage);
    CHECK_EQ(n.m_source, kHardware);
    CHECK(n.notify.bits & (1u << 4));
    m = Message{};
    m.u64[0] = 4, m.u64[1] = 0;
    CHECK_EQ(user::kernel_call(kSysIrqCtl, &m), kOk);
    return true;
}

bool test_map_device_memory() {
    // The IOAPIC's registers through kSysMapPhys: select the version register, read it.
    Message m{};
    m.u64[0] = 0xfec00000, m.u64[1] = 0x20;
    CHECK_EQ(user::kernel_call(kSysMapPhys, &m), kOk);
    auto* ioapic = reinterpret_cast<volatile uint32_t*>(m.u64[0]);
    CHECK(m.u64[0] >= kDeviceMapBase && m.u64[0] < kDeviceMapTop);
    ioapic[0] = 1;                          // IOREGSEL = version
    uint32_t version = ioapic[4];           // IOWIN
    CHECK((version & 0xff) >= 0x11);        // an 82093AA-compatible IOAPIC
    CHECK(((version >> 16) & 0xff) >= 23);  // at least 24 redirection entries
    m = Message{};
    m.u64[0] = 0x100000, m.u64[1] = 0x1000;  // kernel RAM: not in our privileges
    CHECK_EQ(user::kernel_call(kSysMapPhys, &m), kEPerm);
    m = Message{};
    m.u64[0] = 0xfec00800, m.u64[1] = 0x1000;  // runs past the allowed page
    CHECK_EQ(user::kernel_call(kSysMapPhys, &m), kEPerm);
    return true;
}

// ---- measurements -----------------------------------------------------------------

void measure() {
    constexpr int kRounds = 200;
    Message m{};
    uint64_t t0 = user::uptime_ns();
    for (int i = 0; i < kRounds; ++i) user::ipc(0, kNone, &m);  // EBADCALL: a null call
    uint64_t t1 = user::uptime_ns();
    for (int i = 0; i < kRounds; ++i) {
        m = request(proto::kEchoPlain);
        user::sendrec(g_echo, &m);
    }
    uint64_t t2 = user::uptime_ns();
    for (int i = 0; i < kRounds; ++i) {
        m = request(proto::kEcho);
        user::sendrec(g_echo, &m);
    }
    uint64_t t2b = user::uptime_ns();
    for (int i = 0; i < kRounds; ++i) {
        m = Message{};
        user::kernel_call(kSysGetInfo, &m);
    }
    uint64_t t3 = user::uptime_ns();
    constexpr int kLoop = 1 << 20;
    uint64_t c0 = user::rdtsc();
    for (int i = 0; i < kLoop; ++i) asm volatile("" : : "r"(i));
    uint64_t c1 = user::rdtsc();
    print(
        "measure: null syscall %lu ns, kernel call (SENDREC to SYSTEM) %lu ns, SENDREC round "
        "trip to a server %lu ns (server replies with SEND+RECEIVE) / %lu ns (with REPLYRECV) "
        "(%d rounds); user loop %lu TSC ticks per 1M iterations\n",
        (t1 - t0) / kRounds, (t3 - t2b) / kRounds, (t2 - t1) / kRounds, (t2b - t2) / kRounds,
        kRounds, c1 - c0);
    // The same figures as one parsable line for bench/ (key=value, nanoseconds, means over
    // kRounds): sendrec_ns is the round trip to a server replying with SEND+RECEIVE.
    print(
        "bench: sendrec_ns=%lu null_syscall_ns=%lu replyrecv_ns=%lu kernel_call_ns=%lu rounds=%d\n",
        (t2 - t1) / kRounds, (t1 - t0) / kRounds, (t2b - t2) / kRounds, (t3 - t2b) / kRounds,
        kRounds);
}

}  // namespace

int main(const char*) {
    print("ipc_test: starting (endpoint %d)\n", user::self());
    g_echo = user::find("ipc_echo");
    if (g_echo == kNone) {
        print("ipc_test: no ipc_echo module\n0 passed, 1 failed\n");
        user::halt(1);
    }
    run("user privileges", test_user_privileges);
    run("fault: invalid opcode", test_fault_invalid_opcode);
    run("fault: read kernel memory", test_fault_read_kernel);
    run("fault: privileged instruction", test_fault_privileged);
    run("fault: divide error", test_fault_divide);
    run("fault: write to text", test_fault_write_text);
    run("fault: unmapped address", test_fault_unmapped);
    run("fault: execute the stack (NX)", test_fault_execute_stack);
    run("FPU/SSE state is per process", test_fpu_state_is_per_process);
    run("bad calls", test_bad_calls);
    run("sendrec echo", test_sendrec_echo);
    run("send then receive", test_send_then_receive);
    run("notify coalesces, sendrec waits for the reply", test_notify_coalesces_and_waits_for_reply);
    run("deadlock (ELOCKED) and SENDNB (ENOTREADY)", test_deadlock_and_notready);
    run("FIFO senders and selective receive", test_fifo_and_selective_receive);
    run("SENDNB to a receiver", test_sendnb_to_a_receiver);
    run("REPLYRECV", test_reply_recv);
    run("notification before a queued message", test_notification_before_queued_message);
    run("a queued sender dies", test_queued_sender_dies);
    run("endpoint generations", test_generations);
    run("partner dies while blocked", test_partner_dies_while_blocked);
    run("grants", test_grants);
    run("anonymous memory", test_anonymous_memory);
    run("round robin between spinning processes", test_round_robin);
    run("alarm", test_alarm);
    run("vmm endpoint", test_vmm_endpoint);
    run("IRQ as a notification (COM1)", test_irq_notification);
    run("device memory mapping (IOAPIC)", test_map_device_memory);
    measure();
    if (g_skipped) print("(%d skipped)\n", g_skipped);
    print("%d passed, %d failed\n", g_passed, g_failed);
    user::halt(g_failed < 255 ? g_failed : 255);  // exits with M
}
