// `ukvm image create|extract|ls` as a user runs them: images util-linux `fsck.minix -f`
// accepts, images `mkfs.minix -3` made, byte-exact round trips through a host directory,
// corrupt images (exit 2 with a clear message, never a crash) and command-line mistakes.
// None of these need /dev/kvm.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/process.hpp"
#include "ukvm/minixfs.h"

namespace {

namespace fs = std::filesystem;
namespace mfs = ukvm::minixfs;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using ukvm::test::describe;
using ukvm::test::ProcessResult;
using ukvm::test::run_process;

constexpr std::uint64_t K = 1024;
constexpr std::uint64_t M = 1024 * 1024;
constexpr time_t kTime = 1600000000;  // 2020-09-13 12:26:40 UTC

ProcessResult ukvm(std::vector<std::string> args) {
    args.insert(args.begin(), UKVM_BINARY);
    return run_process(args);
}

// util-linux tools live in /usr/sbin, which may not be on a test runner's PATH.
std::string util_linux(const std::string& name) {
    for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
        const std::string p = std::string(dir) + name;
        if (::access(p.c_str(), X_OK) == 0) return p;
    }
    return "";
}

// Pseudo-random bytes, each 1 KiB block stamped with its number so that a block stored
// in the wrong place shows; fast enough for 64 MiB in a sanitizer build.
void write_file(const fs::path& p, std::size_t size, std::uint32_t seed) {
    std::string noise(8 * K, '\0');
    std::uint32_t x = seed * 2654435761u + 7;
    for (char& c : noise) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x);
    }
    std::string data(size, '\0');
    for (std::size_t block = 0; block * K < size; ++block) {
        const std::size_t at = block * K;
        const std::size_t n = std::min<std::size_t>(K, size - at);
        std::memcpy(data.data() + at, noise.data() + (block * 104729) % (7 * K), n);
        std::memcpy(data.data() + at, &block, std::min(n, sizeof block));
    }
    std::ofstream(p, std::ios::binary).write(data.data(), static_cast<std::streamsize>(size));
}

std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::string data(fs::file_size(p), '\0');
    in.read(data.data(), static_cast<std::streamsize>(data.size()));
    return data;
}

