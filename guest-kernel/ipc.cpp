#include "ipc.hpp"

#include "clock.hpp"
#include "lib.hpp"
#include "sched.hpp"
#include "task.hpp"

namespace kernel::ipc {

using namespace ukvm::kernel;

namespace {

constexpr size_t kMsgSize = sizeof(Message);

bool will_receive(const Proc* dst, Endpoint src) {
    return (dst->blocked & (kReceiving | kSending)) == kReceiving &&
           (dst->get_from == kAny || dst->get_from == src);
}

void unblock(Proc* p, uint32_t flag) {
    p->blocked &= ~flag;
    if (flag == kReceiving) p->reply_pending = false;
    if (p->runnable()) sched::ready(p);
}

void block(Proc* p, uint32_t flag) {
    if (p->runnable()) sched::unready(p);
    p->blocked |= flag;
}

// Copies a queued sender's message into the receiver's buffer, stamping m_source.
bool transfer(Proc* src, UserAddr from, Proc* dst, UserAddr to) {
    Message m;
    if (!src->as.copy_in(&m, from, kMsgSize)) return false;
    m.m_source = src->endpoint;
    return dst->as.copy_out(to, &m, kMsgSize);
}

Proc* blocked_on(const Proc* p, Endpoint* e) {
    if (p->blocked & kSending)
        *e = p->send_to;
    else if (p->blocked & kReceiving)
        *e = p->get_from;
    else
        return nullptr;
    return proc::lookup(*e);
}

// Would blocking caller (in SEND if sending, else RECEIVE) on target close a cycle of
// processes each blocked on the next?
bool deadlock(const Proc* caller, bool sending, Endpoint target) {
    int group = 1;
    Proc* xp = proc::lookup(target);
    while (xp && !xp->is_task()) {
        ++group;
        Endpoint next;
        Proc* on = blocked_on(xp, &next);
        if (!on) return false;
        if (next == caller->endpoint) {
            // Two processes facing each other in opposite directions can still meet.
            if (group == 2 && ((xp->blocked & kSending) != 0) != sending) return false;
            return true;
        }
        xp = on;
    }
    return false;
}

Message build_notification(Proc* source, Proc* dst) {
    Message m{};
    m.m_source = source->endpoint;
    m.m_type = kNotifyMessage;
    m.notify.timestamp_ns = clock::uptime_ns();
    m.notify.bits = task::notify_bits(source, dst);
    return m;
}

int32_t send(Proc* caller, Proc* dst, UserAddr msg, bool nonblocking) {
    if (will_receive(dst, caller->endpoint)) {
        if (!transfer(caller, msg, dst, dst->msg)) return kEFault;
        unblock(dst, kReceiving);
        return kOk;
    }
    if (nonblocking) return kENotReady;
    if (deadlock(caller, true, dst->endpoint)) return kELocked;
    caller->send_to = dst->endpoint;
    caller->msg = msg;
    caller->next_caller = nullptr;
    Proc** tail = &dst->callers;
    while (*tail) tail = &(*tail)->next_caller;
    *tail = caller;
    block(caller, kSending);
    return kOk;
}

int32_t receive(Proc* caller, Endpoint src, UserAddr msg) {
    if (!(caller->blocked & kSending)) {
        // Pending notifications first, unless a SENDREC is waiting for its reply.
        uint64_t want = ~0ull;
        if (src != kAny) want = 1ull << (endpoint_slot(src) + kNrTasks);
        if (!caller->reply_pending && (caller->notify_pending & want)) {
            int i = __builtin_ctzll(caller->notify_pending & want);
            Message m = build_notification(&proc::table[i], caller);
            if (!caller->as.copy_out(msg, &m, kMsgSize)) return kEFault;
            caller->notify_pending &= ~(1ull << i);
            return kOk;
        }
        for (Proc** pp = &caller->callers; *pp; pp = &(*pp)->next_caller) {
            Proc* sender = *pp;
            if (src != kAny && sender->endpoint != src) continue;
            if (!transfer(sender, sender->msg, caller, msg)) return kEFault;
            *pp = sender->next_caller;
            sender->next_caller = nullptr;
            unblock(sender, kSending);
            return kOk;
        }
    }
    if (src != kAny && deadlock(caller, false, src)) return kELocked;
    caller->get_from = src;
    caller->msg = msg;
    block(caller, kReceiving);
    return kOk;
}

}  // namespace

void notify(Proc* source, Proc* dst) {
    if (will_receive(dst, source->endpoint) && !dst->reply_pending) {
        Message m = build_notification(source, dst);
        if (dst->as.copy_out(dst->msg, &m, kMsgSize)) {
            unblock(dst, kReceiving);
            return;
        }
    }
    dst->notify_pending |= 1ull << source->index();
}

bool deliver_reply(Proc* dst, UserAddr where, Message& m) {
    return dst->as.copy_out(where, &m, kMsgSize);
}

int32_t do_ipc(Proc* caller, int32_t op, Endpoint e, UserAddr msg, Endpoint src) {
    if (op <= 0 || op >= kNrIpcOps) return kEBadCall;
    if (!((caller->priv.trap_mask >> op) & 1)) return kETrapDenied;

    if (op == kReplyRecv) {
        int32_t r = do_ipc(caller, kSendNb, e, msg);
        return r != kOk ? r : do_ipc(caller, kReceive, src, msg);
    }

    if (op == kReceive) {
        if (e != kAny && !proc::is_valid_endpoint(e)) return kEBadSrcDst;
        if (e != kAny && !proc::lookup(e)) return kEDeadSrcDst;
        if (!caller->as.check(msg, kMsgSize, AddressSpace::kWrite)) return kEFault;
        return receive(caller, e, msg);
    }

    if (!proc::is_valid_endpoint(e)) return kEBadSrcDst;
    Proc* dst = proc::lookup(e);
    if (!dst) return kEDeadSrcDst;
    if (!((caller->priv.send_mask >> dst->index()) & 1)) return kECallDenied;
    if (dst == caller) return kELocked;  // a process cannot rendezvous with itself
    if (op == kNotify) {
        if (dst->is_task()) return kEBadRequest;
        notify(caller, dst);
        return kOk;
    }

    auto access = op == kSendRec ? AddressSpace::kWrite : AddressSpace::kRead;
    if (!caller->as.check(msg, kMsgSize, access)) return kEFault;
    if (dst->is_task()) return op == kSendRec ? task::call(caller, dst, msg) : kEBadRequest;

    if (op != kSendRec) return send(caller, dst, msg, op == kSendNb);
    caller->reply_pending = true;
    int32_t r = send(caller, dst, msg, false);
    if (r == kOk) r = receive(caller, e, msg);
    if (r != kOk) caller->reply_pending = false;
    return r;
}

void interrupt(Proc* p) {
    if (p->blocked & kSending) {
        if (Proc* dst = proc::lookup(p->send_to))
            for (Proc** pp = &dst->callers; *pp; pp = &(*pp)->next_caller)
                if (*pp == p) {
                    *pp = p->next_caller;
                    break;
                }
        p->next_caller = nullptr;
    }
    p->blocked &= ~(kSending | kReceiving);
    p->reply_pending = false;
    if (p->runnable()) sched::ready(p);
}

void cleanup(Proc* dead) {
    // Senders queued on the dead process, and anyone waiting for it specifically.
    for (Proc* s = dead->callers; s;) {
        Proc* next = s->next_caller;
        s->next_caller = nullptr;
        s->regs.rax = static_cast<uint64_t>(static_cast<int64_t>(kEDeadSrcDst));
        s->blocked &= ~kReceiving;  // a SENDREC caller waits for no reply either
        s->reply_pending = false;
        unblock(s, kSending);
        s = next;
    }
    dead->callers = nullptr;
    for (Proc& p : proc::table) {
        if (&p == dead || (p.blocked & kSlotFree)) continue;
        p.notify_pending &= ~(1ull << dead->index());
        if ((p.blocked & (kReceiving | kSending)) == kReceiving && p.get_from == dead->endpoint) {
            p.regs.rax = static_cast<uint64_t>(static_cast<int64_t>(kEDeadSrcDst));
            unblock(&p, kReceiving);
        }
        // The dead process may itself sit in someone's queue.
        for (Proc** pp = &p.callers; *pp; pp = &(*pp)->next_caller) {
            if (*pp == dead) {
                *pp = dead->next_caller;
                break;
            }
        }
    }
    dead->next_caller = nullptr;
}

}  // namespace kernel::ipc
