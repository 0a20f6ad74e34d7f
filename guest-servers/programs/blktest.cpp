// blktest: the block-device path end to end (bdev::Client -> vblk -> virtio-blk -> the
// host's image). Usage: blktest [check|ro|kill] [DRIVER] (default: check vblk0).
//   check  reads the host's pattern, writes sectors the host then checks, FLUSH, GET_ID,
//          the driver's refusals (range, alignment, length)
//   ro     the disk is read-only: writes and FLUSH fail with kERoFs, reads work
//   kill   a forked child kills the driver through PM while the parent keeps writing and
//          reading back; every request must complete with the right data
// The host's pattern: byte i of sector s is pattern(s, i). Prints "N passed, M failed"
// and exits with M.
#include "bdev.hpp"
#include "sys.hpp"
#include "tally.hpp"

using namespace ukvm::kernel;
using tally::check;
using user::print;

namespace {

constexpr uint64_t kSector = proto::kBdevSectorSize;

uint8_t pattern(uint64_t s, uint64_t i) {
    return static_cast<uint8_t>(s * 31 + i * 7 + 1);
}
uint8_t written(uint64_t s, uint64_t i, uint64_t round) {
    return static_cast<uint8_t>(s ^ (i * 3) ^ 0x5a ^ round);
}

uint8_t* g_buf;  // 2 * kBdevMaxTransfer bytes

bool matches(uint64_t first_sector, uint64_t len, uint8_t (*f)(uint64_t, uint64_t)) {
    for (uint64_t i = 0; i < len; ++i)
        if (g_buf[i] != f(first_sector + i / kSector, i % kSector)) {
            print("blktest: sector %lu byte %lu is %u, expected %u\n", first_sector + i / kSector,
                  i % kSector, g_buf[i], f(first_sector + i / kSector, i % kSector));
            return false;
        }
    return true;
}

void test_check(bdev::Client& d, uint64_t size) {
    // The host's pattern: the first 128 sectors in two full-size requests, and the last.
    bool ok = d.read(0, g_buf, proto::kBdevMaxTransfer) == int32_t(proto::kBdevMaxTransfer) &&
              matches(0, proto::kBdevMaxTransfer, pattern);
    uint64_t s2 = proto::kBdevMaxTransfer / kSector;
    ok = ok &&
         d.read(s2 * kSector, g_buf, proto::kBdevMaxTransfer) == int32_t(proto::kBdevMaxTransfer) &&
         matches(s2, proto::kBdevMaxTransfer, pattern);
    uint64_t last = size / kSector - 1;
    ok = ok && d.read(last * kSector, g_buf, kSector) == int32_t(kSector) &&
         matches(last, kSector, pattern);
    check(ok, "reads the host's pattern (64 KiB requests and the last sector)");

    // Sectors 1024..1151 get written(); the host checks them after poweroff.
    auto round0 = [](uint64_t s, uint64_t i) { return written(s, i, 0); };
    for (uint64_t i = 0; i < proto::kBdevMaxTransfer; ++i)
        g_buf[i] = round0(1024 + i / kSector, i % kSector);
    check(
        d.write(1024 * kSector, g_buf, proto::kBdevMaxTransfer) == int32_t(proto::kBdevMaxTransfer),
        "writes 64 KiB at sector 1024");
    memset(g_buf, 0, proto::kBdevMaxTransfer);
    check(d.read(1024 * kSector, g_buf, proto::kBdevMaxTransfer) ==
                  int32_t(proto::kBdevMaxTransfer) &&
              matches(1024, proto::kBdevMaxTransfer, round0),
          "reads them back");
    check(d.flush() == kOk, "FLUSH");
    char id[24];
    int32_t n = d.get_id(id);
    print("blktest: serial \"%s\"\n", id);
    check(n >= 0, "GET_ID");

    // The same through a region the driver keeps one grant for (offsets into it).
    constexpr uint64_t kMax = proto::kBdevMaxTransfer;
    d.attach(g_buf, 2 * kMax);
    memset(g_buf, 0, 2 * kMax);
    bool ok2 = d.read(1024 * kSector, g_buf, kMax) == int32_t(kMax) && matches(1024, kMax, round0);
    uint8_t* second = g_buf + kMax + kSector;
    ok2 = ok2 && d.read(0, second, kSector) == int32_t(kSector);
    for (uint64_t i = 0; i < kSector; ++i) ok2 = ok2 && second[i] == pattern(0, i);
    check(ok2, "reads at offsets into an attached region (one grant)");
    d.attach(nullptr, 0);

    check(d.read(size, g_buf, kSector) == kEInval, "a read at the end: kEInval");
    check(d.read(size - kSector, g_buf, 2 * kSector) == kEInval, "a read across the end: kEInval");
    check(d.read(100, g_buf, kSector) == kEInval, "an unaligned offset: kEInval");
    check(d.read(0, g_buf, 100) == kEInval, "an unaligned length: kEInval");
    check(d.read(0, g_buf, 0) == kEInval, "a zero length: kEInval");
    check(d.read(0, g_buf, proto::kBdevMaxTransfer + kSector) == kEInval,
          "more than kBdevMaxTransfer: kEInval");
    check(d.write(~0ull - kSector + 1, g_buf, kSector) == kEInval, "a wrapping offset: kEInval");
}

// The PCI server keeps the disk to its driver.
void test_pci() {
    Message m{};
    m.m_type = proto::kPciClaim;
    m.u64[0] = 0x1af4, m.u64[1] = 0x1042, m.u64[2] = 0;
    check(sys::call("pci", &m) == kEPerm, "PCI refuses the disk to a program not in its table");
    bool listed = false, refused = true;
    for (uint64_t i = 0; i < 32; ++i) {
        m = Message{};
        m.m_type = proto::kPciList;
        m.u64[0] = i;
        if (sys::call("pci", &m) != kOk) break;
        if (m.u64[1] == (0x1af4u << 16 | 0x1042u)) {
            listed = m.i64[4] != kNone;  // claimed (by a vblk: nobody else may)
            Message w{};
            w.m_type = proto::kPciConfigWrite;
            w.u64[0] = m.u64[0], w.u64[1] = 0x10, w.u64[2] = 4, w.u64[3] = 0;
            refused = refused && sys::call("pci", &w) == kEPerm;
        }
    }
    check(refused, "only the owner writes config space");
    check(listed, "PCI lists the disks as claimed");
    // Config reads: the host bridge at 00.0 is Intel's (ukvm's and QEMU's i440FX).
    auto pci = [](int32_t type, uint64_t a, uint64_t b, uint64_t c) {
        Message q{};
        q.m_type = type;
        q.u64[0] = a, q.u64[1] = b, q.u64[2] = c;
        int32_t r = sys::call("pci", &q);
        return r == kOk ? static_cast<int64_t>(q.u64[0]) : r;
    };
    check(pci(proto::kPciConfigRead, 0, 0, 2) == 0x8086, "reads the host bridge's vendor ID");
    check(pci(proto::kPciConfigRead, 0, 0, 3) == kEInval &&
              pci(proto::kPciConfigRead, 0, 256, 1) == kEInval &&
              pci(proto::kPciConfigRead, 0, 1, 2) == kEInval &&
              pci(proto::kPciConfigRead, 0xffff, 0, 4) == kEInval &&
              pci(proto::kPciBar, 0, 6, 0) == kEInval && pci(0x6ff, 0, 0, 0) == kENoSys,
          "refuses bad widths, offsets, handles, BAR indices and calls");
}

void test_ro(bdev::Client& d) {
    check(d.read(0, g_buf, kSector) == int32_t(kSector) && matches(0, kSector, pattern),
          "reads the host's pattern");
    check(d.write(1024 * kSector, g_buf, kSector) == proto::kERoFs, "a write: kERoFs");
    check(d.flush() == proto::kERoFs, "FLUSH: kERoFs");
}

void test_kill(bdev::Client& d) {
    int32_t driver = sys::pid_of("vblk");
    Endpoint driver_ep = user::find("vblk");
    check(driver > 0 && driver_ep != kNone, "the driver runs");
    int32_t child = sys::fork();
    if (child == 0) {
        // Wakes while the parent (same priority) is blocked in a request and the driver
        // waits for the device's interrupt, and kills the driver right then, the way RS
        // kills a hung one (PM, below these priorities, might not get the CPU in time).
        user::sleep_ns(300000000);
        Message k{};
        k.u64[0] = static_cast<uint64_t>(driver_ep);
        int32_t r = user::kernel_call(kSysKill, &k);
        print("blktest: killed vblk (pid %d): %d\n", driver, r);
        user::exit(r == kOk ? 0 : 1);
    }
    check(child > 0, "fork");
    d.attach(g_buf, proto::kBdevMaxTransfer);  // the region's grant is made again after the restart
    // 64 KiB write + read-back rounds over sectors 1536..1791 until a few rounds after the
    // client met the dead driver (at most 20 s).
    bool ok = true;
    uint64_t rounds = 0, after = 0, t_end = user::uptime_ns() + 20000000000ull;
    for (; ok && after < 4 && user::uptime_ns() < t_end; ++rounds) {
        for (uint64_t i = 0; i < proto::kBdevMaxTransfer; ++i)
            g_buf[i] = written(1536 + (rounds & 1) * 128 + i / kSector, i % kSector, rounds);
        uint64_t at = 1536 * kSector + (rounds & 1) * proto::kBdevMaxTransfer;
        int32_t w = d.write(at, g_buf, proto::kBdevMaxTransfer);
        memset(g_buf, 0, proto::kBdevMaxTransfer);
        int32_t r = d.read(at, g_buf, proto::kBdevMaxTransfer);
        for (uint64_t i = 0; ok && i < proto::kBdevMaxTransfer; ++i)
            ok = g_buf[i] == written(1536 + (rounds & 1) * 128 + i / kSector, i % kSector, rounds);
        if (w != int32_t(proto::kBdevMaxTransfer) || r != int32_t(proto::kBdevMaxTransfer) || !ok) {
            print("blktest: round %lu: write %d read %d data %s\n", rounds, w, r,
                  ok ? "ok" : "wrong");
            ok = false;
        }
        if (d.retries() > 0) ++after;
    }
    sys::WaitStatus st{};
    check(sys::wait(child, &st) == child && st.detail == 0, "the child killed the driver");
    print("blktest: %lu rounds, %d requests sent again to a restarted driver\n", rounds,
          d.retries());
    check(ok, "every request completed with the right data");
    check(d.retries() >= 1, "the client met the dead driver and retried");
    check(d.flush() == kOk, "FLUSH through the new driver");
}

}  // namespace

int main(const char* args) {
    char mode[16] = "check", name[16] = "vblk0";
    const char* p = args;
    char* words[] = {mode, name};
    for (char* out : words) {
        while (*p == ' ') ++p;
        if (!*p) break;
        size_t n = 0;
        while (p[n] && p[n] != ' ' && n < 15) out[n] = p[n], ++n;
        out[n] = '\0';
        p += n;
    }
    g_buf = static_cast<uint8_t*>(malloc(2 * proto::kBdevMaxTransfer));
    bdev::Client d(name);
    uint64_t size = 0, flags = 0;
    int32_t r = d.open(&size, &flags);
    print("blktest: %s: open %d, %lu bytes%s\n", name, r, size,
          flags & proto::kBdevReadOnly ? ", read-only" : "");
    check(r == kOk && size >= 2048 * kSector, "open: a disk of at least 1 MiB");
    if (r == kOk && strcmp(mode, "check") == 0) test_check(d, size), test_pci();
    if (r == kOk && strcmp(mode, "ro") == 0) test_ro(d);
    if (r == kOk && strcmp(mode, "kill") == 0) test_kill(d);
    return tally::finish();
}
