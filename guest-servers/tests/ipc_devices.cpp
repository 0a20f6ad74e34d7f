// ipc_devices: devices and the VMM: the VMM endpoint, an IRQ as a notification (COM1), device
// memory (IOAPIC), port privileges. One area of the in-guest test suite (harness.hpp), started by
// ipc_test; prints "N passed, M failed" and exits with M.
#include "harness.hpp"

using namespace ukvm::kernel;
using user::print;

namespace {

int32_t devio(uint16_t port, bool write, uint8_t value, uint64_t* in = nullptr) {
    Message m{};
    m.u64[0] = port, m.u64[1] = 1, m.u64[2] = write, m.u64[3] = value;
    int32_t r = user::kernel_call(kSysDevIo, &m);
    if (in) *in = m.u64[0];
    return r;
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

// The physical ranges behind len bytes at va, through a grant to ourselves.
int32_t umap(uint64_t va, uint64_t len, uint64_t grant_rights, uint64_t rights, PhysRange* out,
             int max) {
    Message g{};
    g.u64[0] = static_cast<uint64_t>(user::self()), g.u64[1] = va, g.u64[2] = len;
    g.u64[3] = grant_rights;
    if (int32_t r = user::kernel_call(kSysGrantCreate, &g); r != kOk) return r;
    auto id = g.u64[0];
    Message m{};
    m.u64[0] = static_cast<uint64_t>(user::self()), m.u64[1] = id, m.u64[2] = 0;
    m.u64[3] = len, m.u64[4] = rights, m.u64[5] = reinterpret_cast<uint64_t>(out);
    m.u64[6] = static_cast<uint64_t>(max);
    int32_t r = user::kernel_call(kSysUmapGrant, &m);
    g = Message{};
    g.u64[0] = id;
    user::kernel_call(kSysGrantRevoke, &g);
    return r;
}

bool test_dma_memory() {
    // kSysPrivCtl stays the PCI server's alone.
    Message m{};
    m.u64[0] = static_cast<uint64_t>(user::self()), m.u64[1] = kPrivIrq, m.u64[2] = 5;
    CHECK_EQ(user::kernel_call(kSysPrivCtl, &m), kECallDenied);
    // Two contiguous pages; the grant translation agrees with the address we were given.
    m = Message{};
    m.u64[1] = 8192, m.u64[2] = kMapWritable | kMapContiguous;
    CHECK_EQ(user::kernel_call(kSysMapAnon, &m), kOk);
    uint64_t va = m.u64[0], pa = m.u64[1];
    CHECK(pa != 0 && pa % 4096 == 0);
    static PhysRange r[4];
    CHECK_EQ(umap(va, 8192, kGrantRead | kGrantWrite, kGrantWrite, r, 4), 1);  // merged
    CHECK_EQ(r[0].addr, pa);
    CHECK_EQ(r[0].len, 8192u);
    CHECK_EQ(umap(va + 100, 200, kGrantRead, kGrantRead, r, 4), 1);
    CHECK_EQ(r[0].addr, pa + 100);
    CHECK_EQ(umap(va, 8192, kGrantRead, kGrantWrite, r, 4), kEPerm);  // more than granted
    // Freed DMA frames are quarantined: a page mapped right after is another frame.
    m = Message{};
    m.u64[0] = va, m.u64[1] = 8192;
    CHECK_EQ(user::kernel_call(kSysUnmap, &m), kOk);
    m = Message{};
    m.u64[1] = 4096, m.u64[2] = kMapWritable;
    CHECK_EQ(user::kernel_call(kSysMapAnon, &m), kOk);
    CHECK_EQ(umap(m.u64[0], 4096, kGrantRead, kGrantRead, r, 4), 1);
    CHECK(r[0].addr < pa || r[0].addr >= pa + 8192);
    return true;
}

}  // namespace

int main(const char*) {
    t::begin("ipc_devices");
    t::run("vmm endpoint", test_vmm_endpoint);
    t::run("IRQ as a notification (COM1)", test_irq_notification);
    t::run("device memory mapping (IOAPIC)", test_map_device_memory);
    t::run("DMA memory, grant translation, quarantine", test_dma_memory);
    return t::finish();
}
