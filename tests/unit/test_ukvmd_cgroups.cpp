// ukvmd's cgroup v2 probing and per-guest setup, against a directory laid out like a
// cgroup2 filesystem (the real one may not offer the controllers on a test host).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "vmm/ukvmd/cgroups.hpp"

namespace ukvm::ukvmd {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(Cgroups, FindsTheCgroup2MountAndPath) {
    const std::string mountinfo =
        "31 1 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw\n";
    EXPECT_EQ(cgroup2_mount(mountinfo), fs::path("/sys/fs/cgroup/unified"));
    EXPECT_EQ(cgroup2_mount("31 1 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw\n"),
              std::nullopt);
    EXPECT_EQ(cgroup2_path("4:memory:/x\n0::/system.slice/ukvmd.service\n"),
              "/system.slice/ukvmd.service");
    EXPECT_EQ(cgroup2_path("4:memory:/x\n"), std::nullopt);
}

class FakeCgroupFs : public ::testing::Test {
protected:
    void SetUp() override {
        static std::atomic<int> n{0};
        root_ = fs::temp_directory_path() /
                ("ukvm-cgroupfs-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
        fs::create_directories(root_ / "ukvmd");
        write("ukvmd/cgroup.procs", "");
        write("cgroup.subtree_control", "");
    }
    void TearDown() override { fs::remove_all(root_); }
    void write(const std::string& name, const std::string& text) {
        std::ofstream(root_ / name) << text;
    }
    std::string read(const std::string& name) {
        std::ifstream in(root_ / name);
        std::ostringstream s;
        s << in.rdbuf();
        return s.str();
    }
    fs::path root_;
};

TEST_F(FakeCgroupFs, SaysWhichControllersAreMissing) {
    write("cgroup.controllers", "hugetlb pids\n");
    const Cgroups c = Cgroups::at(root_, root_ / "ukvmd");
    EXPECT_FALSE(c.available());
    EXPECT_THAT(c.reason(), HasSubstr("does not offer the memory and cpu controllers"));
    std::string why;
    EXPECT_FALSE(c.prepare("g", {64 << 20, 1}, why));
    EXPECT_EQ(why, c.reason());

    write("cgroup.controllers", "cpu io pids\n");
    EXPECT_THAT(Cgroups::at(root_, root_ / "ukvmd").reason(),
                HasSubstr("does not offer the memory controller"));
}

TEST_F(FakeCgroupFs, DelegatesAndSetsLimits) {
    write("cgroup.controllers", "cpuset cpu io memory pids\n");
    const Cgroups c = Cgroups::at(root_, root_ / "ukvmd");
    ASSERT_TRUE(c.available()) << c.reason();
    EXPECT_EQ(read("ukvmd/cgroup.procs"), "0");  // ukvmd moved itself to a leaf
    EXPECT_EQ(read("cgroup.subtree_control"), "+memory +cpu");
    // The kernel creates a new cgroup's control files; the fake needs them up front.
    fs::create_directories(root_ / "ukvm-g");
    for (const char* f : {"memory.max", "cpu.max", "cgroup.procs"})
        write(std::string("ukvm-g/") + f, "");
    std::string why;
    const auto procs = c.prepare("g", {std::uint64_t{96} << 20, 1}, why);
    ASSERT_TRUE(procs) << why;
    EXPECT_GE(procs->get(), 0);
    EXPECT_EQ(read("ukvm-g/memory.max"), std::to_string(std::uint64_t{96} << 20));
    EXPECT_EQ(read("ukvm-g/cpu.max"), "100000 100000");
}

TEST_F(FakeCgroupFs, AFailedWriteIsReportedNotFatal) {
    write("cgroup.controllers", "cpu memory\n");
    fs::remove(root_ / "cgroup.subtree_control");
    fs::create_directory(root_ / "cgroup.subtree_control");  // cannot be written
    const Cgroups c = Cgroups::at(root_, root_ / "ukvmd");
    EXPECT_FALSE(c.available());
    EXPECT_THAT(c.reason(), HasSubstr("cannot write '+memory +cpu'"));
}

}  // namespace
}  // namespace ukvm::ukvmd
