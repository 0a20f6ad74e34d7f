// PCI: config-space write masks and BAR sizing, configuration mechanism #1 at 0xCF8/0xCFC,
// BAR placement and decoding; and the virtio-pci transport driven through its BAR the
// way a driver would (capabilities, feature negotiation, queue setup, notification,
// ISR, DEVICE_NEEDS_RESET, reset, the PCI-config access window).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "tests/fuzz/byte_memory.hpp"
#include "vmm/devices/virtio_blk.hpp"
#include "vmm/devices/virtio_pci.hpp"
#include "vmm/io_thread.hpp"
#include "vmm/pci/pci_bus.hpp"

namespace {

using namespace ukvm;
using namespace ukvm::pci;
using ukvm::testing::ByteMemory;

std::uint32_t get32(Device& d, std::uint64_t offset, std::size_t width = 4) {
    std::uint8_t b[4] = {};
    d.read(offset, std::span(b, width));
    std::uint32_t v = 0;
    std::memcpy(&v, b, width);
    return v;
}

void put32(Device& d, std::uint64_t offset, std::uint32_t v, std::size_t width = 4) {
    std::uint8_t b[4];
    std::memcpy(b, &v, 4);
    d.write(offset, std::span<const std::uint8_t>(b, width));
}

std::uint32_t cfg32(const ConfigSpace& cs, std::uint16_t offset) {
    return cs.read32(offset);
}

void cfg_write32(ConfigSpace& cs, std::uint16_t offset, std::uint32_t v) {
    std::uint8_t b[4];
    std::memcpy(b, &v, 4);
    cs.write(offset, b);
}

TEST(ConfigSpace, IdentityIsReadOnly) {
    ConfigSpace cs(Identity{.vendor = 0x1234, .device = 0x5678, .class_code = 1, .subclass = 2});
    EXPECT_EQ(cfg32(cs, 0), 0x56781234u);
    cfg_write32(cs, 0, 0xFFFFFFFF);
    EXPECT_EQ(cfg32(cs, 0), 0x56781234u);
    EXPECT_EQ(cfg32(cs, 8) >> 16, 0x0102u);
}

TEST(ConfigSpace, CommandKeepsOnlyKnownBits) {
    ConfigSpace cs(Identity{.vendor = 1, .device = 2, .class_code = 0, .subclass = 0});
    cfg_write32(cs, kCommand, 0xFFFF);
    EXPECT_EQ(cs.command(), kCommandIo | kCommandMemory | kCommandBusMaster | kCommandIntxDisable);
}

TEST(ConfigSpace, Memory32BarSizing) {
    ConfigSpace cs(Identity{.vendor = 1, .device = 2, .class_code = 0, .subclass = 0});
    cs.add_bar(0, 0x4000, BarKind::Memory32);
    cfg_write32(cs, kBar0, 0xFFFFFFFF);
    EXPECT_EQ(cfg32(cs, kBar0), 0xFFFFC000u);
    cfg_write32(cs, kBar0, 0xE0001234);
    EXPECT_EQ(cs.bar_address(0), 0xE0000000u);
}

TEST(ConfigSpace, Memory64AndIoBarSizing) {
    ConfigSpace cs(Identity{.vendor = 1, .device = 2, .class_code = 0, .subclass = 0});
    cs.add_bar(0, 0x1000, BarKind::Memory64);
    cs.add_bar(2, 0x20, BarKind::Io);
    cfg_write32(cs, kBar0, 0xFFFFFFFF);
    cfg_write32(cs, kBar0 + 4, 0xFFFFFFFF);
    EXPECT_EQ(cfg32(cs, kBar0), 0xFFFFF004u);  // 64-bit memory type bits
    EXPECT_EQ(cfg32(cs, kBar0 + 4), 0xFFFFFFFFu);
    cfg_write32(cs, kBar0 + 8, 0xFFFFFFFF);
    EXPECT_EQ(cfg32(cs, kBar0 + 8), 0xFFFFFFE1u);
    cfg_write32(cs, kBar0, 0x00002000);
    cfg_write32(cs, kBar0 + 4, 0x1);
    EXPECT_EQ(cs.bar_address(0), 0x100002000ull);
    // Undeclared BARs read as zero and ignore writes.
    cfg_write32(cs, kBar0 + 12, 0xFFFFFFFF);
    EXPECT_EQ(cfg32(cs, kBar0 + 12), 0u);
}

TEST(ConfigSpace, BadBarDeclarationsAreRefused) {
    ConfigSpace cs(Identity{.vendor = 1, .device = 2, .class_code = 0, .subclass = 0});
    EXPECT_THROW(cs.add_bar(0, 0x3000, BarKind::Memory32), ConfigSpaceError);
    EXPECT_THROW(cs.add_bar(0, 8, BarKind::Memory32), ConfigSpaceError);
    EXPECT_THROW(cs.add_bar(5, 0x1000, BarKind::Memory64), ConfigSpaceError);
    cs.add_bar(1, 0x1000, BarKind::Memory32);
    EXPECT_THROW(cs.add_bar(0, 0x1000, BarKind::Memory64), ConfigSpaceError);
}

TEST(ConfigSpace, CapabilityListIsLinkedAndReadOnly) {
    ConfigSpace cs(Identity{.vendor = 1, .device = 2, .class_code = 0, .subclass = 0});
    const std::uint8_t a[] = {0x09, 0xAA, 5, 0x11, 0x22};
    const std::uint8_t b[] = {0x05, 0xBB, 0x33, 0x44};
    const std::uint8_t at_a = cs.add_capability(a);
    const std::uint8_t at_b = cs.add_capability(b, 2);
    EXPECT_TRUE(cfg32(cs, kStatus - 2) & (std::uint32_t{kStatusCapabilities} << 16));
    EXPECT_EQ(cs.bytes()[kCapabilitiesPointer], at_a);
    EXPECT_EQ(cs.bytes()[at_a + 1], at_b);
    EXPECT_EQ(cs.bytes()[at_b + 1], 0);
    EXPECT_EQ(at_b % 4, 0);
    cfg_write32(cs, at_a, 0);
    EXPECT_EQ(cs.bytes()[at_a + 3], 0x11);
    cfg_write32(cs, at_b, 0x77770000);
    EXPECT_EQ(cs.bytes()[at_b + 2], 0x77);  // writable from byte 2
    EXPECT_EQ(cs.bytes()[at_b], 0x05);
}

// A function that records BAR accesses.
class Recorder : public PciDevice {
public:
    Recorder()
        : config_(Identity{.vendor = 0xAAAA, .device = 0xBBBB, .class_code = 0xFF, .subclass = 0}) {
        config_.add_bar(0, 0x1000, BarKind::Memory32);
        config_.add_bar(1, 0x10000, BarKind::Memory32);
        config_.add_bar(2, 0x10, BarKind::Io);
    }
    ConfigSpace& config() override { return config_; }
    void decode_changed() override { ++decode_changes; }
    void bar_read(int bar, std::uint64_t offset, std::span<std::uint8_t> data) override {
        last = {bar, offset};
        std::fill(data.begin(), data.end(), 0x42);
    }
    void bar_write(int bar, std::uint64_t offset, std::span<const std::uint8_t>) override {
        last = {bar, offset};
    }
    ConfigSpace config_;
    std::optional<std::pair<int, std::uint64_t>> last;
    int decode_changes = 0;
};

class PciBusTest : public ::testing::Test {
protected:
    static constexpr std::uint64_t kMmio = 0xC0000000;
    static constexpr std::uint64_t kIo = 0xC000;

