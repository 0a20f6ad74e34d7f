// The guest's file system for real: the MINIX-style system (configs/minix.toml, this
// build's images) with a disk of the test's own, VFS and MFS on the ring-3 virtio-blk
// driver. A guest program writes a tree of files of many sizes and the host checks the
// image with fsck.minix -f and `ukvm image extract`; the guest reads images made by
// mkfs.minix -3 and by `ukvm image create --from`; a read-only disk refuses every write
// with EROFS; a file fsynced before `kill -9` of the VMM is intact on the next boot; and
// the shell's file commands, driven through the console.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/minix_guest.hpp"
#include "tests/integration/process.hpp"
#include "vmm/image/minix_image.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ukvm::test::describe;
using ukvm::test::find_program;
using ukvm::test::make_temp_dir;
using ukvm::test::minix_config;
using ukvm::test::ProcessResult;
using ukvm::test::read_text;
using ukvm::test::run_minix;
using ukvm::test::run_minix_qemu;
using ukvm::test::run_process;

// The same bytes as fstest's (guest-servers/programs/fstest.cpp).
std::string pattern(size_t n, uint32_t seed) {
    std::string v(n, '\0');
    uint32_t x = seed * 2654435761u + 1;
    for (auto& b : v) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b = static_cast<char>(x);
    }
    return v;
}

// fstest's tree: path, size, seed.
struct TreeFile {
    const char* path;
    size_t size;
    uint32_t seed;
};
const TreeFile kTree[] = {
    {"t/empty", 0, 1},          {"t/one", 1, 2},
    {"t/d1/k1m", 1023, 3},      {"t/d1/k1", 1024, 4},
    {"t/d1/k1p", 1025, 5},      {"t/d1/d2/z7m", 7167, 6},
    {"t/d1/d2/z7", 7168, 7},    {"t/d1/d2/z7p", 7169, 8},
    {"t/mid", 100000, 9},       {"t/d1/i263", 269312, 10},
    {"t/d1/i263p", 269313, 11}, {"t/big", 1200000, 12},
};

std::string fnv(const std::string& data) {
    uint32_t h = 2166136261u;
    for (char c : data) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%x", h);
    return buf;
}

class FsBoot : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable";
        config_ = minix_config();  // the shipped root disk is the build's; each test brings its own
        dir_ = make_temp_dir("ukvm-fs-test");
        ASSERT_FALSE(dir_.empty());
        image_ = dir_ / "disk.img";
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    // The config with the test's disk.
    std::string with_disk(bool read_only) const {
        return config_ + "\n[[disk]]\npath = \"" + image_.string() +
               "\"\nread_only = " + (read_only ? "true" : "false") + "\n";
    }

    ProcessResult run_ukvm(const std::string& input, bool read_only = false) {
        return run_minix(dir_ / "minix.toml", with_disk(read_only), input,
                         std::chrono::seconds(240));
    }

    ProcessResult ukvm_image(const std::vector<std::string>& args) {
        std::vector<std::string> argv{UKVM_BINARY, "image"};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_process(argv);
    }

    void create_image(const std::string& size = "16M") {
        ProcessResult r = ukvm_image({"create", image_.string(), "--size", size});
        ASSERT_EQ(r.status, 0) << describe(r);
    }

    void expect_fsck_clean() {
        ProcessResult r = run_process({"fsck.minix", "-f", image_.string()});
        EXPECT_EQ(r.status, 0) << "fsck.minix -f " << image_ << "\n" << describe(r);
    }

    fs::path extract() {
        fs::path out = dir_ / "extracted";
        fs::remove_all(out);
        ProcessResult r = ukvm_image({"extract", image_.string(), out.string()});
        EXPECT_EQ(r.status, 0) << describe(r);
        return out;
    }

    // fsck.minix finds the image clean and `ukvm image extract` gives fstest's tree back.
    void expect_tree_intact() {
        expect_fsck_clean();
        fs::path out = extract();
        for (const TreeFile& f : kTree)
            EXPECT_TRUE(read_text(out / f.path) == pattern(f.size, f.seed)) << f.path;
    }

    std::string config_;
    fs::path dir_, image_;
};

