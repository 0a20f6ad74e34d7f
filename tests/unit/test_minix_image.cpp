// MinixImage and the `ukvm image` handlers without the binary: formatting, files at every
// zone depth, names, links, full images, and hostile images, each of which must end in an
// ImageError that says what is wrong (never a crash, a hang or another exception).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ukvm/minixfs.h"
#include "vmm/image/image_cli.hpp"
#include "vmm/image/minix_image.hpp"

namespace {

namespace fs = std::filesystem;
namespace mfs = ukvm::minixfs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ukvm::DirectoryEntry;
using ukvm::FileAttributes;
using ukvm::ImageError;
using ukvm::MinixImage;

constexpr std::uint32_t kTime = 1700000000;  // 2023-11-14 22:13 UTC
constexpr std::uint64_t K = 1024;
constexpr std::uint64_t M = 1024 * 1024;

std::vector<std::uint8_t> pattern(std::size_t n, std::uint32_t seed) {
    std::vector<std::uint8_t> v(n);
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& b : v) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b = static_cast<std::uint8_t>(x);
    }
    return v;
}

// Hands out `data` in pieces of at most `chunk` bytes, to exercise short reads.
ukvm::ByteSource source_of(const std::vector<std::uint8_t>& data, std::size_t chunk = SIZE_MAX) {
    auto pos = std::make_shared<std::size_t>(0);
    return [&data, pos, chunk](std::span<std::uint8_t> out) {
        const std::size_t n = std::min({out.size(), data.size() - *pos, chunk});
        if (n != 0) std::memcpy(out.data(), data.data() + *pos, n);
        *pos += n;
        return n;
    };
}

std::vector<std::uint8_t> contents(const MinixImage& image, std::uint32_t number) {
    std::vector<std::uint8_t> out(image.inode(number).size);
    image.read_file(number, [&](std::uint64_t offset, std::span<const std::uint8_t> bytes) {
        ASSERT_LE(offset + bytes.size(), out.size());
        std::memcpy(out.data() + offset, bytes.data(), bytes.size());
    });
    return out;
}

std::vector<std::string> names(const std::vector<DirectoryEntry>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back(e.name);
    return out;
}

// Raw access to an image file, for planting corruption.
class RawImage {
public:
    explicit RawImage(fs::path path) : path_(std::move(path)) {}

    template <typename T>
    T get(std::uint64_t offset) const {
        T value{};
        std::ifstream f(path_, std::ios::binary);
        f.seekg(static_cast<std::streamoff>(offset));
        f.read(reinterpret_cast<char*>(&value), sizeof value);
        EXPECT_TRUE(f.good()) << "reading " << path_ << " at " << offset;
        return value;
    }
    template <typename T>
    void put(std::uint64_t offset, const T& value) const {
        std::fstream f(path_, std::ios::binary | std::ios::in | std::ios::out);
        f.seekp(static_cast<std::streamoff>(offset));
        f.write(reinterpret_cast<const char*>(&value), sizeof value);
        ASSERT_TRUE(f.good()) << "writing " << path_ << " at " << offset;
    }

    mfs::Superblock super() const { return get<mfs::Superblock>(1024); }
    void put_super(const mfs::Superblock& s) const { put(1024, s); }
    std::uint64_t inode_offset(std::uint32_t number) const {
        const mfs::Superblock s = super();
        return (2ull + s.imap_blocks + s.zmap_blocks) * K + (number - 1ull) * sizeof(mfs::Inode);
    }
    mfs::Inode inode(std::uint32_t number) const { return get<mfs::Inode>(inode_offset(number)); }
    void put_inode(std::uint32_t number, const mfs::Inode& inode) const {
        put(inode_offset(number), inode);
    }
    // Where the entry `name` sits in directory `dir`'s first block.
    std::uint64_t entry_offset(std::uint32_t dir, const std::string& name) const {
        const std::uint64_t block = inode(dir).zone[0] * K;
        for (std::uint64_t i = 0; i < mfs::kDirEntriesPerBlock; ++i) {
            const auto e = get<mfs::DirEntry>(block + i * sizeof(mfs::DirEntry));
            if (e.inode != 0 && std::string(e.name, ::strnlen(e.name, mfs::kNameMax)) == name)
                return block + i * sizeof(mfs::DirEntry);
        }
        ADD_FAILURE() << "no entry " << name << " in directory inode " << dir;
        return 0;
    }
    void put_entry(std::uint32_t dir, const std::string& name, const mfs::DirEntry& e) const {
        put(entry_offset(dir, name), e);
    }

private:
    fs::path path_;
};

