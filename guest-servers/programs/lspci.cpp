// lspci: the PCI server's view of bus 0, one line per function: slot.function,
// vendor:device, class, IOAPIC input, the owning driver, and the memory BARs.
#include "sys.hpp"

using namespace ukvm::kernel;
using user::print;

namespace {

int32_t pci(Message* m) {
    return sys::call("pci", m);
}

}  // namespace

int main(const char*) {
    for (uint64_t n = 0;; ++n) {
        Message m{};
        m.m_type = proto::kPciList;
        m.u64[0] = n;
        int32_t r = pci(&m);
        if (r == proto::kENoDev) return 0;
        if (r != kOk) {
            print("lspci: the PCI server answers %d\n", r);
            return 1;
        }
        uint64_t handle = m.u64[0], ids = m.u64[1], class_rev = m.u64[2], irq = m.u64[3];
        auto owner = static_cast<Endpoint>(m.i64[4]);
        char name[kNameMax] = "-";
        sys::ProcEntry e;
        for (int32_t slot = 0; owner != kNone && sys::next_proc(&slot, &e);)
            if (e.info.endpoint == owner) memcpy(name, e.info.name, kNameMax);
        char line[160];
        auto clamp = [&](size_t n) { return n < sizeof line ? n : sizeof line - 1; };
        size_t at = clamp(user::format(
            line, sizeof line, "%02lx.%lu %04lx:%04lx class %06lx irq %s", handle >> 3, handle & 7,
            ids >> 16, ids & 0xffff, class_rev >> 8, irq == proto::kPciNoIrq ? "-" : ""));
        if (irq != proto::kPciNoIrq)
            at = clamp(at + user::format(line + at, sizeof line - at, "%lu", irq));
        at = clamp(at + user::format(line + at, sizeof line - at, " driver %s", name));
        for (uint64_t bar = 0; bar < 6; ++bar) {
            Message b{};
            b.m_type = proto::kPciBar;
            b.u64[0] = handle, b.u64[1] = bar;
            if (pci(&b) != kOk || !b.u64[1] || (b.u64[2] & proto::kPciBarIo)) continue;
            at = clamp(at + user::format(line + at, sizeof line - at, " bar%lu %lx+%lx", bar,
                                         b.u64[0], b.u64[1]));
        }
        print("%s\n", line);
    }
}