void set_mtime(const fs::path& p, time_t t) {
    const timespec times[2] = {{t, 0}, {t, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << p;
}

// Every difference between two trees in type, bytes, permissions, mtime and symlink
// target, one per line; empty when they match.
std::string compare_trees(const fs::path& a, const fs::path& b) {
    std::string diff;
    std::vector<fs::path> names;
    for (const auto& e : fs::recursive_directory_iterator(a)) {
        names.push_back(fs::relative(e.path(), a));
    }
    std::vector<fs::path> other;
    for (const auto& e : fs::recursive_directory_iterator(b)) {
        other.push_back(fs::relative(e.path(), b));
    }
    std::sort(names.begin(), names.end());
    std::sort(other.begin(), other.end());
    if (names != other) diff += "the trees hold different names\n";
    for (const fs::path& n : names) {
        struct stat sa {
        }, sb{};
        if (::lstat((a / n).c_str(), &sa) != 0 || ::lstat((b / n).c_str(), &sb) != 0) {
            diff += n.string() + ": missing\n";
            continue;
        }
        if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) diff += n.string() + ": type\n";
        if (S_ISLNK(sa.st_mode)) {
            if (fs::read_symlink(a / n) != fs::read_symlink(b / n))
                diff += n.string() + ": target\n";
            continue;
        }
        if ((sa.st_mode & 07777) != (sb.st_mode & 07777)) diff += n.string() + ": mode\n";
        if (sa.st_mtime != sb.st_mtime) diff += n.string() + ": mtime\n";
        if (S_ISREG(sa.st_mode) && read_all(a / n) != read_all(b / n)) {
            diff += n.string() + ": contents\n";
        }
    }
    return diff;
}

class ImageCli : public ::testing::Test {
protected:
    void SetUp() override {
        static std::atomic<int> counter{0};
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() / ("ukvm-test-image-" + std::to_string(::getpid()) + "-" +
                                            std::to_string(counter++) + "-" + info->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string path(const std::string& name) const { return (dir_ / name).string(); }

    // Files of every interesting size (around the direct, single- and double-indirect
    // boundaries), nested and empty directories, a directory of 150 files, a symlink and a
    // hard link.
    std::string make_source() {
        const fs::path src = dir_ / "src";
        fs::create_directories(src / "a/b/c/d");
        fs::create_directories(src / "empty");
        fs::create_directories(src / "a/empty2");
        const std::vector<std::pair<std::string, std::size_t>> files = {
            {"zero", 0},
            {"one", 1},
            {"k1023", 1023},
            {"k1024", 1024},
            {"k1025", 1025},
            {"a/seven_k", 7 * K},
            {"a/seven_k1", 7 * K + 1},
            {"a/b/single_end", 263 * K},
            {"a/b/double", 263 * K + 1},
            {"a/b/c/k300", 300 * K},
            {"a/b/c/d/two_m", 2 * M + 4321}};
        std::uint32_t seed = 1;
        for (const auto& [name, size] : files) write_file(src / name, size, seed++);
        // 152 entries of 64 bytes: the directory itself needs an indirect block.
        fs::create_directories(src / "many");
        for (int i = 0; i < 150; ++i)
            write_file(src / "many" / ("entry" + std::to_string(i)), 10, i);
        fs::permissions(src / "one", fs::perms(0600));
        fs::permissions(src / "k1023", fs::perms(0755));
        fs::permissions(src / "a/b", fs::perms(0750));
        fs::create_symlink("b/c/k300", src / "a/link");
        fs::create_hard_link(src / "k1025", src / "a/hard");
        // Children first: giving a directory its mtime after its contents keeps it.
        std::vector<fs::path> all;
        for (const auto& e : fs::recursive_directory_iterator(src)) all.push_back(e.path());
        std::sort(all.rbegin(), all.rend());
        for (const auto& p : all) set_mtime(p, kTime);
        set_mtime(src, kTime);
        return src.string();
    }

    // A temporary file `create` left behind: ".NAME.tmp-XXXXXX".
    std::vector<std::string> leftovers() const {
        std::vector<std::string> found;
        for (const auto& e : fs::directory_iterator(dir_)) {
            const std::string name = e.path().filename().string();
            if (name.find(".tmp-") != std::string::npos) found.push_back(name);
        }
        return found;
    }

    // Expects `fsck.minix -f` to find nothing wrong (or skips without util-linux).
    void expect_fsck_clean(const std::string& image) {
        const std::string fsck = util_linux("fsck.minix");
        if (fsck.empty()) GTEST_SKIP() << "util-linux fsck.minix is not installed";
        const ProcessResult r = run_process({fsck, "-f", image});
        EXPECT_EQ(r.status, 0) << describe(r);
    }

    fs::path dir_;
};

// The error contract for every bad image and bad command line: status 2, one "ukvm: "
// line, no sanitizer report, no signal.
void expect_user_error(const ProcessResult& r, const std::string& phrase) {
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_EQ(r.signal, 0) << describe(r);
    EXPECT_THAT(r.err, StartsWith("ukvm: ")) << describe(r);
    EXPECT_THAT(r.err, HasSubstr(phrase)) << describe(r);
    EXPECT_THAT(r.err, Not(HasSubstr("Sanitizer"))) << describe(r);
    EXPECT_THAT(r.err, Not(HasSubstr("runtime error"))) << describe(r);
}

TEST_F(ImageCli, CreateFromDirPassesFsckAndExtractsIdentically) {
    const std::string src = make_source();
    const std::string img = path("disk.img");
    const ProcessResult made = ukvm({"image", "create", img, "--size", "32M", "--from", src});
    ASSERT_EQ(made.status, 0) << describe(made);
    EXPECT_THAT(made.out, HasSubstr("162 files, 7 directories, 1 symlink"));
    EXPECT_EQ(made.err, "");
    EXPECT_EQ(fs::file_size(img), 32 * M);
    expect_fsck_clean(img);

    const ProcessResult out = ukvm({"image", "extract", img, path("out")});
    ASSERT_EQ(out.status, 0) << describe(out);
    EXPECT_EQ(compare_trees(src, path("out")), "");
    struct stat st {};
    ASSERT_EQ(::stat(path("out/a/hard").c_str(), &st), 0);
    EXPECT_EQ(st.st_nlink, 2u);  // still a hard link of k1025
}

TEST_F(ImageCli, FileUsingTripleIndirectZonesPassesFsck) {
    const fs::path src = dir_ / "src";
    fs::create_directories(src);
    write_file(src / "huge", (7 + 256 + 256 * 256 + 300) * K + 5, 42);
    const std::string img = path("huge.img");
    const ProcessResult made = ukvm({"image", "create", img, "--size", "72M", "--from", src});
    ASSERT_EQ(made.status, 0) << describe(made);
    expect_fsck_clean(img);
    const ProcessResult out = ukvm({"image", "extract", img, path("out")});
    ASSERT_EQ(out.status, 0) << describe(out);
    EXPECT_TRUE(read_all(src / "huge") == read_all(path("out/huge")));
}

TEST_F(ImageCli, EmptyImagePassesFsckAndListsDotAndDotDot) {
    const std::string img = path("empty.img");
    const ProcessResult made = ukvm({"image", "create", img, "--size", "1M"});
    ASSERT_EQ(made.status, 0) << describe(made);
    const ProcessResult ls = ukvm({"image", "ls", img});
    ASSERT_EQ(ls.status, 0) << describe(ls);
    EXPECT_THAT(ls.out, testing::MatchesRegex("drwxr-xr-x +2 +128 [-0-9: ]+ \\.\n"
                                              "drwxr-xr-x +2 +128 [-0-9: ]+ \\.\\.\n"));
    expect_fsck_clean(img);
}

TEST_F(ImageCli, ReadsImagesMadeByMkfsMinix) {
    const std::string mkfs = util_linux("mkfs.minix");
    if (mkfs.empty()) GTEST_SKIP() << "util-linux mkfs.minix is not installed";
    const std::string img = path("mkfs.img");
    std::ofstream(img).close();
    fs::resize_file(img, 4 * M);
    const ProcessResult made = run_process({mkfs, "-3", img});
    ASSERT_EQ(made.status, 0) << describe(made);

    const ProcessResult ls = ukvm({"image", "ls", img, "/"});
    ASSERT_EQ(ls.status, 0) << describe(ls);
    EXPECT_THAT(ls.out, testing::MatchesRegex("drwxr-xr-x +2 +128 [-0-9: ]+ \\.\n"
                                              "drwxr-xr-x +2 +128 [-0-9: ]+ \\.\\.\n"));
    const ProcessResult out = ukvm({"image", "extract", img, path("out")});
    ASSERT_EQ(out.status, 0) << describe(out);
    EXPECT_TRUE(fs::is_empty(path("out")));
}

TEST_F(ImageCli, LsListsOneFileOrADirectory) {
    const std::string src = make_source();
    const std::string img = path("disk.img");
    ASSERT_EQ(ukvm({"image", "create", img, "--size", "8M", "--from", src}).status, 0);
    const ProcessResult one = ukvm({"image", "ls", img, "a/b/c/k300"});
    ASSERT_EQ(one.status, 0) << describe(one);
    EXPECT_EQ(one.out, "-rw-r--r--   1     307200 2020-09-13 12:26 a/b/c/k300\n");
    const ProcessResult dir = ukvm({"image", "ls", img, "/a"});
    ASSERT_EQ(dir.status, 0) << describe(dir);
    EXPECT_THAT(dir.out, HasSubstr("drwxr-x---   3        320 2020-09-13 12:26 b\n"));
    EXPECT_THAT(dir.out,
                HasSubstr("lrwxrwxrwx   1          8 2020-09-13 12:26 link -> b/c/k300\n"));
    EXPECT_THAT(dir.out, HasSubstr("-rw-r--r--   2       1025 2020-09-13 12:26 hard\n"));
    expect_user_error(ukvm({"image", "ls", img, "/a/missing"}), "no such file or directory");
}

// ---- corrupt images ----

class CorruptImage : public ImageCli {
protected:
    // An image with /f (5 KiB), /d/g and /big (2 MiB); returns its path.
    std::string make_image() {
        const fs::path src = dir_ / "src";
        fs::create_directories(src / "d");
        write_file(src / "f", 5 * K, 1);
        write_file(src / "d/g", 100, 2);
        write_file(src / "big", 2 * M, 3);
        const std::string img = path("bad.img");
        const ProcessResult r = ukvm({"image", "create", img, "--size", "4M", "--from", src});
        EXPECT_EQ(r.status, 0) << describe(r);
        return img;
    }

    template <typename T>
    T get(const std::string& img, std::uint64_t offset) {
        T v{};
        std::ifstream f(img, std::ios::binary);
        f.seekg(static_cast<std::streamoff>(offset));
        f.read(reinterpret_cast<char*>(&v), sizeof v);
        return v;
    }
    template <typename T>
    void put(const std::string& img, std::uint64_t offset, const T& v) {
        std::fstream f(img, std::ios::binary | std::ios::in | std::ios::out);
        f.seekp(static_cast<std::streamoff>(offset));
        f.write(reinterpret_cast<const char*>(&v), sizeof v);
    }
    std::uint64_t inode_offset(const std::string& img, std::uint32_t n) {
        const auto s = get<mfs::Superblock>(img, 1024);
        return (2ull + s.imap_blocks + s.zmap_blocks) * K + (n - 1ull) * 64;
    }
    mfs::Inode inode(const std::string& img, std::uint32_t n) {
        return get<mfs::Inode>(img, inode_offset(img, n));
    }
    // The entry `name` in directory inode `dir` (first block only).
    std::uint64_t entry_offset(const std::string& img, std::uint32_t dir, const std::string& name) {
        const std::uint64_t block = inode(img, dir).zone[0] * K;
        for (std::uint64_t i = 0; i < 16; ++i) {
            const auto e = get<mfs::DirEntry>(img, block + i * 64);
            if (e.inode != 0 && name == e.name) return block + i * 64;
        }
        ADD_FAILURE() << "no entry " << name;
        return 0;
    }
    std::uint32_t inode_of(const std::string& img, std::uint32_t dir, const std::string& name) {
        return get<mfs::DirEntry>(img, entry_offset(img, dir, name)).inode;
    }

    // ls and extract both fail with status 2 and `phrase`.
    void expect_rejected(const std::string& img, const std::string& phrase,
                         const std::string& ls_path = "/") {
        expect_user_error(ukvm({"image", "ls", img, ls_path}), phrase);
        expect_user_error(ukvm({"image", "extract", img, path("out")}), phrase);
    }
};

TEST_F(CorruptImage, BadMagic) {
    const std::string img = make_image();
    put<std::uint16_t>(img, 1024 + 24, 0x2468);
    expect_rejected(img, "bad magic 0x2468");
}

TEST_F(CorruptImage, TruncatedFile) {
    const std::string img = make_image();
    fs::resize_file(img, 3 * M);
    expect_rejected(img, "truncated");
    fs::resize_file(img, 100);
    expect_rejected(img, "too few to hold a superblock");
}

TEST_F(CorruptImage, ZonePointerBeyondTheDevice) {
    const std::string img = make_image();
    const std::uint32_t f = inode_of(img, mfs::kRootInode, "f");
    auto in = inode(img, f);
    in.zone[2] = 4096 + 17;  // the device has 4096 blocks
    put(img, inode_offset(img, f), in);
    expect_user_error(ukvm({"image", "extract", img, path("out")}),
                      "zone pointer 4113 is outside the data area");
    // Inside the double-indirect tree of /big.
    const std::uint32_t big = inode_of(img, mfs::kRootInode, "big");
    const auto b = inode(img, big);
    const std::uint32_t level1 = get<std::uint32_t>(img, b.zone[mfs::kDoubleIndirectSlot] * K);
    put<std::uint32_t>(img, level1 * K + 4, 0xfffffff0);
    expect_user_error(ukvm({"image", "extract", img, path("out2")}), "zone pointer 4294967280");
}

TEST_F(CorruptImage, InodeNumberOutOfRangeInADirectory) {
    const std::string img = make_image();
    const auto ninodes = get<mfs::Superblock>(img, 1024).ninodes;
    const std::uint64_t at = entry_offset(img, mfs::kRootInode, "f");
    put<std::uint32_t>(img, at, ninodes + 5);
    expect_rejected(img, "refers to inode " + std::to_string(ninodes + 5));
}

TEST_F(CorruptImage, DirectoryEntryLoop) {
    const std::string img = make_image();
    const std::uint32_t d = inode_of(img, mfs::kRootInode, "d");
    put<std::uint32_t>(img, entry_offset(img, d, "g"), mfs::kRootInode);  // d/g -> /
    expect_user_error(ukvm({"image", "extract", img, path("out")}), "directory loop");
    // A lookup through the loop is finite too: /d/g/d/g/d is just a path.
    const ProcessResult ls = ukvm({"image", "ls", img, "/d/g/d/g/d"});
    EXPECT_EQ(ls.status, 0) << describe(ls);
}

TEST_F(CorruptImage, HugeSize) {
    const std::string img = make_image();
    const std::uint32_t f = inode_of(img, mfs::kRootInode, "f");
    auto in = inode(img, f);
    in.size = 0xffffff00;
    put(img, inode_offset(img, f), in);
    expect_rejected(img, "claims 4294967040 bytes");
}

TEST_F(CorruptImage, NameWithSlash) {
    const std::string img = make_image();
    const std::uint64_t at = entry_offset(img, mfs::kRootInode, "f");
    mfs::DirEntry e = get<mfs::DirEntry>(img, at);
    std::memset(e.name, 0, sizeof e.name);
    std::memcpy(e.name, "../../escape", 12);
    put(img, at, e);
    expect_rejected(img, "contains '/'");
    EXPECT_FALSE(fs::exists(dir_ / "escape"));
    EXPECT_FALSE(fs::exists(dir_.parent_path() / "escape"));
}

// ---- command-line mistakes ----

TEST_F(ImageCli, MissingArgumentsExit2) {
    for (const std::vector<std::string>& args : {std::vector<std::string>{"image"},
                                                 {"image", "create"},
                                                 {"image", "create", path("x.img")},
                                                 {"image", "extract", path("x.img")},
                                                 {"image", "ls"},
                                                 {"image", "frobnicate"}}) {
        const ProcessResult r = ukvm(args);
        EXPECT_EQ(r.status, 2) << describe(r);
    }
    EXPECT_FALSE(fs::exists(path("x.img")));
}

TEST_F(ImageCli, BadSizesExit2AndLeaveNothing) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"12Q", "bad size '12Q'"},
        {"1.5M", "bad size"},
        {"8K", "too small"},
        {"5G", "too large"},
        {"1000", "not a multiple of 1024"}};
    for (const auto& [size, phrase] : cases) {
        SCOPED_TRACE(size);
        expect_user_error(ukvm({"image", "create", path("x.img"), "--size", size}), phrase);
    }
    EXPECT_FALSE(fs::exists(path("x.img")));
    EXPECT_THAT(leftovers(), testing::IsEmpty());
}