TEST_F(FsBoot, GuestWritesATreeThatFsckAndExtractAccept) {
    create_image();
    ProcessResult r = run_ukvm("fstest write\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("mfs: mounted vblk0")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("fstest: ok wrote 12 files")) << describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr("FAIL"))) << describe(r);
    expect_tree_intact();
    // A second boot reads it all back.
    r = run_ukvm("fstest verify\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("fstest: ok verified 12 files")) << describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr("FAIL"))) << describe(r);
}

TEST_F(FsBoot, KillingTheDiskDriverMidWriteLosesNothing) {
    create_image();
    ProcessResult r = run_ukvm("fstest kill\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("fstest: killed vblk")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("rs: vblk0 restarted")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("fstest: ok wrote 12 files")) << describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr("FAIL"))) << describe(r);
    expect_tree_intact();
}

TEST_F(FsBoot, HostileRequestsAreRefused) {
    create_image();
    ProcessResult r = run_ukvm("fstest hostile\nfstest write\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("fstest: ok hostile requests refused")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("fstest: ok wrote 12 files")) << describe(r);  // still works
    EXPECT_THAT(r.out, Not(HasSubstr("FAIL"))) << describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr("rs: vfs"))) << describe(r);  // no server died
    EXPECT_THAT(r.out, Not(HasSubstr("rs: mfs"))) << describe(r);
    expect_fsck_clean();
}

TEST_F(FsBoot, ShellFileCommands) {
    create_image();
    ProcessResult r = run_ukvm(
        "mkdir /d /e\n"
        "echo hello world > /d/a\n"
        "echo more >> /d/a\n"
        "cat /d/a\n"
        "cp /d/a /d/b\n"
        "mv /d/b /e\n"
        "mv /d/a /c\n"
        "ls /d\n"
        "ls -l /\n"
        "ls /e\n"
        "rmdir /e\n"
        "rm /e/b\n"
        "rmdir /e /d\n"
        "cat /nope\n"
        "rm /\n"
        "echo x > /nodir/f\n"
        "df\n"
        "sync\n"
        "ls\n"
        "echo after the sync > /late\n"
        "poweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("hello world\nmore\n")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("rmdir: /e: directory not empty")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("cat: /nope: no such file or directory")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("rm: /: is a directory")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("echo: /nodir/f: no such file or directory")) << describe(r);
    EXPECT_TRUE(std::regex_search(r.out, std::regex("-rw-r--r-- +1 +17 c\r?\n"))) << describe(r);
    EXPECT_TRUE(std::regex_search(r.out, std::regex("drwxr-xr-x +2 +[0-9]+ d\r?\n")))
        << describe(r);
    EXPECT_TRUE(std::regex_search(r.out, std::regex("ls /e\r?\nb\r?\n"))) << describe(r);
    EXPECT_TRUE(std::regex_search(r.out, std::regex("vblk0 +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+% ")))
        << describe(r);
    expect_fsck_clean();
    fs::path out = extract();
    EXPECT_EQ(read_text(out / "c"), "hello world\nmore\n");
    // Timestamps are the VMM's wall clock.
    {
        ukvm::MinixImage img = ukvm::MinixImage::open(image_);
        auto ino = img.lookup("c");
        ASSERT_TRUE(ino.has_value());
        EXPECT_NEAR(static_cast<double>(img.inode(*ino).mtime),
                    static_cast<double>(::time(nullptr)), 3600.0);
    }
    // poweroff syncs (PM asks VFS before it halts).
    EXPECT_EQ(read_text(out / "late"), "after the sync\n");
    EXPECT_FALSE(fs::exists(out / "d"));
    EXPECT_FALSE(fs::exists(out / "e"));
}

TEST_F(FsBoot, ReadsAnImageFromMkfsMinix) {
    // mkfs.minix -3 makes it; ukvm's MinixImage (what `ukvm image` uses) puts files in.
    { std::ofstream(image_.string()).flush(); }
    fs::resize_file(image_, 8 << 20);
    ProcessResult r = run_process({"mkfs.minix", "-3", image_.string()});
    ASSERT_EQ(r.status, 0) << describe(r);
    const std::string big = pattern(300 * 1024 + 5, 42);
    {
        ukvm::MinixImage img = ukvm::MinixImage::open(image_, true);
        auto source = [](const std::string& data) {
            auto pos = std::make_shared<size_t>(0);
            return [&data, pos](std::span<uint8_t> out) {
                size_t n = std::min(out.size(), data.size() - *pos);
                std::memcpy(out.data(), data.data() + *pos, n);
                *pos += n;
                return n;
            };
        };
        const std::string hello = "hello from mkfs.minix\n";
        img.add_file(1, "hello.txt", {0644, 0}, source(hello));
        uint32_t d = img.add_directory(1, "dir", {0755, 0});
        img.add_file(d, "big", {0644, 0}, source(big));
        img.flush();
    }
    expect_fsck_clean();
    r = run_ukvm("cat /hello.txt\nls /dir\nfstest sum /dir/big\npoweroff\n", true);
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("hello from mkfs.minix\n")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("fstest: ok sum /dir/big " + std::to_string(big.size()) + " " +
                                 fnv(big) + "\n"))
        << describe(r);
}

TEST_F(FsBoot, ReadsAnImageFromUkvmImageCreateFrom) {
    fs::path tree = dir_ / "tree";
    fs::create_directories(tree / "sub" / "deeper");
    std::ofstream(tree / "note") << "made on the host\n";
    const std::string data = pattern(70000, 5);
    std::ofstream(tree / "sub" / "deeper" / "data", std::ios::binary) << data;
    ProcessResult r =
        ukvm_image({"create", image_.string(), "--size", "8M", "--from", tree.string()});
    ASSERT_EQ(r.status, 0) << describe(r);
    r = run_ukvm("ls /sub\ncat /note\nfstest sum /sub/deeper/data\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_TRUE(std::regex_search(r.out, std::regex("ls /sub\r?\n(mfs: .*\r?\n)?deeper\r?\n")))
        << describe(r);
    EXPECT_THAT(r.out, HasSubstr("made on the host\n")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("fstest: ok sum /sub/deeper/data 70000 " + fnv(data)))
        << describe(r);
    expect_fsck_clean();
}

TEST_F(FsBoot, ReadOnlyDiskRefusesWritesWithErofs) {
    fs::path tree = dir_ / "tree";
    fs::create_directories(tree);
    std::ofstream(tree / "keep") << "kept\n";
    ASSERT_EQ(
        ukvm_image({"create", image_.string(), "--size", "4M", "--from", tree.string()}).status, 0);
    const std::string before = read_text(image_);
    ProcessResult r = run_ukvm("fstest ro\necho x > /new\ncat /keep\ndf\npoweroff\n", true);
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("mfs: mounted vblk0")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("read-only")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("fstest: ok read-only checks done")) << describe(r);
    EXPECT_THAT(r.out, Not(HasSubstr("FAIL"))) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("echo: /new: read-only file system")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("kept\n")) << describe(r);
    EXPECT_TRUE(read_text(image_) == before) << "the read-only image changed";
}

// Runs ukvm with `input` on stdin until `marker` appears on its stdout, then kill -9.
std::string run_until_then_kill(const std::vector<std::string>& argv, const std::string& input,
                                const std::string& marker, std::chrono::seconds limit) {
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) return "pipe failed";
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::dup2(out[1], 2);
        ::close(in[1]);
        ::close(out[0]);
        std::vector<char*> a;
        for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
        a.push_back(nullptr);
        ::execv(a[0], a.data());
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    (void)!::write(in[1], input.data(), input.size());
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (text.find(marker) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        pollfd p{out[0], POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) continue;
        char buf[4096];
        ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n <= 0) break;
        text.append(buf, static_cast<size_t>(n));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(in[1]);
    ::close(out[0]);
    return text;
}