    std::uint32_t address(int slot, int reg, int function = 0, int bus = 0) {
        return 0x80000000u | (bus << 16) | (slot << 11) | (function << 8) | reg;
    }
    std::uint32_t config_read(int slot, int reg, std::size_t width = 4, int function = 0,
                              int bus = 0) {
        put32(bus_.config_ports(), 0, address(slot, reg & ~3, function, bus));
        return get32(bus_.config_ports(), 4 + (reg & 3), width);
    }
    void config_write(int slot, int reg, std::uint32_t v, std::size_t width = 4) {
        put32(bus_.config_ports(), 0, address(slot, reg & ~3));
        put32(bus_.config_ports(), 4 + (reg & 3), v, width);
    }

    PciBus bus_{Window{kMmio, 0x3EC00000}, Window{kIo, 0x4000}};
    Recorder dev_;
};

TEST_F(PciBusTest, ConfigAddressReadsBack) {
    put32(bus_.config_ports(), 0, 0x80000000);
    EXPECT_EQ(get32(bus_.config_ports(), 0), 0x80000000u);
    put32(bus_.config_ports(), 0, 0xFFFFFFFF);
    EXPECT_EQ(get32(bus_.config_ports(), 0), 0x80FFFFFCu);  // reserved and low bits drop
    // Byte writes (0xCF9 is a reset register on some chipsets) leave the address alone.
    put32(bus_.config_ports(), 1, 0x06, 1);
    EXPECT_EQ(get32(bus_.config_ports(), 0), 0x80FFFFFCu);
}

TEST_F(PciBusTest, HostBridgeInSlot0) {
    EXPECT_EQ(config_read(0, 0), 0x12378086u);
    EXPECT_EQ(config_read(0, 0x0A, 2), 0x0600u);
    EXPECT_EQ(config_read(0, 2, 2), 0x1237u);
    EXPECT_EQ(config_read(0, 1, 1), 0x80u);
}

TEST_F(PciBusTest, AbsentFunctionsReadAllOnes) {
    EXPECT_EQ(config_read(5, 0), 0xFFFFFFFFu);
    bus_.attach(5, dev_);
    EXPECT_EQ(config_read(5, 0), 0xBBBBAAAAu);
    EXPECT_EQ(config_read(5, 0, 4, 1), 0xFFFFFFFFu);     // function 1
    EXPECT_EQ(config_read(5, 0, 4, 0, 1), 0xFFFFFFFFu);  // bus 1
    put32(bus_.config_ports(), 0, 5 << 11);              // enable bit clear
    EXPECT_EQ(get32(bus_.config_ports(), 4), 0xFFFFFFFFu);
}

TEST_F(PciBusTest, AttachChecksSlots) {
    bus_.attach(3, dev_);
    Recorder other;
    EXPECT_THROW(bus_.attach(3, other), PciError);
    EXPECT_THROW(bus_.attach(0, other), PciError);
    EXPECT_THROW(bus_.attach(32, other), PciError);
    EXPECT_EQ(bus_.free_slot(), 1);
}

TEST_F(PciBusTest, PlacementIsAlignedAndEnablesDecoding) {
    bus_.attach(1, dev_);
    bus_.place_bars();
    EXPECT_EQ(dev_.config_.bar_address(0), kMmio);
    EXPECT_EQ(dev_.config_.bar_address(1), kMmio + 0x10000);  // 64 KiB aligned
    EXPECT_EQ(dev_.config_.bar_address(2), kIo);
    EXPECT_TRUE(dev_.config_.memory_enabled());
    EXPECT_TRUE(dev_.config_.io_enabled());
    EXPECT_GE(dev_.decode_changes, 1);
}

TEST_F(PciBusTest, BarsThatDoNotFitAreAWiringError) {
    PciBus small{Window{kMmio, 0x8000}, Window{kIo, 0x100}};
    small.attach(1, dev_);
    EXPECT_THROW(small.place_bars(), PciError);
}

TEST_F(PciBusTest, WindowDispatchesToTheDecodingBar) {
    bus_.attach(1, dev_);
    bus_.place_bars();
    EXPECT_EQ(get32(bus_.bar_window(), 0x10010), 0x42424242u);
    ASSERT_TRUE(dev_.last);
    EXPECT_EQ(*dev_.last, std::make_pair(1, std::uint64_t{0x10}));
    put32(bus_.io_window(), 4, 1, 1);
    EXPECT_EQ(*dev_.last, std::make_pair(2, std::uint64_t{4}));
    // Between BARs, and straddling a BAR's end: nobody answers.
    dev_.last.reset();
    EXPECT_EQ(get32(bus_.bar_window(), 0x2000), 0xFFFFFFFFu);
    EXPECT_EQ(get32(bus_.bar_window(), 0xFFE), 0xFFFFFFFFu);
    EXPECT_FALSE(dev_.last);
}

TEST_F(PciBusTest, GuestMovesAndDisablesBars) {
    bus_.attach(1, dev_);
    bus_.place_bars();
    const int changes = dev_.decode_changes;
    config_write(1, kBar0, kMmio + 0x100000);
    EXPECT_GT(dev_.decode_changes, changes);
    dev_.last.reset();
    get32(bus_.bar_window(), 0);
    EXPECT_FALSE(dev_.last);  // the old place no longer decodes
    get32(bus_.bar_window(), 0x100000);
    ASSERT_TRUE(dev_.last);
    EXPECT_EQ(dev_.last->first, 0);
    // Sizing through the ports, as firmware does.
    config_write(1, kBar0, 0xFFFFFFFF);
    EXPECT_EQ(config_read(1, kBar0), 0xFFFFF000u);
    config_write(1, kBar0, kMmio + 0x100000);
    config_write(1, kCommand, 0, 2);  // memory decoding off
    dev_.last.reset();
    get32(bus_.bar_window(), 0x100000);
    EXPECT_FALSE(dev_.last);
}

// --- virtio-pci ---

class FakeHost : public VirtioPci::Host {
public:
    void raise_interrupt() override { ++interrupts; }
    void queue_notified(std::uint16_t q) override { notified.push_back(q); }
    void notify_moved(std::uint16_t q, std::optional<std::uint64_t> gpa) override {
        notify_at[q] = gpa;
    }
    int interrupts = 0;
    std::vector<std::uint16_t> notified;
    std::map<std::uint16_t, std::optional<std::uint64_t>> notify_at;
};

class SectorBackend : public BlockBackend {
public:
    std::uint64_t size() const override { return 16 * 512; }
    int read(std::uint64_t, std::span<std::uint8_t> out) override {
        std::fill(out.begin(), out.end(), 0x33);
        return 0;
    }
    int write(std::uint64_t, std::span<const std::uint8_t>) override { return 0; }
    int flush() override { return 0; }
};

class VirtioPciTest : public ::testing::Test {
protected:
    static constexpr std::uint64_t kMmio = 0xC0000000;
    static constexpr std::uint64_t kRing = 0x1000;

