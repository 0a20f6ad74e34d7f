#include "bdev.hpp"

#include "sys.hpp"

using namespace ukvm::kernel;

namespace bdev {

namespace {

void pause_ns(uint64_t ns) {
    Message a{};
    a.u64[0] = ns;
    if (user::kernel_call(kSysSetAlarm, &a) == kOk) {
        Message n{};
        user::receive(kClock, &n);
    } else {
        sys::sleep_ns(ns);
    }
}

}  // namespace

Client::Client(const char* name) {
    strncpy(name_, name, sizeof name_ - 1);
}

void Client::attach(void* base, uint64_t len) {
    if (region_grant_ >= 0) {
        Message g{};
        g.u64[0] = static_cast<uint64_t>(region_grant_);
        user::kernel_call(kSysGrantRevoke, &g);
    }
    region_ = reinterpret_cast<uint64_t>(base), region_len_ = len;
    region_grant_ = -1, region_for_ = kNone;
}

int32_t Client::request(Message* m, const void* buf, uint64_t len, uint64_t rights) {
    const Message original = *m;
    Endpoint dead = kNone;
    for (int attempt = 0; attempt < 1000; ++attempt) {
        if (driver_ == kNone) {
            Endpoint e = sys::ds_lookup(name_);
            if (e == kNone || e == dead) {  // RS has not started the new driver yet
                pause_ns(10000000);
                continue;
            }
            driver_ = e;
        }
        *m = original;
        int32_t grant = -1;
        auto addr = reinterpret_cast<uint64_t>(buf);
        bool in_region = buf && len && addr >= region_ && len <= region_len_ &&
                         addr - region_ <= region_len_ - len;
        if (in_region && region_for_ != driver_) {
            Message g{};
            if (region_grant_ >= 0) {
                g.u64[0] = static_cast<uint64_t>(region_grant_);
                user::kernel_call(kSysGrantRevoke, &g);
                region_grant_ = -1;
            }
            g = Message{};
            g.u64[0] = static_cast<uint64_t>(driver_), g.u64[1] = region_, g.u64[2] = region_len_;
            g.u64[3] = kGrantRead | kGrantWrite;
            if (user::kernel_call(kSysGrantCreate, &g) == kOk) {
                region_grant_ = static_cast<int32_t>(g.u64[0]);
                region_for_ = driver_;
            }
        }
        if (in_region && region_for_ == driver_) {
            m->u64[2] = static_cast<uint64_t>(region_grant_);
            m->u64[3] = addr - region_;
        } else if (buf && len) {
            Message g{};
            g.u64[0] = static_cast<uint64_t>(driver_), g.u64[1] = reinterpret_cast<uint64_t>(buf);
            g.u64[2] = len, g.u64[3] = rights;
            if (int32_t r = user::kernel_call(kSysGrantCreate, &g); r != kOk) return r;
            grant = static_cast<int32_t>(g.u64[0]);
            m->u64[2] = static_cast<uint64_t>(grant);
        }
        int32_t r = user::sendrec(driver_, m);
        if (grant >= 0) {
            Message g{};
            g.u64[0] = static_cast<uint64_t>(grant);
            user::kernel_call(kSysGrantRevoke, &g);
        }
        if (r == kEDeadSrcDst || r == kEBadSrcDst) {
            dead = driver_;
            driver_ = kNone;
            ++retries_;
            continue;
        }
        return r != kOk ? r : m->m_type;
    }
    return kEDeadSrcDst;
}

int32_t Client::open(uint64_t* size, uint64_t* flags) {
    Message m{};
    m.m_type = proto::kBdevOpen;
    int32_t r = request(&m, nullptr, 0, 0);
    if (r >= 0) *size = m.u64[0], *flags = m.u64[1];
    return r;
}

int32_t Client::read(uint64_t offset, void* buf, uint64_t len) {
    Message m{};
    m.m_type = proto::kBdevRead;
    m.u64[0] = offset, m.u64[1] = len;
    return request(&m, buf, len, kGrantWrite);
}

int32_t Client::write(uint64_t offset, const void* buf, uint64_t len) {
    Message m{};
    m.m_type = proto::kBdevWrite;
    m.u64[0] = offset, m.u64[1] = len;
    return request(&m, buf, len, kGrantRead);
}

int32_t Client::flush() {
    Message m{};
    m.m_type = proto::kBdevFlush;
    return request(&m, nullptr, 0, 0);
}

int32_t Client::get_id(char* out) {
    Message m{};
    m.m_type = proto::kBdevGetId;
    int32_t r = request(&m, nullptr, 0, 0);
    int32_t n = r < 0 ? 0 : r > 20 ? 20 : r;
    memcpy(out, m.bytes + 8, static_cast<size_t>(n));
    out[n] = '\0';
    return r;
}

}  // namespace bdev