mfs::DirEntry entry(std::uint32_t inode, const std::string& name) {
    mfs::DirEntry e{};
    e.inode = inode;
    std::memcpy(e.name, name.data(), std::min<std::size_t>(name.size(), mfs::kNameMax));
    return e;
}

// Removes a tree whatever modes an extraction gave it.
void force_remove(const fs::path& p) {
    std::error_code ec;
    if (fs::is_directory(fs::symlink_status(p, ec))) {
        ::chmod(p.c_str(), 0700);
        for (const auto& e : fs::directory_iterator(p, ec)) force_remove(e.path());
    }
    fs::remove(p, ec);
}

class MinixImageTest : public ::testing::Test {
protected:
    void SetUp() override {
        static std::atomic<int> counter{0};
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() / ("ukvm-test-minix-" + std::to_string(::getpid()) + "-" +
                                            std::to_string(counter++) + "-" + info->name());
        force_remove(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { force_remove(dir_); }

    fs::path path(const std::string& name) const { return dir_ / name; }

    MinixImage make(const std::string& name, std::uint64_t size, std::uint32_t inodes = 0) {
        const fs::path p = path(name);
        ukvm::Fd fd(::open(p.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        EXPECT_TRUE(fd.valid()) << p;
        return MinixImage::format(std::move(fd), p.string(), {size, inodes, kTime});
    }

    // A small tree: /a/b/file (3000 bytes), /hello (5 bytes), /big (300 KiB), /a/link -> b/file
    fs::path make_tree(const std::string& name) {
        MinixImage image = make(name, 2 * M);
        hello_ = pattern(5, 1);
        big_ = pattern(300 * K, 2);
        file_ = pattern(3000, 3);
        a_ = image.add_directory(mfs::kRootInode, "a", {0755, kTime});
        b_ = image.add_directory(a_, "b", {0750, kTime});
        file_ino_ = image.add_file(b_, "file", {0644, kTime}, source_of(file_));
        hello_ino_ = image.add_file(mfs::kRootInode, "hello", {0600, kTime}, source_of(hello_));
        big_ino_ = image.add_file(mfs::kRootInode, "big", {0644, kTime}, source_of(big_));
        image.add_symlink(a_, "link", "b/file", {0777, kTime});
        image.flush();
        return path(name);
    }

    // The message of the ImageError `f` throws; a test failure if it throws nothing.
    static std::string error_of(const std::function<void()>& f) {
        try {
            f();
        } catch (const ImageError& e) {
            return e.what();
        }
        ADD_FAILURE() << "no ImageError";
        return "";
    }

    // Opens, lists and extracts an image the way the CLI does.
    void read_everything(const fs::path& image, const fs::path& out) const {
        std::ostringstream sink;
        ukvm::image_ls(image, "/", sink);
        ukvm::image_extract(image, out, sink, sink);
    }

    fs::path dir_;
    std::vector<std::uint8_t> hello_, big_, file_;
    std::uint32_t a_ = 0, b_ = 0, file_ino_ = 0, hello_ino_ = 0, big_ino_ = 0;
};

TEST(ParseSize, AcceptsBytesAndBinarySuffixes) {
    EXPECT_EQ(ukvm::parse_size("4096"), 4096u);
    EXPECT_EQ(ukvm::parse_size("512K"), 512u * 1024);
    EXPECT_EQ(ukvm::parse_size("32M"), 32u << 20);
    EXPECT_EQ(ukvm::parse_size("32m"), 32u << 20);
    EXPECT_EQ(ukvm::parse_size("1G"), 1ull << 30);
}

TEST(ParseSize, RejectsAnythingElse) {
    for (const char* bad :
         {"", "M", "12Q", "-1", "1.5M", "32MB", " 32M", "99999999999999999999", "17179869184G"}) {
        try {
            ukvm::parse_size(bad);
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const ImageError& e) {
            EXPECT_THAT(e.what(), HasSubstr("bad size")) << bad;
        }
    }
}

TEST_F(MinixImageTest, FormatWritesAnEmptyV3FileSystem) {
    const MinixImage made = make("empty.img", 4 * M);
    const mfs::Superblock& s = made.superblock();
    EXPECT_EQ(s.magic, mfs::kMagic);
    EXPECT_EQ(s.block_size, 1024);
    EXPECT_EQ(s.log_zone_size, 0);
    EXPECT_EQ(s.zones, 4096u);
    EXPECT_EQ(s.ninodes, 1376u);  // 4096 / 3, rounded up to whole inode-table blocks
    EXPECT_EQ(s.first_data_zone,
              2 + s.imap_blocks + s.zmap_blocks + mfs::inode_table_blocks(s.ninodes));
    EXPECT_EQ(made.free_inodes(), s.ninodes - 1);
    EXPECT_EQ(made.free_zones(), s.zones - s.first_data_zone - 1u);
    EXPECT_EQ(fs::file_size(path("empty.img")), 4 * M);

    const MinixImage image = MinixImage::open(path("empty.img"));
    const auto root = image.read_directory(mfs::kRootInode);
    ASSERT_EQ(root.size(), 2u);
    EXPECT_EQ(root[0].name, ".");
    EXPECT_EQ(root[0].inode, mfs::kRootInode);
    EXPECT_EQ(root[1].name, "..");
    EXPECT_EQ(root[1].inode, mfs::kRootInode);
    const auto info = image.inode(mfs::kRootInode);
    EXPECT_TRUE(info.is_directory());
    EXPECT_EQ(info.nlinks, 2);
    EXPECT_EQ(info.size, 128u);
    EXPECT_EQ(info.mtime, kTime);
}

TEST_F(MinixImageTest, FormatRejectsImpossibleGeometry) {
    EXPECT_THAT(error_of([&] { make("a.img", 32 * M + 1); }), HasSubstr("not a multiple of 1024"));
    EXPECT_THAT(error_of([&] { make("b.img", 8 * K); }), HasSubstr("too small"));
    EXPECT_THAT(error_of([&] { make("c.img", 8ull << 30); }), HasSubstr("too large"));
    EXPECT_THAT(error_of([&] { make("d.img", 16 * K, 1000); }), HasSubstr("do not fit"));
    EXPECT_THAT(error_of([&] { make("e.img", 4ull << 30, 2000000); }), HasSubstr("too many"));
}

TEST_F(MinixImageTest, FilesOfEverySizeAndZoneDepthRoundTrip) {
    // Direct zones end at 7 KiB, single-indirect at 263 KiB; double-indirect beyond.
    const std::vector<std::size_t> sizes = {
        0, 1, 1023, 1024, 1025, 7 * K, 7 * K + 1, 263 * K, 263 * K + 1, 300 * K, 2 * M + 12345};
    std::vector<std::vector<std::uint8_t>> data;
    std::vector<std::uint32_t> inodes;
    {
        MinixImage image = make("sizes.img", 8 * M);
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            data.push_back(pattern(sizes[i], static_cast<std::uint32_t>(i)));
            // Odd-sized pieces for one file, so that short reads from the source are covered.
            const std::size_t chunk = i == 6 ? 333 : SIZE_MAX;
            inodes.push_back(image.add_file(mfs::kRootInode, "f" + std::to_string(sizes[i]),
                                            {0640, kTime + static_cast<std::uint32_t>(i)},
                                            source_of(data.back(), chunk)));
        }
        image.flush();
    }
    const MinixImage image = MinixImage::open(path("sizes.img"));
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        SCOPED_TRACE("size " + std::to_string(sizes[i]));
        const auto number = image.lookup("/f" + std::to_string(sizes[i]));
        ASSERT_TRUE(number.has_value());
        EXPECT_EQ(*number, inodes[i]);
        const auto info = image.inode(*number);
        EXPECT_TRUE(info.is_regular());
        EXPECT_EQ(info.mode & 07777, 0640);
        EXPECT_EQ(info.size, sizes[i]);
        EXPECT_EQ(info.mtime, kTime + i);
        EXPECT_EQ(contents(image, *number), data[i]);
    }
}

TEST_F(MinixImageTest, TripleIndirectFileRoundTrips) {
    // One block past the double-indirect range, plus a partial block.
    const std::size_t size = (7 + 256 + 256 * 256 + 1) * K + 100;
    const auto data = pattern(size, 99);
    std::uint32_t number;
    {
        MinixImage image = make("triple.img", 72 * M);
        number = image.add_file(mfs::kRootInode, "huge", {0644, kTime}, source_of(data));
        image.flush();
    }
    const MinixImage image = MinixImage::open(path("triple.img"));
    EXPECT_EQ(image.inode(number).size, size);
    EXPECT_TRUE(contents(image, number) == data);
}

TEST_F(MinixImageTest, DirectoriesSymlinksAndLookup) {
    const fs::path p = make_tree("tree.img");
    const MinixImage image = MinixImage::open(p);
    EXPECT_THAT(names(image.read_directory(mfs::kRootInode)),
                ElementsAre(".", "..", "a", "hello", "big"));
    EXPECT_THAT(names(image.read_directory(a_)), ElementsAre(".", "..", "b", "link"));
    EXPECT_EQ(image.inode(mfs::kRootInode).nlinks, 3);  // ".", "..", a/..
    EXPECT_EQ(image.inode(a_).nlinks, 3);
    EXPECT_EQ(image.inode(b_).nlinks, 2);
    EXPECT_EQ(image.inode(b_).mode, mfs::kTypeDirectory | 0750);

    EXPECT_EQ(image.lookup("/"), mfs::kRootInode);
    EXPECT_EQ(image.lookup(""), mfs::kRootInode);
    EXPECT_EQ(image.lookup("a/b/file"), file_ino_);
    EXPECT_EQ(image.lookup("//a///b/file/"), file_ino_);
    EXPECT_EQ(image.lookup("/a/b/../.."), mfs::kRootInode);
    EXPECT_EQ(image.lookup("/a/nope"), std::nullopt);
    EXPECT_THAT(error_of([&] { image.lookup("/hello/x"); }), HasSubstr("not a directory"));

    const auto link = image.lookup("/a/link");
    ASSERT_TRUE(link.has_value());
    EXPECT_TRUE(image.inode(*link).is_symlink());
    EXPECT_EQ(image.read_symlink(*link), "b/file");
    EXPECT_EQ(contents(image, file_ino_), file_);
    EXPECT_EQ(contents(image, big_ino_), big_);
}

TEST_F(MinixImageTest, LargeDirectoriesUseIndirectBlocks) {
    // 16 entries per block: 400 entries take 25 blocks, past the 7 direct zones.
    {
        MinixImage image = make("dir.img", 2 * M);
        const auto dir = image.add_directory(mfs::kRootInode, "d", {0755, kTime});
        for (int i = 0; i < 398; ++i) {
            image.add_directory(dir, "sub" + std::to_string(i), {0700, kTime});
        }
        image.flush();
    }
    const MinixImage image = MinixImage::open(path("dir.img"));
    const auto dir = image.lookup("d");
    ASSERT_TRUE(dir.has_value());
    EXPECT_EQ(image.inode(*dir).size, 400u * 64);
    EXPECT_EQ(image.inode(*dir).nlinks, 2 + 398);
    const auto entries = image.read_directory(*dir);
    ASSERT_EQ(entries.size(), 400u);
    EXPECT_EQ(entries.back().name, "sub397");
    EXPECT_EQ(image.read_directory(entries.back().inode)[1].inode, *dir);  // its ".."
}

TEST_F(MinixImageTest, HardLinksShareAnInode) {
    MinixImage image = make("links.img", 1 * M);
    const auto data = pattern(2000, 7);
    const auto number = image.add_file(mfs::kRootInode, "one", {0644, kTime}, source_of(data));
    const auto dir = image.add_directory(mfs::kRootInode, "d", {0755, kTime});
    image.add_link(dir, "two", number);
    EXPECT_EQ(image.inode(number).nlinks, 2);
    EXPECT_EQ(image.lookup("/d/two"), number);
    EXPECT_THAT(error_of([&] { image.add_link(mfs::kRootInode, "d2", dir); }),
                HasSubstr("cannot hard-link directory"));
}

TEST_F(MinixImageTest, RejectsBadNames) {
    MinixImage image = make("names.img", 1 * M);
    const auto none = [] { return ukvm::ByteSource([](std::span<std::uint8_t>) { return 0; }); };
    image.add_file(mfs::kRootInode, std::string(60, 'x'), {0644, kTime}, none());
    EXPECT_THAT(error_of([&] {
                    image.add_file(mfs::kRootInode, std::string(61, 'y'), {0644, kTime}, none());
                }),
                HasSubstr("1 to 60 bytes"));
    for (const std::string& bad :
         std::vector<std::string>{"", "a/b", ".", "..", std::string("a\0b", 3)}) {
        EXPECT_THAT(error_of([&] {
                        image.add_directory(mfs::kRootInode, bad, {0755, kTime});
                    }),
                    HasSubstr("cannot add"))
            << bad;
    }
    EXPECT_THAT(error_of([&] {
                    image.add_file(mfs::kRootInode, std::string(60, 'x'), {0644, kTime}, none());
                }),
                HasSubstr("already exists"));
    EXPECT_THAT(error_of([&] {
                    image.add_symlink(mfs::kRootInode, "s", std::string(1024, 'z'), {0777, kTime});
                }),
                HasSubstr("target"));
}

TEST_F(MinixImageTest, ReportsAFullImageAndRunningOutOfInodes) {
    MinixImage image = make("full.img", 64 * K);
    const auto data = pattern(80 * K, 5);
    EXPECT_THAT(error_of([&] {
                    image.add_file(mfs::kRootInode, "big", {0644, kTime}, source_of(data));
                }),
                HasSubstr("image full"));

    MinixImage few = make("few.img", 64 * K, 2);
    few.add_directory(mfs::kRootInode, "one", {0755, kTime});
    EXPECT_THAT(error_of([&] {
                    few.add_directory(mfs::kRootInode, "two", {0755, kTime});
                }),
                HasSubstr("out of inodes"));
}

// ---- hostile images: each corruption gives an ImageError naming the problem ----

TEST_F(MinixImageTest, RejectsABadSuperblock) {
    const fs::path p = make_tree("sb.img");
    const RawImage raw(p);
    const mfs::Superblock good = raw.super();
    const auto open_error = [&] { return error_of([&] { MinixImage::open(p); }); };

    auto s = good;
    s.magic = 0x137f;  // MINIX v1
    raw.put_super(s);
    EXPECT_THAT(open_error(), HasSubstr("bad magic 0x137f"));

    s = good;
    s.log_zone_size = 1;
    raw.put_super(s);
    EXPECT_THAT(open_error(), HasSubstr("log_zone_size 1"));

    s = good;
    s.block_size = 4096;
    raw.put_super(s);
    EXPECT_THAT(open_error(), HasSubstr("block size 4096"));

    s = good;
    s.imap_blocks = 0;
    raw.put_super(s);
    EXPECT_THAT(open_error(), HasSubstr("inode-bitmap blocks cannot map"));

    s = good;
    s.ninodes = 0;
    raw.put_super(s);
    EXPECT_THAT(open_error(), HasSubstr("no inodes"));

    s = good;
    s.first_data_zone = 3;
    raw.put_super(s);
    EXPECT_THAT(open_error(), HasSubstr("inside the bitmaps or the inode table"));

    s = good;
    s.zones = good.zones + 100;  // more blocks than the file holds
    raw.put_super(s);
    EXPECT_THAT(open_error(), HasSubstr("truncated"));

    raw.put_super(good);
    EXPECT_NO_THROW(MinixImage::open(p));
}

TEST_F(MinixImageTest, RejectsTruncatedAndTinyFiles) {
    const fs::path p = make_tree("trunc.img");
    fs::resize_file(p, 1 * M);
    EXPECT_THAT(error_of([&] { MinixImage::open(p); }), HasSubstr("truncated"));
    fs::resize_file(p, 1500);
    EXPECT_THAT(error_of([&] { MinixImage::open(p); }), HasSubstr("too few to hold a superblock"));
    fs::resize_file(p, 0);
    EXPECT_THAT(error_of([&] { MinixImage::open(p); }), HasSubstr("too few to hold a superblock"));
    EXPECT_THAT(error_of([&] { MinixImage::open(path("missing.img")); }), HasSubstr("cannot open"));
    EXPECT_THAT(error_of([&] { MinixImage::open(dir_); }), HasSubstr("not a regular file"));
}

TEST_F(MinixImageTest, RejectsARootThatIsNotADirectory) {
    const fs::path p = make_tree("root.img");
    const RawImage raw(p);
    auto root = raw.inode(mfs::kRootInode);
    root.mode = mfs::kTypeRegular | 0644;
    raw.put_inode(mfs::kRootInode, root);
    EXPECT_THAT(error_of([&] { MinixImage::open(p); }), HasSubstr("root inode (1) is not a dir"));
}

TEST_F(MinixImageTest, RejectsZonePointersOutsideTheDataArea) {
    const fs::path p = make_tree("zones.img");
    const RawImage raw(p);
    const auto s = raw.super();
    const auto good = raw.inode(big_ino_);

    for (const std::uint32_t bad : {s.zones, s.zones + 1000, 0xffffffffu, 5u}) {
        SCOPED_TRACE(bad);
        auto inode = good;
        inode.zone[3] = bad;  // a direct zone
        raw.put_inode(big_ino_, inode);
        const MinixImage image = MinixImage::open(p);
        EXPECT_THAT(error_of([&] { contents(image, big_ino_); }),
                    HasSubstr("zone pointer " + std::to_string(bad) + " is outside the data area"));
    }
    // Inside the single-indirect block: 300 KiB uses it fully.
    raw.put_inode(big_ino_, good);
    const std::uint64_t indirect = good.zone[mfs::kIndirectSlot] * K;
    const auto saved = raw.get<std::uint32_t>(indirect + 10 * 4);
    raw.put<std::uint32_t>(indirect + 10 * 4, s.zones + 7);
    {
        const MinixImage image = MinixImage::open(p);
        EXPECT_THAT(error_of([&] { contents(image, big_ino_); }), HasSubstr("outside the data"));
    }
    raw.put<std::uint32_t>(indirect + 10 * 4, saved);
    // The double-indirect pointer itself.
    auto inode = good;
    inode.zone[mfs::kDoubleIndirectSlot] = 1;  // the superblock
    raw.put_inode(big_ino_, inode);
    const MinixImage image = MinixImage::open(p);
    EXPECT_THAT(error_of([&] { contents(image, big_ino_); }), HasSubstr("zone pointer 1 "));
}

TEST_F(MinixImageTest, RejectsBadDirectoryEntries) {
    const fs::path p = make_tree("entries.img");
    const RawImage raw(p);
    const std::uint32_t ninodes = raw.super().ninodes;
    const auto read_root = [&] {
        return error_of([&] { MinixImage::open(p).read_directory(mfs::kRootInode); });
    };

    const std::uint64_t hello_at = raw.entry_offset(mfs::kRootInode, "hello");
    raw.put(hello_at, entry(ninodes + 1, "hello"));
    EXPECT_THAT(read_root(), HasSubstr("entry 'hello' refers to inode " +
                                       std::to_string(ninodes + 1) + ", beyond the last inode"));
    raw.put(hello_at, entry(hello_ino_, "../../etc"));
    EXPECT_THAT(read_root(), HasSubstr("contains '/'"));
    raw.put(hello_at, entry(hello_ino_, "big"));
    EXPECT_THAT(read_root(), HasSubstr("'big' appears twice"));
    raw.put(hello_at, entry(hello_ino_, ""));
    EXPECT_THAT(read_root(), HasSubstr("empty name"));
    raw.put(hello_at, entry(hello_ino_, "hello"));
    EXPECT_NO_THROW(MinixImage::open(p).read_directory(mfs::kRootInode));
    // '.' must be the directory itself.
    raw.put_entry(mfs::kRootInode, ".", entry(a_, "."));
    EXPECT_THAT(read_root(), HasSubstr("'.' refers to inode"));
}

TEST_F(MinixImageTest, RejectsBadInodes) {
    const fs::path p = make_tree("inodes.img");
    const RawImage raw(p);
    const auto good = raw.inode(hello_ino_);
    const auto inode_error = [&] {
        return error_of([&] { MinixImage::open(p).inode(hello_ino_); });
    };

    auto inode = good;
    inode.size = 0xfffffff0;
    raw.put_inode(hello_ino_, inode);
    EXPECT_THAT(inode_error(), HasSubstr("claims 4294967280 bytes"));

    inode = good;
    inode.mode = 0170644;
    raw.put_inode(hello_ino_, inode);
    EXPECT_THAT(inode_error(), HasSubstr("unknown file type"));

    inode = good;
    inode.mode = 0;
    raw.put_inode(hello_ino_, inode);
    EXPECT_THAT(inode_error(), HasSubstr("free (mode 0)"));

    const auto image = MinixImage::open(p);
    EXPECT_THAT(error_of([&] { image.inode(0); }), HasSubstr("out of range"));
    EXPECT_THAT(error_of([&] { image.inode(raw.super().ninodes + 1); }), HasSubstr("out of range"));

    auto dir = raw.inode(a_);
    dir.size = 100;  // not whole entries
    raw.put_inode(a_, dir);
    EXPECT_THAT(error_of([&] { MinixImage::open(p).read_directory(a_); }),
                HasSubstr("directory inode " + std::to_string(a_) + " has size 100"));
    dir.size = 0x7fffffc0;  // far more than the device
    raw.put_inode(a_, dir);
    EXPECT_THAT(error_of([&] { MinixImage::open(p).read_directory(a_); }), HasSubstr("has size"));
}

TEST_F(MinixImageTest, ExtractRefusesDirectoryLoops) {
    const fs::path p = make_tree("loop.img");
    const RawImage raw(p);
    // a/b/file becomes a/b/file -> the root directory: a cycle.
    raw.put_entry(b_, "file", entry(mfs::kRootInode, "file"));
    std::ostringstream out;
    EXPECT_THAT(error_of([&] { ukvm::image_extract(p, path("out"), out, out); }),
                HasSubstr("directory loop"));
    // ... or -> a/b itself, under another name.
    raw.put_entry(b_, "file", entry(b_, "file"));
    EXPECT_THAT(error_of([&] { ukvm::image_extract(p, path("out2"), out, out); }),
                HasSubstr("directory loop"));
    // A '..' that is not the parent.
    raw.put_entry(b_, "file", entry(file_ino_, "file"));
    raw.put_entry(b_, "..", entry(b_, ".."));
    EXPECT_THAT(error_of([&] { ukvm::image_extract(p, path("out3"), out, out); }),
                HasSubstr("not the parent"));
}

// One data block repeated through every level of the zone tree: a 2 GiB file in a 2 MiB
// image. Extract must stop once the tree claims more blocks than the image has.
TEST_F(MinixImageTest, ExtractRefusesZonesSharedIntoABomb) {
    const fs::path p = make_tree("bomb.img");
    const RawImage raw(p);
    const auto s = raw.super();
    auto inode = raw.inode(hello_ino_);
    const std::uint32_t data = inode.zone[0];
    const std::uint32_t single = s.zones - 1, dbl = s.zones - 2, triple = s.zones - 3;
    std::array<std::uint32_t, 256> pointers;
    pointers.fill(data);
    raw.put(single * K, pointers);
    pointers.fill(single);
    raw.put(dbl * K, pointers);
    pointers.fill(dbl);
    raw.put(triple * K, pointers);
    for (std::uint32_t i = 0; i < mfs::kDirectZones; ++i) inode.zone[i] = data;
    inode.zone[mfs::kIndirectSlot] = single;
    inode.zone[mfs::kDoubleIndirectSlot] = dbl;
    inode.zone[mfs::kTripleIndirectSlot] = triple;
    inode.size = mfs::kMaxFileSize;
    raw.put_inode(hello_ino_, inode);

    const auto start = std::chrono::steady_clock::now();
    std::ostringstream out;
    EXPECT_THAT(error_of([&] { ukvm::image_extract(p, path("out"), out, out); }),
                HasSubstr("more data than the image's"));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
    EXPECT_LT(fs::file_size(path("out/hello")), 4 * M);
}

// Symlinks already in the target directory are replaced or refused, never followed.
TEST_F(MinixImageTest, ExtractNeverWritesThroughExistingSymlinks) {
    const fs::path p = make_tree("links.img");
    const fs::path out = path("out"), outside = path("outside");
    fs::create_directories(out);
    fs::create_directories(outside);
    std::ofstream(outside / "victim") << "untouched";
    fs::create_symlink(outside / "victim", out / "hello");  // the image has a file "hello"
    std::ostringstream sink;
    ASSERT_EQ(ukvm::image_extract(p, out, sink, sink), 0);
    EXPECT_FALSE(fs::is_symlink(out / "hello"));
    EXPECT_EQ(fs::file_size(out / "hello"), hello_.size());
    std::ifstream victim(outside / "victim");
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(victim), {}), "untouched");