    void SetUp() override {
        bus.attach(1, transport);
        bus.place_bars();
        bar = transport.config().bar_address(0);
    }

    std::uint32_t common(std::size_t field, std::size_t width) {
        return get32(bus.bar_window(), bar - kMmio + field, width);
    }
    void set_common(std::size_t field, std::uint32_t v, std::size_t width) {
        put32(bus.bar_window(), bar - kMmio + field, v, width);
    }
    std::uint8_t isr() {
        return static_cast<std::uint8_t>(get32(bus.bar_window(), bar - kMmio + 0x1000, 1));
    }

    void negotiate(std::uint64_t features) {
        set_common(VIRTIO_PCI_COMMON_STATUS, 0, 1);
        set_common(VIRTIO_PCI_COMMON_STATUS, 1 | 2, 1);
        set_common(VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
        set_common(VIRTIO_PCI_COMMON_GF, static_cast<std::uint32_t>(features), 4);
        set_common(VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
        set_common(VIRTIO_PCI_COMMON_GF, static_cast<std::uint32_t>(features >> 32), 4);
        set_common(VIRTIO_PCI_COMMON_STATUS, 1 | 2 | 8, 1);
    }

    void setup_queue(std::uint16_t size, std::uint64_t desc, std::uint64_t avail,
                     std::uint64_t used) {
        set_common(VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
        set_common(VIRTIO_PCI_COMMON_Q_SIZE, size, 2);
        set_common(VIRTIO_PCI_COMMON_Q_DESCLO, static_cast<std::uint32_t>(desc), 4);
        set_common(VIRTIO_PCI_COMMON_Q_DESCHI, static_cast<std::uint32_t>(desc >> 32), 4);
        set_common(VIRTIO_PCI_COMMON_Q_AVAILLO, static_cast<std::uint32_t>(avail), 4);
        set_common(VIRTIO_PCI_COMMON_Q_AVAILHI, 0, 4);
        set_common(VIRTIO_PCI_COMMON_Q_USEDLO, static_cast<std::uint32_t>(used), 4);
        set_common(VIRTIO_PCI_COMMON_Q_USEDHI, 0, 4);
        set_common(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
    }

    ByteMemory mem{0x40000};
    VirtioBlk blk{std::make_unique<SectorBackend>(), mem, false, "pci-test"};
    FakeHost host;
    VirtioPci transport{blk, mem, host, 16};
    PciBus bus{Window{kMmio, 0x3EC00000}, Window{0xC000, 0x4000}};
    std::uint64_t bar = 0;
    ukvm::virtio::DriverQueue driver;
};

TEST_F(VirtioPciTest, IdentityAndInterruptPin) {
    ConfigSpace& cs = transport.config();
    EXPECT_EQ(cs.read32(0), 0x10421AF4u);  // 1af4:1042, modern virtio-blk
    EXPECT_EQ(cs.bytes()[kRevision], 1);
    EXPECT_EQ(cs.bytes()[kInterruptLine], 16);
    EXPECT_EQ(cs.bytes()[kInterruptPin], 1);
    EXPECT_EQ(cs.read32(kSubsystemVendorId) & 0xFFFF, 0x1AF4u);
}

TEST_F(VirtioPciTest, CapabilitiesDescribeTheBarLayout) {
    ConfigSpace& cs = transport.config();
    std::map<int, virtio_pci_cap> caps;
    std::uint32_t multiplier = 0;
    for (std::uint8_t at = cs.bytes()[kCapabilitiesPointer]; at != 0; at = cs.bytes()[at + 1]) {
        virtio_pci_cap cap;
        std::memcpy(&cap, cs.bytes().data() + at, sizeof cap);
        ASSERT_EQ(cap.cap_vndr, kCapVendor);
        caps[cap.cfg_type] = cap;
        if (cap.cfg_type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
            std::memcpy(&multiplier, cs.bytes().data() + at + 16, 4);
        }
    }
    ASSERT_EQ(caps.size(), 5u);
    EXPECT_EQ(caps[VIRTIO_PCI_CAP_COMMON_CFG].offset, 0u);
    EXPECT_EQ(caps[VIRTIO_PCI_CAP_COMMON_CFG].length, 56u);
    EXPECT_EQ(caps[VIRTIO_PCI_CAP_ISR_CFG].offset, 0x1000u);
    EXPECT_EQ(caps[VIRTIO_PCI_CAP_DEVICE_CFG].offset, 0x2000u);
    EXPECT_EQ(caps[VIRTIO_PCI_CAP_DEVICE_CFG].length, sizeof(virtio_blk_config));
    EXPECT_EQ(caps[VIRTIO_PCI_CAP_NOTIFY_CFG].offset, 0x3000u);
    EXPECT_EQ(multiplier, 4u);
    for (auto& [type, cap] : caps) EXPECT_EQ(cap.bar, 0) << type;
}

TEST_F(VirtioPciTest, NotifyAddressFollowsTheBar) {
    ASSERT_TRUE(host.notify_at[0]);
    EXPECT_EQ(*host.notify_at[0], bar + 0x3000);
    // Memory decoding off: the ioeventfd must go.
    std::uint8_t off[2] = {0, 0};
    transport.config_write(kCommand, off);
    EXPECT_FALSE(host.notify_at[0]);
    std::uint8_t on[2] = {kCommandMemory, 0};
    transport.config_write(kCommand, on);
    EXPECT_EQ(*host.notify_at[0], bar + 0x3000);
}

TEST_F(VirtioPciTest, FeatureNegotiation) {
    set_common(VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
    EXPECT_EQ(common(VIRTIO_PCI_COMMON_DF, 4), 1u);  // VIRTIO_F_VERSION_1 is bit 32
    set_common(VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
    EXPECT_TRUE(common(VIRTIO_PCI_COMMON_DF, 4) & (1u << VIRTIO_BLK_F_FLUSH));
    EXPECT_EQ(common(VIRTIO_PCI_COMMON_NUMQ, 2), 1u);

    negotiate(0);  // without VERSION_1: refused
    EXPECT_FALSE(common(VIRTIO_PCI_COMMON_STATUS, 1) & 8);
    negotiate((1ull << 32) | (1ull << VIRTIO_BLK_F_DISCARD));  // not offered: refused
    EXPECT_FALSE(common(VIRTIO_PCI_COMMON_STATUS, 1) & 8);
    negotiate((1ull << 32) | (1ull << VIRTIO_BLK_F_FLUSH));
    EXPECT_EQ(common(VIRTIO_PCI_COMMON_STATUS, 1), 1u | 2 | 8);
    // Features are frozen after FEATURES_OK.
    set_common(VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
    set_common(VIRTIO_PCI_COMMON_GF, 0, 4);
    EXPECT_EQ(common(VIRTIO_PCI_COMMON_GF, 4), 1u << VIRTIO_BLK_F_FLUSH);
}

TEST_F(VirtioPciTest, DeviceConfigIsReadable) {
    virtio_blk_config cfg{};
    for (std::size_t i = 0; i < sizeof cfg; i += 4) {
        const std::uint32_t v = get32(bus.bar_window(), bar - kMmio + 0x2000 + i);
        std::memcpy(reinterpret_cast<std::uint8_t*>(&cfg) + i, &v,
                    std::min<std::size_t>(4, sizeof cfg - i));
    }
    EXPECT_EQ(cfg.capacity, 16u);
    EXPECT_EQ(cfg.blk_size, 512u);
}

TEST_F(VirtioPciTest, RequestThroughTheTransport) {
    negotiate(1ull << 32);
    ASSERT_TRUE(driver.init(mem.at(kRing), kRing, 16));
    setup_queue(16, driver.desc_addr(), driver.avail_addr(), driver.used_addr());
    EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1u);
    EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_SIZE, 2), 16u);
    set_common(VIRTIO_PCI_COMMON_STATUS, 1 | 2 | 8 | 4, 1);

    virtio_blk_outhdr h{VIRTIO_BLK_T_IN, 0, 1};
    mem.write(0x8000, &h, sizeof h);
    ukvm::virtio::DriverBuffer bufs[] = {
        {0x8000, 16, false}, {0x9000, 512, true}, {0xA000, 1, true}};
    driver.add(bufs, 3);
    driver.publish();
    host.notified.clear();
    put32(bus.bar_window(), bar - kMmio + 0x3000, 0, 2);  // notify queue 0
    ASSERT_EQ(host.notified, std::vector<std::uint16_t>{0});

    EXPECT_FALSE(transport.interrupt_pending());
    transport.process_queue(0);
    EXPECT_EQ(mem.at(0xA000)[0], VIRTIO_BLK_S_OK);
    EXPECT_EQ(mem.at(0x9000)[0], 0x33);
    EXPECT_EQ(host.interrupts, 1);
    EXPECT_TRUE(transport.interrupt_pending());
    EXPECT_EQ(isr(), 1);  // queue interrupt; reading acknowledges
    EXPECT_EQ(isr(), 0);
    EXPECT_FALSE(transport.interrupt_pending());
}

TEST_F(VirtioPciTest, NothingIsProcessedBeforeDriverOk) {
    negotiate(1ull << 32);
    ASSERT_TRUE(driver.init(mem.at(kRing), kRing, 16));
    setup_queue(16, driver.desc_addr(), driver.avail_addr(), driver.used_addr());
    ukvm::virtio::DriverBuffer status{0xA000, 1, true};
    driver.add(&status, 1);
    driver.publish();
    transport.process_queue(0);
    EXPECT_EQ(host.interrupts, 0);
    // DRIVER_OK then asks for the queue to be looked at.
    host.notified.clear();
    set_common(VIRTIO_PCI_COMMON_STATUS, 1 | 2 | 8 | 4, 1);
    EXPECT_EQ(host.notified, std::vector<std::uint16_t>{0});
}

TEST_F(VirtioPciTest, BadRingLayoutNeedsReset) {
    negotiate(1ull << 32);
    set_common(VIRTIO_PCI_COMMON_STATUS, 1 | 2 | 8 | 4, 1);
    setup_queue(16, 0x7FFFFFF0, 0x2000, 0x3000);  // descriptor table outside RAM
    EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0u);
    EXPECT_TRUE(common(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
    EXPECT_EQ(isr(), VIRTIO_PCI_ISR_CONFIG);
    EXPECT_EQ(transport.needs_reset_reason(), "a ring lies outside guest RAM");
    // Reset brings it back.
    set_common(VIRTIO_PCI_COMMON_STATUS, 0, 1);
    EXPECT_EQ(common(VIRTIO_PCI_COMMON_STATUS, 1), 0u);
    EXPECT_EQ(transport.needs_reset_reason(), "");
}

TEST_F(VirtioPciTest, MisbehavingQueueNeedsResetAndStops) {
    negotiate(1ull << 32);
    ASSERT_TRUE(driver.init(mem.at(kRing), kRing, 16));
    setup_queue(16, driver.desc_addr(), driver.avail_addr(), driver.used_addr());
    set_common(VIRTIO_PCI_COMMON_STATUS, 1 | 2 | 8 | 4, 1);
    driver.descriptors()[0] = {0x9000, 16, VRING_DESC_F_NEXT, 0};  // a loop
    driver.avail()->ring[0] = 0;
    driver.avail()->idx = 1;
    transport.process_queue(0);
    EXPECT_TRUE(transport.status() & VIRTIO_CONFIG_S_NEEDS_RESET);
    EXPECT_EQ(transport.needs_reset_reason(), "a descriptor chain loops");
    EXPECT_EQ(isr(), VIRTIO_PCI_ISR_CONFIG);
    // The driver cannot clear NEEDS_RESET except by resetting.
    set_common(VIRTIO_PCI_COMMON_STATUS, 1 | 2 | 8 | 4, 1);
    EXPECT_TRUE(transport.status() & VIRTIO_CONFIG_S_NEEDS_RESET);
}

TEST_F(VirtioPciTest, ResetAfterNeedsResetRecovers) {
    negotiate(1ull << 32);
    ASSERT_TRUE(driver.init(mem.at(kRing), kRing, 16));
    setup_queue(16, driver.desc_addr(), driver.avail_addr(), driver.used_addr());
    set_common(VIRTIO_PCI_COMMON_STATUS, 1 | 2 | 8 | 4, 1);
    driver.descriptors()[0] = {0x9000, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1};
    driver.descriptors()[1] = {0x9000, 16, 0, 0};  // readable after writable
    driver.avail()->ring[0] = 0;
    driver.avail()->idx = 1;
    transport.process_queue(0);
    ASSERT_TRUE(transport.status() & VIRTIO_CONFIG_S_NEEDS_RESET);

    // The driver resets and starts over with fresh rings: requests work again.
    set_common(VIRTIO_PCI_COMMON_STATUS, 0, 1);
    EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0u);
    EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_SIZE, 2), 256u);
    EXPECT_EQ(common(VIRTIO_PCI_COMMON_GF, 4), 0u);
    negotiate(1ull << 32);
    ASSERT_TRUE(driver.init(mem.at(kRing), kRing, 16));
    setup_queue(16, driver.desc_addr(), driver.avail_addr(), driver.used_addr());
    set_common(VIRTIO_PCI_COMMON_STATUS, 1 | 2 | 8 | 4, 1);
    virtio_blk_outhdr h{VIRTIO_BLK_T_IN, 0, 0};
    mem.write(0x8000, &h, sizeof h);
    ukvm::virtio::DriverBuffer bufs[] = {
        {0x8000, 16, false}, {0x9000, 512, true}, {0xA000, 1, true}};
    driver.add(bufs, 3);
    driver.publish();
    mem.at(0xA000)[0] = 0xEE;
    transport.process_queue(0);
    EXPECT_EQ(mem.at(0xA000)[0], VIRTIO_BLK_S_OK);
    EXPECT_EQ(transport.status(), 1 | 2 | 8 | 4);
}

TEST_F(VirtioPciTest, QueueLayoutIsFrozenOnceEnabled) {
    negotiate(1ull << 32);
    ASSERT_TRUE(driver.init(mem.at(kRing), kRing, 16));
    setup_queue(16, driver.desc_addr(), driver.avail_addr(), driver.used_addr());
    set_common(VIRTIO_PCI_COMMON_Q_DESCLO, 0x5000, 4);
    set_common(VIRTIO_PCI_COMMON_Q_SIZE, 4, 2);
    EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_DESCLO, 4), driver.desc_addr());
    EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_SIZE, 2), 16u);
}

