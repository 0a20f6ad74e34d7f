// A user program that asks its parent which fault to commit, then commits it.
#include "protocol.hpp"
#include "user.hpp"

using namespace ukvm::kernel;

int main(const char*) {
    Message m{};
    m.m_type = proto::kAsk;
    if (user::sendrec(user::parent(), &m) != kOk) return 1;
    switch (m.i64[0]) {
        case proto::kInvalidOpcode:
            asm volatile("ud2");
            break;
        case proto::kReadKernel: {
            // The kernel image at 1 MiB is mapped supervisor-only.
            volatile uint64_t v = *reinterpret_cast<volatile uint64_t*>(0x100000);
            (void)v;
            break;
        }
        case proto::kPrivileged:
            asm volatile("cli");
            break;
        case proto::kDivide:
            asm volatile("xor %%ecx, %%ecx; div %%ecx" : : : "eax", "ecx", "edx");
            break;
        case proto::kWriteText:
            *reinterpret_cast<volatile uint8_t*>(&main) = 0xc3;
            break;
        case proto::kUnmapped:
            *reinterpret_cast<volatile uint64_t*>(0x50000000) = 1;
            break;
        case proto::kExecuteStack: {
            volatile uint8_t code[16] = {0xc3};  // ret, on the (no-execute) stack
            reinterpret_cast<void (*)()>(const_cast<uint8_t*>(code))();
            break;
        }
        case proto::kExitNormally:
            return 7;
    }
    return 99;  // the fault did not happen
}
