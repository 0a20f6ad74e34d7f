// The guest's block-device path for real: the MINIX-style system (configs/minix.toml) with a
// [[disk]], its PCI server and ring-3 virtio-blk driver (vblk0), driven by the in-guest
// blktest program. The host writes a pattern into the image and checks afterwards, byte
// for byte, what the guest wrote; a read-only disk refuses writes; killing the driver
// mid-I/O loses nothing; the same image and disk under QEMU read the same bytes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/minix_guest.hpp"
#include "tests/integration/process.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ukvm::test::add_rs_args;
using ukvm::test::describe;
using ukvm::test::find_program;
using ukvm::test::make_temp_dir;
using ukvm::test::minix_config;
using ukvm::test::ProcessResult;
using ukvm::test::run_minix;
using ukvm::test::run_minix_qemu;

constexpr size_t kSector = 512;
constexpr size_t kDiskBytes = 2 * 1024 * 1024;

// What blktest expects and writes (guest-servers/programs/blktest.cpp).
uint8_t pattern(uint64_t s, uint64_t i) {
    return static_cast<uint8_t>(s * 31 + i * 7 + 1);
}
uint8_t written(uint64_t s, uint64_t i, uint64_t round) {
    return static_cast<uint8_t>(s ^ (i * 3) ^ 0x5a ^ round);
}

std::vector<uint8_t> read_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The first sector in [first, last) whose bytes differ from f, or -1.
template <typename F>
long first_mismatch(const std::vector<uint8_t>& img, uint64_t first, uint64_t last, F f) {
    for (uint64_t s = first; s < last; ++s)
        for (uint64_t i = 0; i < kSector; ++i)
            if (img.at(s * kSector + i) != f(s, i)) return static_cast<long>(s);
    return -1;
}

class BlockDev : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable";
        config_ = minix_config();  // without the shipped root disk: the test's own is vblk0
        dir_ = make_temp_dir("ukvm-blockdev");
        ASSERT_FALSE(dir_.empty());
        image_ = dir_ / "disk.img";
        std::vector<uint8_t> img(kDiskBytes);
        for (size_t s = 0; s < kDiskBytes / kSector; ++s)
            for (size_t i = 0; i < kSector; ++i) img[s * kSector + i] = pattern(s, i);
        std::ofstream(image_, std::ios::binary)
            .write(reinterpret_cast<const char*>(img.data()), static_cast<long>(img.size()));
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    ProcessResult run_ukvm(const std::string& input, const std::string& disk_extra) {
        return run_minix(dir_ / "minix.toml",
                         config_ + "\n[[disk]]\npath = \"" + image_.string() +
                             "\"\nserial = \"ukvm-blk-7\"\n" + disk_extra,
                         input);
    }

    std::string config_;
    fs::path dir_, image_;
};

TEST_F(BlockDev, ReadsThePatternWritesFlushesAndRefusesBadRanges) {
    const ProcessResult r = run_ukvm("blktest\nlspci\npoweroff\n", "");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("vblk0: 4096 sectors, irq 16\n")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("blktest: serial \"ukvm-blk-7\"\n"));
    // lspci: the host bridge, and the disk in slot 1 with its BAR as ukvm placed it.
    EXPECT_THAT(r.out, HasSubstr("00.0 8086:1237 class 060000 irq - driver -\n"));
    EXPECT_THAT(r.out,
                HasSubstr("01.0 1af4:1042 class 018000 irq 16 driver vblk bar0 c0000000+4000\n"));
    EXPECT_THAT(r.out, HasSubstr("\n19 passed, 0 failed\n")) << describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr("FAIL")));
    // Sectors 1024..1151 hold what the guest wrote; every other byte is the host's.
    const std::vector<uint8_t> img = read_bytes(image_);
    ASSERT_EQ(img.size(), kDiskBytes);
    auto round0 = [](uint64_t s, uint64_t i) { return written(s, i, 0); };
    EXPECT_EQ(first_mismatch(img, 1024, 1152, round0), -1);
    EXPECT_EQ(first_mismatch(img, 0, 1024, pattern), -1);
    EXPECT_EQ(first_mismatch(img, 1152, kDiskBytes / kSector, pattern), -1);
}