TEST_F(VirtioPciTest, UnknownQueueSelectReadsZeroSize) {
    set_common(VIRTIO_PCI_COMMON_Q_SELECT, 7, 2);
    EXPECT_EQ(common(VIRTIO_PCI_COMMON_Q_SIZE, 2), 0u);
    set_common(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);  // ignored, no crash
    put32(bus.bar_window(), bar - kMmio + 0x3000 + 4 * 7, 7, 2);
    EXPECT_TRUE(host.notified.empty());
    transport.process_queue(7);
}

TEST_F(VirtioPciTest, IntxDisableSuppressesTheInterrupt) {
    negotiate(1ull << 32);
    set_common(VIRTIO_PCI_COMMON_STATUS, 1 | 2 | 8 | 4, 1);
    std::uint8_t cmd[2] = {kCommandMemory, kCommandIntxDisable >> 8};
    transport.config_write(kCommand, cmd);
    setup_queue(3, 0x1000, 0x2000, 0x3000);  // bad size: needs reset, ISR set
    EXPECT_EQ(host.interrupts, 0);
    EXPECT_EQ(isr(), VIRTIO_PCI_ISR_CONFIG);
}

TEST_F(VirtioPciTest, PciConfigAccessWindow) {
    ConfigSpace& cs = transport.config();
    std::uint8_t at = 0;
    for (std::uint8_t p = cs.bytes()[kCapabilitiesPointer]; p != 0; p = cs.bytes()[p + 1]) {
        if (cs.bytes()[p + 3] == VIRTIO_PCI_CAP_PCI_CFG) at = p;
    }
    ASSERT_NE(at, 0);
    // Read num_queues (common config offset 18, 2 bytes) through the window.
    const std::uint8_t bar_sel[1] = {0};
    transport.config_write(at + 4, bar_sel);
    const std::uint32_t offset = VIRTIO_PCI_COMMON_NUMQ, length = 2;
    transport.config_write(at + 8, std::span(reinterpret_cast<const std::uint8_t*>(&offset), 4));
    transport.config_write(at + 12, std::span(reinterpret_cast<const std::uint8_t*>(&length), 4));
    std::uint8_t data[4] = {};
    transport.config_read(at + 16, data);
    EXPECT_EQ(data[0] | (data[1] << 8), 1);
    // And write the status through it.
    const std::uint32_t status_off = VIRTIO_PCI_COMMON_STATUS, one = 1;
    transport.config_write(at + 8,
                           std::span(reinterpret_cast<const std::uint8_t*>(&status_off), 4));
    transport.config_write(at + 12, std::span(reinterpret_cast<const std::uint8_t*>(&one), 4));
    const std::uint8_t ack[4] = {1, 0, 0, 0};
    transport.config_write(at + 16, ack);
    EXPECT_EQ(transport.status(), 1);
}

