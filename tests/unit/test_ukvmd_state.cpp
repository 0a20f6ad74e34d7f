// ukvmd's state directory (atomic replacement, layout) and the guest.toml it writes for
// `ukvm run`, read back by the real config loader.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "vmm/config.hpp"
#include "vmm/ukvmd/guest_toml.hpp"
#include "vmm/ukvmd/state_dir.hpp"

namespace ukvm::ukvmd {
namespace {

namespace fs = std::filesystem;

class StateTest : public ::testing::Test {
protected:
    void SetUp() override {
        static std::atomic<int> n{0};
        root_ = fs::temp_directory_path() /
                ("ukvm-state-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
        fs::remove_all(root_);
    }
    void TearDown() override { fs::remove_all(root_); }
    fs::path root_;
};

TEST_F(StateTest, LayoutAndPrivateDirectories) {
    const StateDir dir(root_);
    for (const char* sub : {"domains", "run", "logs"}) {
        struct stat st {};
        ASSERT_EQ(::stat((root_ / sub).c_str(), &st), 0) << sub;
        EXPECT_EQ(st.st_mode & 0777, 0700u) << sub;
    }
    EXPECT_EQ(dir.definition("g"), root_ / "domains/g.xml");
    EXPECT_EQ(dir.autostart_flag("g"), root_ / "domains/g.autostart");
    EXPECT_EQ(dir.run_config("g"), root_ / "run/g.toml");
    EXPECT_EQ(dir.pid_file("g"), root_ / "run/g.pid");
    EXPECT_EQ(dir.exit_file("g"), root_ / "run/g.exit");
    EXPECT_EQ(dir.log("g"), root_ / "logs/g.log");
}

TEST_F(StateTest, AtomicWritesReplaceAndLeaveNoTemporary) {
    const StateDir dir(root_);
    write_file_atomically(dir.definition("b"), "<domain/>");
    write_file_atomically(dir.definition("a"), "first");
    write_file_atomically(dir.definition("a"), "second");
    EXPECT_EQ(read_small_file(dir.definition("a")), "second");
    EXPECT_FALSE(fs::exists(dir.definition("a").string() + ".tmp"));
    write_file_atomically(dir.autostart_flag("a"), "");
    // Only definitions count as domains, sorted; flags and temporaries do not.
    std::ofstream(root_ / "domains/c.xml.tmp") << "torn";
    EXPECT_EQ(dir.defined_names(), (std::vector<std::string>{"a", "b"}));
    struct stat st {};
    ASSERT_EQ(::stat(dir.definition("a").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    remove_file(dir.autostart_flag("a"));
    remove_file(dir.autostart_flag("a"));  // already gone: fine
    EXPECT_FALSE(fs::exists(dir.autostart_flag("a")));
    EXPECT_EQ(read_small_file(root_ / "nope"), std::nullopt);
    EXPECT_THROW(write_file_atomically(root_ / "missing-dir/x", "x"), std::system_error);
}

TEST_F(StateTest, GuestTomlReadsBackThroughTheConfigLoader) {
    fs::create_directories(root_);
    std::ofstream(root_ / "kernel.elf") << "k";
    std::ofstream(root_ / "pm") << "m";
    GuestConfig c;
    c.name = "tricky.name-1";
    c.memory_mib = 96;
    c.kernel = root_ / "kernel.elf";
    c.cmdline = "quote=\" backslash=\\ newline=\n tab=\t unicode=\xc3\xa9 #not-a-comment";
    c.modules.push_back({root_ / "pm", "pm --x='1' \"2\""});
    std::ofstream(root_ / "disk.img") << std::string(4096, '\0');
    c.disks.push_back({root_ / "disk.img", true, "SER-1"});
    c.console.output = ConsoleOutput::Stdout;
    c.console.input = ConsoleInput::None;
    NetConfig user;
    user.mac = {0x52, 0x54, 0, 1, 2, 3};
    c.nets.push_back(user);
    NetConfig sw;
    sw.backend = NetBackendKind::Switch;
    sw.switch_name = "lan-0";
    sw.mac = {0x52, 0x54, 0, 1, 2, 4};
    c.nets.push_back(sw);
    NetConfig tap;
    tap.backend = NetBackendKind::Tap;
    tap.ifname = "tap9";
    tap.mac = {0x52, 0x54, 0, 1, 2, 5};
    c.nets.push_back(tap);
    const fs::path toml = root_ / "guest.toml";
    std::ofstream(toml) << to_guest_toml(c);
    const GuestConfig back = load_config(toml);
    EXPECT_EQ(back.name, c.name);
    EXPECT_EQ(back.memory_mib, 96u);
    EXPECT_EQ(back.vcpus, 1u);
    EXPECT_EQ(back.kernel, c.kernel);
    EXPECT_EQ(back.cmdline, c.cmdline);
    ASSERT_EQ(back.modules.size(), 1u);
    EXPECT_EQ(back.modules[0].path, c.modules[0].path);
    EXPECT_EQ(back.modules[0].args, c.modules[0].args);
    ASSERT_EQ(back.disks.size(), 1u);
    EXPECT_EQ(back.disks[0].path, root_ / "disk.img");
    EXPECT_TRUE(back.disks[0].read_only);
    EXPECT_EQ(back.disks[0].serial, "SER-1");
    ASSERT_EQ(back.nets.size(), 3u);
    EXPECT_EQ(back.nets[0].backend, NetBackendKind::User);
    EXPECT_EQ(back.nets[0].mac, c.nets[0].mac);
    EXPECT_EQ(back.nets[1].backend, NetBackendKind::Switch);
    EXPECT_EQ(back.nets[1].switch_name, "lan-0");
    EXPECT_EQ(back.nets[1].mac, c.nets[1].mac);
    EXPECT_EQ(back.nets[2].backend, NetBackendKind::Tap);
    EXPECT_EQ(back.nets[2].ifname, "tap9");
    EXPECT_EQ(back.nets[2].mac, c.nets[2].mac);
    EXPECT_EQ(back.console.output, ConsoleOutput::Stdout);
    EXPECT_EQ(back.console.input, ConsoleInput::None);
}

}  // namespace
}  // namespace ukvm::ukvmd