TEST_F(BlockDev, ReadOnlyDiskRefusesWritesAndFlush) {
    const ProcessResult r = run_ukvm("blktest ro\npoweroff\n", "read_only = true\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("vblk0: 4096 sectors, read-only, irq 16\n")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("\n4 passed, 0 failed\n")) << describe(r);
    const std::vector<uint8_t> img = read_bytes(image_);
    EXPECT_EQ(first_mismatch(img, 0, kDiskBytes / kSector, pattern), -1);
}

TEST_F(BlockDev, KillingTheDriverMidIoLosesNothing) {
    const ProcessResult r = run_ukvm("blktest kill\npoweroff\n", "");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, testing::ContainsRegex("rs: vblk0 \\(endpoint [0-9]+, generation 1\\) "
                                              "was killed"));
    EXPECT_THAT(r.out,
                testing::ContainsRegex("rs: vblk0 restarted: endpoint [0-9]+, generation 2"));
    EXPECT_THAT(r.out, HasSubstr("\n7 passed, 0 failed\n")) << describe(r);
    // The last two rounds' writes are on the disk: round n went to half n & 1.
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex("blktest: ([0-9]+) rounds"))) << r.out;
    const uint64_t rounds = std::stoull(m[1]);
    ASSERT_GE(rounds, 2u);
    const std::vector<uint8_t> img = read_bytes(image_);
    for (uint64_t round : {rounds - 1, rounds - 2}) {
        const uint64_t first = 1536 + (round & 1) * 128;
        EXPECT_EQ(first_mismatch(img, first, first + 128,
                                 [&](uint64_t s, uint64_t i) { return written(s, i, round); }),
                  -1)
            << "round " << round;
    }
    EXPECT_EQ(first_mismatch(img, 0, 1536, pattern), -1);
    EXPECT_EQ(first_mismatch(img, 1792, kDiskBytes / kSector, pattern), -1);
}

TEST_F(BlockDev, TwoDisksTwoDrivers) {
    // RS starts a second driver from its arguments (NAME:PROGRAM:ARG), which moves the data
    // through its bounce buffer instead of the client's pages; disk 0 read-only.
    ASSERT_TRUE(add_rs_args(config_, "vblk1:vblk:1,bounce"));
    const fs::path second = dir_ / "second.img";
    fs::copy_file(image_, second);
    const ProcessResult r = run_ukvm("blktest check vblk1\nblktest ro vblk0\npoweroff\n",
                                     "read_only = true\n\n[[disk]]\npath = \"" + second.string() +
                                         "\"\nserial = \"second-disk\"\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("vblk0: 4096 sectors, read-only, irq 16\n")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("vblk1: 4096 sectors, irq 17, bounce buffer\n")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("blktest: serial \"second-disk\"\n"));
    EXPECT_THAT(r.out, HasSubstr("\n19 passed, 0 failed\n")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("\n4 passed, 0 failed\n")) << describe(r);
    auto round0 = [](uint64_t s, uint64_t i) { return written(s, i, 0); };
    const std::vector<uint8_t> img = read_bytes(second);
    EXPECT_EQ(first_mismatch(img, 1024, 1152, round0), -1);
    EXPECT_EQ(first_mismatch(read_bytes(image_), 0, kDiskBytes / kSector, pattern), -1);
}

TEST_F(BlockDev, WithoutADiskTheDriverAnswersNoDevice) {
    const ProcessResult r = run_minix(dir_ / "minix.toml", config_, "blktest\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("blktest: vblk0: open -19, 0 bytes\n")) << describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr("rs: vblk0")));  // it neither died nor hung
}

TEST_F(BlockDev, SameImageAndDiskUnderQemu) {
    const fs::path qemu = find_program("qemu-system-x86_64");
    if (qemu.empty()) GTEST_SKIP() << "qemu-system-x86_64 is not in PATH";
    const ProcessResult r =
        run_minix_qemu(qemu, config_, "blktest\nlspci\npoweroff\n",
                       {"-drive", "file=" + image_.string() + ",if=none,id=d0,format=raw",
                        "-device", "virtio-blk-pci,drive=d0,disable-legacy=on,serial=qemu-blk-3"});
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, (0 << 1) | 1) << describe(r);  // isa-debug-exit: (status << 1) | 1
    EXPECT_THAT(r.out, HasSubstr("no ukvm VMM (UART console)"));
    // SeaBIOS routed INTx to an ISA IRQ; the driver takes it from the Interrupt Line.
    EXPECT_THAT(r.out, testing::ContainsRegex("vblk0: 4096 sectors, irq [0-9]+\r?\n"))
        << describe(r);
    EXPECT_THAT(r.out, HasSubstr("blktest: serial \"qemu-blk-3\""));
    // Where SeaBIOS put it: a 64-bit BAR (QEMU's BAR 4) and an ISA IRQ.
    EXPECT_THAT(r.out, testing::ContainsRegex("1af4:1042 class [0-9a-f]+ irq [0-9]+ driver vblk "
                                              "bar1 [0-9a-f]+\\+1000 bar4 [0-9a-f]+\\+4000"))
        << describe(r);
    EXPECT_THAT(r.out, HasSubstr("\n19 passed, 0 failed")) << describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr("rs: vblk0")));  // no lost interrupt, no restart
    const std::vector<uint8_t> img = read_bytes(image_);
    auto round0 = [](uint64_t s, uint64_t i) { return written(s, i, 0); };
    EXPECT_EQ(first_mismatch(img, 1024, 1152, round0), -1);
    EXPECT_EQ(first_mismatch(img, 0, 1024, pattern), -1);
}

}  // namespace