// GuestRam: the VMM's accessor refuses what GuestMemory does not hold.
TEST(GuestRam, ChecksEveryRange) {
    ukvm::GuestMemory memory(2 << 20);
    GuestRam ram(memory);
    std::uint8_t b[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    EXPECT_TRUE(ram.write(0x1000, b, 8));
    std::uint8_t out[8] = {};
    EXPECT_TRUE(ram.read(0x1000, out, 8));
    EXPECT_EQ(std::memcmp(b, out, 8), 0);
    EXPECT_EQ(ram.host(0x1000, 8), memory.span(0x1000, 8).data());
    EXPECT_FALSE(ram.contains((2 << 20) - 4, 8));
    EXPECT_FALSE(ram.read((2 << 20) - 4, out, 8));
    EXPECT_FALSE(ram.write((2 << 20) - 4, b, 8));
    EXPECT_EQ(ram.host((2 << 20) - 4, 8), nullptr);
    EXPECT_FALSE(ram.read(0xFFFFFFFFFFFFFFFCull, out, 8));  // wraps
    EXPECT_EQ(ram.host(0x1000, 0), nullptr);                // nothing to point at
    EXPECT_TRUE(ram.read(0xDEAD0000, out, 0));              // touches nothing
}

// The I/O thread runs a handler when its eventfd fires, off the calling thread, and stops.
TEST(IoThread, RunsHandlersOnItsOwnThread) {
    EventFd kick;
    EventFd bad;
    std::atomic<int> runs{0};
    std::atomic<bool> other_thread{false};
    const auto caller = std::this_thread::get_id();
    auto wait_for = [&](int n) {
        for (int i = 0; i < 1000 && runs < n; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    };
    {
        IoThread io;
        io.add(kick.fd(), [&] {
            if (kick.consume()) {
                other_thread = std::this_thread::get_id() != caller;
                ++runs;
            }
        });
        io.add(bad.fd(), [&] {
            bad.consume();
            throw std::runtime_error("device failed");
        });
        EXPECT_THROW(io.add(-1, [] {}), KvmError);
        io.start();
        kick.signal();
        wait_for(1);
        EXPECT_EQ(runs, 1);
        EXPECT_TRUE(other_thread);
        // A handler that throws is logged; the thread goes on serving the others.
        bad.signal();
        kick.signal();
        wait_for(2);
        EXPECT_EQ(runs, 2);
    }  // stops and joins
    kick.signal();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(runs, 2);
}

}  // namespace
