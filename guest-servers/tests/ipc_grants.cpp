// ipc_grants: grants and their rights (read, write, range, revocation, grantee) and anonymous
// memory. One area of the in-guest test suite (harness.hpp), started by ipc_test; prints "N passed,
// M failed" and exits with M.
#include "harness.hpp"

using namespace ukvm::kernel;
using t::g_echo;
using t::request;

namespace {

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

}  // namespace

int main(const char*) {
    t::begin("ipc_grants");
    t::run("grants", test_grants);
    t::run("anonymous memory", test_anonymous_memory);
    return t::finish();
}