TEST_F(ImageCli, RefusesToOverwriteWithoutForce) {
    const std::string img = path("disk.img");
    std::ofstream(img) << "precious";
    expect_user_error(ukvm({"image", "create", img, "--size", "1M"}),
                      "already exists (use --force");
    EXPECT_EQ(read_all(img), "precious");
    const ProcessResult r = ukvm({"image", "create", img, "--size", "1M", "--force"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(fs::file_size(img), 1 * M);
    expect_fsck_clean(img);
    EXPECT_THAT(leftovers(), testing::IsEmpty());

    fs::create_directories(path("adir"));
    expect_user_error(ukvm({"image", "create", path("adir"), "--size", "1M", "--force"}),
                      "not a regular file");
}

TEST_F(ImageCli, MissingOrBadFromDirectoryExits2) {
    expect_user_error(
        ukvm({"image", "create", path("x.img"), "--size", "1M", "--from", path("nope")}),
        "No such file or directory");
    std::ofstream(path("plain")) << "x";
    expect_user_error(
        ukvm({"image", "create", path("x.img"), "--size", "1M", "--from", path("plain")}),
        "not a directory");
    EXPECT_FALSE(fs::exists(path("x.img")));
    EXPECT_THAT(leftovers(), testing::IsEmpty());
}

TEST_F(ImageCli, TooSmallOrTooFewInodesExit2AndLeaveNothing) {
    const std::string src = make_source();
    expect_user_error(ukvm({"image", "create", path("x.img"), "--size", "1M", "--from", src}),
                      "use a larger --size");
    expect_user_error(
        ukvm({"image", "create", path("x.img"), "--size", "32M", "--from", src, "--inodes", "10"}),
        "but --inodes is 10");
    expect_user_error(ukvm({"image", "create", path("x.img"), "--size", "32M", "--inodes", "0"}),
                      "--inodes must be at least 1");
    EXPECT_FALSE(fs::exists(path("x.img")));
    EXPECT_THAT(leftovers(), testing::IsEmpty());
}

TEST_F(ImageCli, TooLongNamesExit2AndOtherFileTypesAreSkipped) {
    const fs::path src = dir_ / "src";
    fs::create_directories(src);
    std::ofstream(src / std::string(61, 'n')) << "x";
    expect_user_error(ukvm({"image", "create", path("x.img"), "--size", "1M", "--from", src}),
                      "at most 60");
    fs::remove(src / std::string(61, 'n'));
    std::ofstream(src / std::string(60, 'n')) << "x";
    ASSERT_EQ(::mkfifo((src / "fifo").c_str(), 0644), 0);
    const ProcessResult r = ukvm({"image", "create", path("x.img"), "--size", "1M", "--from", src});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("ukvm: warning: skipping"));
    EXPECT_THAT(r.err, HasSubstr("fifo"));
    const ProcessResult ls = ukvm({"image", "ls", path("x.img")});
    EXPECT_THAT(ls.out, HasSubstr(std::string(60, 'n')));
    EXPECT_THAT(ls.out, Not(HasSubstr("fifo")));
}

}  // namespace