    // The image's directory "a" where the host has a symlink to elsewhere: refused.
    force_remove(out);
    fs::create_directories(out);
    fs::create_directory_symlink(outside, out / "a");
    EXPECT_THAT(error_of([&] { ukvm::image_extract(p, out, sink, sink); }),
                HasSubstr("cannot open directory"));
    EXPECT_FALSE(fs::exists(outside / "b"));
    EXPECT_FALSE(fs::exists(outside / "link"));
}

TEST_F(MinixImageTest, ExtractAndLsShowTheTree) {
    const fs::path p = make_tree("show.img");
    std::ostringstream out, err;
    ASSERT_EQ(ukvm::image_extract(p, path("out/deeper"), out, err), 0);
    EXPECT_EQ(err.str(), "");
    const fs::path root = path("out/deeper");
    EXPECT_EQ(fs::file_size(root / "big"), big_.size());
    EXPECT_EQ(fs::read_symlink(root / "a/link"), "b/file");
    EXPECT_EQ(fs::status(root / "hello").permissions(), fs::perms(0600));
    EXPECT_EQ(fs::status(root / "a/b").permissions(), fs::perms(0750));
    struct stat st {};
    ASSERT_EQ(::stat((root / "a/b/file").c_str(), &st), 0);
    EXPECT_EQ(st.st_mtime, kTime);
    std::ifstream in(root / "a/b/file", std::ios::binary);
    const std::vector<std::uint8_t> got((std::istreambuf_iterator<char>(in)),
                                        std::istreambuf_iterator<char>());
    EXPECT_EQ(got, file_);

    std::ostringstream ls;
    ukvm::image_ls(p, "/a", ls);
    EXPECT_EQ(ls.str(),
              "drwxr-xr-x   3        256 2023-11-14 22:13 .\n"
              "drwxr-xr-x   3        320 2023-11-14 22:13 ..\n"
              "drwxr-x---   2        192 2023-11-14 22:13 b\n"
              "lrwxrwxrwx   1          6 2023-11-14 22:13 link -> b/file\n");
    std::ostringstream one;
    ukvm::image_ls(p, "a/b/file", one);
    EXPECT_EQ(one.str(), "-rw-r--r--   1       3000 2023-11-14 22:13 a/b/file\n");
    EXPECT_THAT(error_of([&] { ukvm::image_ls(p, "/nope", one); }),
                HasSubstr("no such file or directory"));
}

