// The vblk test guest drives a virtio-blk disk through PCI under /dev/kvm.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "tests/integration/process.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ukvm::test::describe;
using ukvm::test::ProcessOptions;
using ukvm::test::ProcessResult;
using ukvm::test::run_process;

std::string read_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class VirtioBlkBoot : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable";
        std::string templ = (fs::temp_directory_path() / "ukvm-virtio-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
        std::string image(64 * 1024, '\0');
        const std::string hello = "hello from sector 0";
        image.replace(0, hello.size(), hello);
        std::ofstream(dir_ / "disk.img", std::ios::binary) << image;
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    ProcessResult boot(const std::string& cmdline, const std::string& disk_extra = "",
                       std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
        const fs::path kernel = fs::path(UKVM_GUEST_DIR) / "tests" / "guests" / "vblk.elf";
        EXPECT_TRUE(fs::exists(kernel)) << kernel << " is missing: build the guests first";
        std::ostringstream toml;
        toml << "name = 'vblk'\nkernel = '" << kernel.string() << "'\ncmdline = '" << cmdline
             << "'\n[console]\ninput = 'none'\n[[disk]]\npath = 'disk.img'\nserial = "
                "'ukvm-serial-1'\n"
             << disk_extra;
        std::ofstream(dir_ / "guest.toml") << toml.str();
        ProcessOptions options;
        options.timeout = timeout;
        return run_process({UKVM_BINARY, "run", (dir_ / "guest.toml").string()}, options);
    }

    std::string sector(int n) { return read_file(dir_ / "disk.img").substr(n * 512, 512); }

    fs::path dir_;
};

TEST_F(VirtioBlkBoot, ReadWriteFlushGetId) {
    const ProcessResult r = boot("");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("host bridge: 12378086"));
    EXPECT_THAT(r.out, HasSubstr("virtio-blk at slot 1, bar0 0xc0000000, irq line 16"));
    EXPECT_THAT(r.out, HasSubstr("capacity 128 sectors"));
    EXPECT_THAT(r.out, HasSubstr("serial \"ukvm-serial-1\""));
    EXPECT_THAT(r.out, HasSubstr("data \"hello from sector 0\""));
    EXPECT_THAT(r.out, HasSubstr("read past end: status 1"));
    EXPECT_EQ(sector(1).substr(0, 25), "written by the vblk guest");
}

TEST_F(VirtioBlkBoot, ReadOnlyDiskRefusesWrites) {
    const ProcessResult r = boot("ro=1", "read_only = true\n");
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("write: used 1 status 1"));
    EXPECT_EQ(sector(1), std::string(512, '\0'));
}

TEST_F(VirtioBlkBoot, FlushedWriteSurvivesKill9) {
    // The guest spins after its FLUSH; the timeout SIGKILLs ukvm.
    const ProcessResult r = boot("hang=1", "", std::chrono::seconds(5));
    EXPECT_TRUE(r.timed_out) << describe(r);
    ASSERT_THAT(r.out, HasSubstr("flushed, hanging")) << describe(r);
    EXPECT_EQ(sector(1).substr(0, 25), "written by the vblk guest");
}

TEST_F(VirtioBlkBoot, InterruptsReachTheGuest) {
    const ProcessResult r = boot("irq=1");
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("irq: 3 interrupts, ISR values: 1 1 1"));
}

TEST_F(VirtioBlkBoot, MisbehavingDriverGetsNeedsResetNotACrash) {
    const ProcessResult r = boot("loop=1");
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("a descriptor chain loops; device needs reset"));
    EXPECT_THAT(r.out, HasSubstr("after a loop: status 0x4f"));
}

TEST_F(VirtioBlkBoot, MissingImageIsAConfigError) {
    fs::remove(dir_ / "disk.img");
    const ProcessResult r = boot("");
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("disk[0].path: disk image '"));
    EXPECT_THAT(r.err, HasSubstr("disk.img' does not exist"));
}

}  // namespace

// The vcon test guest drives the virtio-console ([console] virtio = true) under /dev/kvm:
// its transmitq output reaches ukvm's stdout, and ukvm's stdin reaches its receiveq once it
// runs the device (before that, input goes to COM1).
namespace {

class VirtioConsoleBoot : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable";
        std::string templ = (fs::temp_directory_path() / "ukvm-vcon-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    ProcessResult boot(const std::string& cmdline, bool virtio,
                       std::vector<ProcessOptions::Step> script) {
        const fs::path kernel = fs::path(UKVM_GUEST_DIR) / "tests" / "guests" / "vcon.elf";
        EXPECT_TRUE(fs::exists(kernel)) << kernel << " is missing: build the guests first";
        std::ostringstream toml;
        toml << "name = 'vcon'\nkernel = '" << kernel.string() << "'\ncmdline = '" << cmdline
             << "'\n[console]\ninput = 'stdin'\nvirtio = " << (virtio ? "true" : "false") << "\n";
        std::ofstream(dir_ / "guest.toml") << toml.str();
        ProcessOptions options;
        options.timeout = std::chrono::seconds(60);
        options.has_input = true;
        options.script = std::move(script);
        return run_process({UKVM_BINARY, "run", (dir_ / "guest.toml").string()}, options);
    }

    fs::path dir_;
};

TEST_F(VirtioConsoleBoot, OutputAndInputGoThroughTheDevice) {
    const ProcessResult r = boot("", true, {{"hello from virtio-console\n", "ping\nquit\n"}});
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("virtio-console at slot 1, class 780, irq line 11"));
    EXPECT_THAT(r.out, HasSubstr("features lo 0x0, 2 queues"));
    EXPECT_THAT(r.out, HasSubstr("vcon got: ping\nvcon got: quit\n")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("vcon: done, failures 0"));
}

TEST_F(VirtioConsoleBoot, AWritableTransmitBufferGetsNeedsResetNotACrash) {
    const ProcessResult r = boot("bad=1", true, {{"hello from virtio-console\n", "quit\n"}});
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("a virtio-console transmit buffer is device-writable"));
    EXPECT_THAT(r.out, HasSubstr("after a writable transmit buffer: status 0x4f"));
}

TEST_F(VirtioConsoleBoot, NoDeviceUnlessConfigured) {
    const ProcessResult r = boot("", false, {});
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 1) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("no virtio-console"));
}

}  // namespace
