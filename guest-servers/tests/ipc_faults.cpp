// ipc_faults: faults: each CPU exception in ring 3 kills only the process and is reported to its
// parent; FPU/SSE state per process. One area of the in-guest test suite (harness.hpp), started by
// ipc_test; prints "N passed, M failed" and exits with M.
#include "harness.hpp"

using namespace ukvm::kernel;
using t::g_echo;
using t::request;
using t::wait_child;

namespace {

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
    return fault_case(user::spawn("fault"), proto::kInvalidOpcode, 6);
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

}  // namespace

int main(const char*) {
    t::begin("ipc_faults");
    t::run("fault: invalid opcode", test_fault_invalid_opcode);
    t::run("fault: read kernel memory", test_fault_read_kernel);
    t::run("fault: privileged instruction", test_fault_privileged);
    t::run("fault: divide error", test_fault_divide);
    t::run("fault: write to text", test_fault_write_text);
    t::run("fault: unmapped address", test_fault_unmapped);
    t::run("fault: execute the stack (NX)", test_fault_execute_stack);
    t::run("FPU/SSE state is per process", test_fpu_state_is_per_process);
    return t::finish();
}
