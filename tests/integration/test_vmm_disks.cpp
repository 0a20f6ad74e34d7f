// virtio-blk disks from the config appear on the PCI bus the VMM builds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/flat_guest.hpp"
#include "vmm/boot/multiboot.hpp"
#include "vmm/config.hpp"
#include "vmm/machine.hpp"

namespace ukvm {
namespace {

namespace fs = std::filesystem;
using test::Bytes;

// Reads the vendor/device ID of PCI slot 1 through 0xCF8/0xCFC and halts with 0 when it is
// virtio-blk (0x1af4:0x1042), 7 otherwise.
const Bytes kProbePciSlot1 = {
    0xb8, 0x00, 0x08, 0x00, 0x80, 0x66, 0xba, 0xf8, 0x0c, 0xef, 0x66, 0xba, 0xfc, 0x0c, 0xed,
    0xbb, 0x07, 0x00, 0x00, 0x00, 0x3d, 0xf4, 0x1a, 0x42, 0x10, 0x75, 0x02, 0x31, 0xdb, 0xc7,
    0x05, 0x04, 0x80, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x89, 0x1d, 0x08, 0x80, 0x00, 0x00,
    0xb8, 0x00, 0x80, 0x00, 0x00, 0x66, 0xba, 0x00, 0x05, 0xef, 0xeb, 0xfe};

Bytes image(const Bytes& code, const std::string& data = "") {
    return test::flat_guest_image(code, data);
}

class VmmDisks : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable";
        std::string templ = (fs::temp_directory_path() / "ukvm-disk-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }
    GuestConfig config() {
        const Bytes kernel_bytes = image(kProbePciSlot1);
        const fs::path kernel = dir_ / "probe.bin";
        std::ofstream(kernel, std::ios::binary)
            .write(reinterpret_cast<const char*>(kernel_bytes.data()),
                   static_cast<std::streamsize>(kernel_bytes.size()));
        GuestConfig c;
        c.name = "disk-test";
        c.memory_mib = 16;
        c.kernel = kernel;
        c.console.output = ConsoleOutput::Null;
        c.console.input = ConsoleInput::None;
        return c;
    }
    fs::path disk(const char* name) {
        const fs::path p = dir_ / name;
        std::ofstream(p, std::ios::binary) << std::string(1 << 20, '\0');
        return p;
    }
    fs::path dir_;
};

TEST_F(VmmDisks, DiskIsAVirtioBlkFunctionInSlot1) {
    GuestConfig c = config();
    c.disks.push_back({disk("disk.img"), false, "serial-0"});
    EXPECT_EQ(run_guest(c), 0);
}

TEST_F(VmmDisks, WithoutDisksThereIsNoPciBus) {
    EXPECT_EQ(run_guest(config()), 7);  // 0xCFC reads all-ones
}

}  // namespace
}  // namespace ukvm