TEST_F(FsBoot, FsyncedFileSurvivesKill9OfTheVmm) {
    create_image();
    const fs::path file = dir_ / "minix.toml";
    std::ofstream(file) << with_disk(false);
    std::string text =
        run_until_then_kill({UKVM_BINARY, "run", file.string()}, "fstest fsync\n",
                            "fstest: ok unsynced written", std::chrono::seconds(180));
    ASSERT_THAT(text, HasSubstr("fstest: ok fsynced")) << text;
    ASSERT_THAT(text, HasSubstr("fstest: ok unsynced written")) << text;
    // fsync wrote every dirty block and flushed the disk (FLUSH = fdatasync on the host),
    // so the image was consistent then; /unsynced stayed in MFS's cache (its periodic
    // write-back comes every 5 s, and writes everything when it does), so the image is
    // still consistent, without /unsynced.
    expect_fsck_clean();
    fs::path out = extract();
    EXPECT_TRUE(read_text(out / "synced") == pattern(50000, 77));
    // The next boot reads it.
    ProcessResult r = run_ukvm("fstest sum /synced\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("fstest: ok sum /synced 50000 " + fnv(pattern(50000, 77))))
        << describe(r);
}

TEST_F(FsBoot, SameImageAndDiskUnderQemu) {
    const fs::path qemu = find_program("qemu-system-x86_64");
    if (qemu.empty()) GTEST_SKIP() << "qemu-system-x86_64 is not in PATH";
    fs::path tree = dir_ / "tree";
    fs::create_directories(tree / "sub");
    std::ofstream(tree / "note") << "made on the host\n";
    const std::string data = pattern(300000, 9);
    std::ofstream(tree / "sub" / "data", std::ios::binary) << data;
    ASSERT_EQ(
        ukvm_image({"create", image_.string(), "--size", "8M", "--from", tree.string()}).status, 0);
    ProcessResult r = run_minix_qemu(
        qemu, config_, "ls /sub\ncat /note\nfstest sum /sub/data\necho from qemu > /q\npoweroff\n",
        {"-drive", "file=" + image_.string() + ",if=none,id=d0,format=raw", "-device",
         "virtio-blk-pci,drive=d0,disable-legacy=on"},
        std::chrono::seconds(180));
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, (0 << 1) | 1) << describe(r);  // isa-debug-exit: (status << 1) | 1
    EXPECT_THAT(r.out, HasSubstr("mfs: mounted vblk0")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("made on the host\r\n")) << describe(r);  // COM1: CRLF
    EXPECT_THAT(r.out, HasSubstr("fstest: ok sum /sub/data 300000 " + fnv(data))) << describe(r);
    // What QEMU's guest wrote: fsck.minix, the host's extract, and ukvm's guest agree.
    expect_fsck_clean();
    EXPECT_EQ(read_text(extract() / "q"), "from qemu\n");
    r = run_ukvm("cat /q\nfstest sum /sub/data\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("from qemu\n")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("fstest: ok sum /sub/data 300000 " + fnv(data))) << describe(r);
}

TEST_F(FsBoot, WithoutADiskTheSystemRunsAndFileCommandsSaySo) {
    ProcessResult r =
        run_minix(dir_ / "minix.toml", config_, "ls\necho x > /f\necho alive\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("ls: /: no file system (no disk)")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("echo: /f: no file system (no disk)")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("alive\n")) << describe(r);
}

}  // namespace