// Random damage to the metadata and directory blocks of a valid image: reading it back
// must end normally or in an ImageError, never in a crash (the sanitizer build checks
// memory safety too) or in any other exception, and quickly.
TEST_F(MinixImageTest, RandomCorruptionOnlyEverGivesImageErrors) {
    const fs::path good = make_tree("fuzz.img");
    const RawImage raw(good);
    const auto s = raw.super();
    std::ifstream in(good, std::ios::binary);
    const std::vector<char> original((std::istreambuf_iterator<char>(in)),
                                     std::istreambuf_iterator<char>());
    // Superblock, bitmaps, inode table and the first data blocks (directories, the start
    // of the files and the indirect blocks they use).
    const std::uint64_t hot_end = (s.first_data_zone + 24ull) * K;
    std::mt19937 rng(1234);
    const auto start = std::chrono::steady_clock::now();
    int errors = 0;
    for (int round = 0; round < 300; ++round) {
        std::vector<char> bytes = original;
        const int flips = 1 + static_cast<int>(rng() % 8);
        for (int i = 0; i < flips; ++i) {
            // Mostly the superblock and the first inodes, where most damage matters.
            const std::uint64_t offset =
                rng() % 2 ? 1024 + rng() % 32
                          : (rng() % 2 ? raw.inode_offset(1) + rng() % (8 * 64) : rng() % hot_end);
            bytes[offset] = static_cast<char>(rng());
        }
        const fs::path p = path("fuzzed.img");
        std::ofstream(p, std::ios::binary | std::ios::trunc)
            .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        try {
            read_everything(p, path("fuzz-out"));
        } catch (const ImageError&) {
            ++errors;
        } catch (const std::exception& e) {
            ADD_FAILURE() << "round " << round << ": not an ImageError: " << e.what();
        }
        force_remove(path("fuzz-out"));
    }
    EXPECT_GT(errors, 50);  // the damage is found, not ignored
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(120));
}

}  // namespace
