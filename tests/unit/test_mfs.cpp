// The guest's MINIX file system core (guest-servers/fs/mfs.*), built for the host and run
// on image files: it reads images from util-linux mkfs.minix -3 and from ukvm's own
// MinixImage (what `ukvm image create --from` uses); after it writes, fsck.minix -f is
// clean and MinixImage (what `ukvm image extract` uses) reads back the same bytes. Also a
// randomized run against an in-memory model, read-only mounts, and hostile images.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "guest-servers/fs/mfs.hpp"
#include "vmm/image/minix_image.hpp"

namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
    std::vector<uint8_t> v(n);
    uint32_t x = seed * 2654435761u + 1;
    for (auto& b : v) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b = static_cast<uint8_t>(x);
    }
    return v;
}

// An image file as the core's block device; counts the calls.
class FileDevice final : public mfs::BlockDevice {
public:
    explicit FileDevice(const fs::path& path, bool writable = true)
        : fd_(::open(path.c_str(), writable ? O_RDWR : O_RDONLY)) {
        if (fd_ < 0) throw std::runtime_error("cannot open " + path.string());
    }
    ~FileDevice() { ::close(fd_); }
    FileDevice(const FileDevice&) = delete;
    FileDevice& operator=(const FileDevice&) = delete;

    int read_block(uint32_t block, void* data) override {
        ++reads;
        return ::pread(fd_, data, 1024, off_t{block} * 1024) == 1024 ? 0 : mfs::kEIo;
    }
    int write_block(uint32_t block, const void* data) override {
        ++writes;
        return ::pwrite(fd_, data, 1024, off_t{block} * 1024) == 1024 ? 0 : mfs::kEIo;
    }
    int read_blocks(uint32_t first, uint32_t count, void* data) override {
        ++multi_reads;
        return ::pread(fd_, data, count * 1024, off_t{first} * 1024) == count * 1024 ? 0
                                                                                     : mfs::kEIo;
    }
    int write_blocks(uint32_t first, uint32_t count, const void* data) override {
        ++multi_writes;
        return ::pwrite(fd_, data, count * 1024, off_t{first} * 1024) == count * 1024 ? 0
                                                                                      : mfs::kEIo;
    }
    int flush() override {
        ++flushes;
        return ::fdatasync(fd_) == 0 ? 0 : mfs::kEIo;
    }
    int reads = 0, writes = 0, flushes = 0, multi_reads = 0, multi_writes = 0;

private:
    int fd_;
};

struct Shell {
    int status;
    std::string output;
};
Shell run(const std::string& command) {
    Shell r{};
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    if (!p) return {-1, "popen failed"};
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

class MfsTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("ukvm-mfs-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
        image_ = dir_ / "disk.img";
        fs_ = std::make_unique<mfs::FileSystem>();
        fs_->set_time(1700000000);
    }
    void TearDown() override {
        fs_.reset();
        dev_.reset();
        fs::remove_all(dir_);
    }

    void mkfs(const std::string& size_kib = "8192") {
        fs::remove(image_);
        { std::ofstream(image_.string()).flush(); }
        fs::resize_file(image_, std::stoull(size_kib) * 1024);
        Shell r = run("mkfs.minix -3 " + image_.string());
        ASSERT_EQ(r.status, 0) << r.output;
    }
    void mount(bool read_only = false) {
        fs_ = std::make_unique<mfs::FileSystem>();
        fs_->set_time(1700000000);
        dev_ = std::make_unique<FileDevice>(image_, !read_only);
        ASSERT_EQ(fs_->mount(dev_.get(), read_only), 0);
    }
    void expect_fsck_clean() {
        Shell r = run("fsck.minix -f " + image_.string());
        EXPECT_EQ(r.status, 0) << r.output;
    }
    void write_file(const std::string& path, const std::vector<uint8_t>& data) {
        uint32_t ino;
        ASSERT_EQ(fs_->create(path.c_str(), 0644, false, &ino), 0) << path;
        ASSERT_EQ(fs_->truncate(ino, 0), 0);
        // In uneven pieces, to cross block boundaries every way.
        size_t off = 0, piece = 1;
        while (off < data.size()) {
            size_t n = std::min(data.size() - off, piece);
            ASSERT_EQ(fs_->write(ino, static_cast<uint32_t>(off), data.data() + off,
                                 static_cast<uint32_t>(n)),
                      static_cast<int>(n));
            off += n;
            piece = piece * 3 + 7;
            if (piece > 70000) piece = 1000;
        }
    }
    std::vector<uint8_t> read_file(const std::string& path) {
        uint32_t ino;
        EXPECT_EQ(fs_->lookup(path.c_str(), &ino), 0) << path;
        mfs::Stat st{};
        EXPECT_EQ(fs_->stat(ino, &st), 0);
        std::vector<uint8_t> out(st.size);
        EXPECT_EQ(fs_->read(ino, 0, out.data(), st.size), static_cast<int>(st.size));
        return out;
    }
    // What MinixImage (`ukvm image extract`) reads from the image file.
    std::vector<uint8_t> extract(const std::string& path) {
        MinixImage img = MinixImage::open(image_);
        auto ino = img.lookup(path);
        EXPECT_TRUE(ino.has_value()) << path;
        std::vector<uint8_t> out;
        if (!ino) return out;
        img.read_file(*ino, [&](uint64_t off, std::span<const uint8_t> d) {
            if (out.size() < off + d.size()) out.resize(off + d.size());
            std::memcpy(out.data() + off, d.data(), d.size());
        });
        out.resize(img.inode(*ino).size);
        return out;
    }
    std::vector<std::string> list(const std::string& path) {
        uint32_t ino;
        EXPECT_EQ(fs_->lookup(path.c_str(), &ino), 0);
        std::vector<std::string> names;
        mfs::DirEnt e{};
        for (uint32_t pos = 0;;) {
            EXPECT_EQ(fs_->readdir(ino, &pos, &e), 0);
            if (e.ino == 0) break;
            names.push_back(e.name);
        }
        std::sort(names.begin(), names.end());
        return names;
    }

    using MinixImage = ukvm::MinixImage;
    fs::path dir_, image_;
    std::unique_ptr<FileDevice> dev_;
    std::unique_ptr<mfs::FileSystem> fs_;
};

// Sizes around every zone-tree boundary: 7 direct zones, 256 single-indirect, then
// double-indirect (7 + 256 = 263 blocks).
const size_t kSizes[] = {0,
                         1,
                         1023,
                         1024,
                         1025,
                         7 * 1024 - 1,
                         7 * 1024,
                         7 * 1024 + 1,
                         100000,
                         263 * 1024,
                         263 * 1024 + 1,
                         300 * 1024 + 17,
                         1100 * 1024};

TEST_F(MfsTest, WritesATreeThatFsckAndExtractAccept) {
    mkfs();
    mount();
    ASSERT_EQ(fs_->mkdir("/a", 0755), 0);
    ASSERT_EQ(fs_->mkdir("/a/b", 0755), 0);
    ASSERT_EQ(fs_->mkdir("a/b/c", 0700), 0);
    std::map<std::string, std::vector<uint8_t>> files;
    int i = 0;
    for (size_t size : kSizes) {
        std::string path = (i % 3 == 0   ? "/"
                            : i % 3 == 1 ? "/a/"
                                         : "/a/b/c/") +
                           std::string("f") + std::to_string(size);
        files[path] = pattern(size, static_cast<uint32_t>(++i));
        write_file(path, files[path]);
    }
    // A full 60-byte name.
    std::string longname(60, 'n');
    files["/a/" + longname] = pattern(77, 99);
    write_file("/a/" + longname, files["/a/" + longname]);
    // Many entries: the directory grows past one block.
    for (int k = 0; k < 40; ++k) {
        std::string p = "/a/b/many" + std::to_string(k);
        files[p] = pattern(static_cast<size_t>(k * 37), static_cast<uint32_t>(k + 500));
        write_file(p, files[p]);
    }
    for (const auto& [path, data] : files) EXPECT_EQ(read_file(path), data) << path;
    ASSERT_EQ(fs_->sync(), 0);
    EXPECT_EQ(fs_->cache().dirty_count(), 0u);
    EXPECT_GT(dev_->flushes, 0);
    // Write-back went out in runs of consecutive blocks, not block by block.
    EXPECT_GT(dev_->multi_writes, 0);
    EXPECT_LT(dev_->writes + dev_->multi_writes, 600) << "requests for ~3 MiB";
    expect_fsck_clean();
    for (const auto& [path, data] : files) EXPECT_EQ(extract(path), data) << path;
    // And read back after a fresh mount (nothing cached).
    mount();
    for (const auto& [path, data] : files) EXPECT_EQ(read_file(path), data) << path;
    EXPECT_GT(dev_->multi_reads, 0);
    EXPECT_LT(dev_->reads + dev_->multi_reads, 600) << "requests for ~3 MiB (read-ahead)";
}

TEST_F(MfsTest, ReadsWhatMkfsAndUkvmImageWrote) {
    mkfs();
    mount();
    EXPECT_EQ(list("/"), (std::vector<std::string>{".", ".."}));
    mfs::StatFs s{};
    ASSERT_EQ(fs_->statfs(&s), 0);
    EXPECT_EQ(s.block_size, 1024u);
    EXPECT_EQ(s.free_inodes, s.inodes - 1);  // the root
    EXPECT_EQ(s.free_blocks, s.blocks - 1);  // the root's directory block

    // An image MinixImage formats and fills (the code behind `ukvm image create --from`).
    fs::remove(image_);
    std::map<std::string, std::vector<uint8_t>> files;
    {
        int fd = ::open(image_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
        ASSERT_GE(fd, 0);
        MinixImage img = MinixImage::format(ukvm::Fd(fd), image_.string(),
                                            ukvm::FormatOptions{.size_bytes = 8 << 20});
        uint32_t d = img.add_directory(1, "dir", {0755, 0});
        for (size_t size : kSizes) {
            auto data = pattern(size, static_cast<uint32_t>(size));
            std::string name = "g" + std::to_string(size);
            size_t pos = 0;
            img.add_file(size % 2 ? d : 1, name, {0644, 0}, [&](std::span<uint8_t> out) {
                size_t n = std::min(out.size(), data.size() - pos);
                if (n != 0) std::memcpy(out.data(), data.data() + pos, n);  // data() may be null
                pos += n;
                return n;
            });
            files[(size % 2 ? "/dir/" : "/") + name] = data;
        }
        img.flush();
    }
    mount();
    for (const auto& [path, data] : files) EXPECT_EQ(read_file(path), data) << path;
    auto names = list("/dir");
    EXPECT_NE(std::find(names.begin(), names.end(), "g1"), names.end());
}

TEST_F(MfsTest, NamespaceOperationsKeepFsckClean) {
    mkfs();
    mount();
    ASSERT_EQ(fs_->mkdir("/d1", 0755), 0);
    ASSERT_EQ(fs_->mkdir("/d2", 0755), 0);
    ASSERT_EQ(fs_->mkdir("/d1/sub", 0755), 0);
    write_file("/d1/sub/x", pattern(5000, 1));
    write_file("/d1/y", pattern(300 * 1024, 2));
    write_file("/z", pattern(10, 3));

    uint32_t ino;
    EXPECT_EQ(fs_->mkdir("/d1", 0755), mfs::kEExist);
    EXPECT_EQ(fs_->create("/z", 0644, true, &ino), mfs::kEExist);
    EXPECT_EQ(fs_->create("/d1", 0644, false, &ino), mfs::kEIsDir);
    EXPECT_EQ(fs_->lookup("/nope/x", &ino), mfs::kENoEnt);
    EXPECT_EQ(fs_->lookup("/z/x", &ino), mfs::kENotDir);
    EXPECT_EQ(fs_->create((std::string("/") + std::string(61, 'q')).c_str(), 0644, true, &ino),
              mfs::kENameTooLong);
    EXPECT_EQ(fs_->rmdir("/d1"), mfs::kENotEmpty);
    EXPECT_EQ(fs_->rmdir("/z"), mfs::kENotDir);
    EXPECT_EQ(fs_->unlink("/d1"), mfs::kEIsDir);
    EXPECT_EQ(fs_->rename("/d1", "/d1/sub/inside"), mfs::kEInval);
    EXPECT_EQ(fs_->rename("/z", "/d2"), mfs::kEIsDir);

    // A directory moves to another parent: its ".." and both parents' link counts follow.
    ASSERT_EQ(fs_->rename("/d1/sub", "/d2/moved"), 0);
    EXPECT_EQ(read_file("/d2/moved/x"), pattern(5000, 1));
    ASSERT_EQ(fs_->lookup("/d2/moved/..", &ino), 0);
    uint32_t d2;
    ASSERT_EQ(fs_->lookup("/d2", &d2), 0);
    EXPECT_EQ(ino, d2);
    // A file replaces another.
    ASSERT_EQ(fs_->rename("/z", "/d1/y"), 0);
    EXPECT_EQ(read_file("/d1/y"), pattern(10, 3));
    EXPECT_EQ(fs_->lookup("/z", &ino), mfs::kENoEnt);
    // Truncate across the indirect boundaries, then grow with a hole.
    write_file("/big", pattern(600 * 1024, 4));
    ASSERT_EQ(fs_->lookup("/big", &ino), 0);
    ASSERT_EQ(fs_->truncate(ino, 270 * 1024 + 5), 0);
    ASSERT_EQ(fs_->truncate(ino, 100 * 1024 + 5), 0);
    ASSERT_EQ(fs_->truncate(ino, 3000), 0);
    auto expect = pattern(600 * 1024, 4);
    expect.resize(3000);
    EXPECT_EQ(read_file("/big"), expect);
    uint8_t one = 0xab;
    ASSERT_EQ(fs_->write(ino, 400 * 1024, &one, 1), 1);
    expect.resize(400 * 1024 + 1);
    expect.back() = 0xab;
    EXPECT_EQ(read_file("/big"), expect);
    ASSERT_EQ(fs_->sync(), 0);
    expect_fsck_clean();
    EXPECT_EQ(extract("/big"), expect);

    ASSERT_EQ(fs_->unlink("/d2/moved/x"), 0);
    ASSERT_EQ(fs_->rmdir("/d2/moved"), 0);
    ASSERT_EQ(fs_->unlink("/big"), 0);
    EXPECT_EQ(list("/d2"), (std::vector<std::string>{".", ".."}));
    ASSERT_EQ(fs_->sync(), 0);
    expect_fsck_clean();
    // Everything freed: only the live files' zones remain in use.
    mfs::StatFs s{};
    ASSERT_EQ(fs_->statfs(&s), 0);
    EXPECT_EQ(s.inodes - s.free_inodes, 4u);  // /, d1, d2, d1/y
}

TEST_F(MfsTest, AnUnlinkedOpenFileLivesUntilItsLastClose) {
    mkfs();
    mount();
    write_file("/open", pattern(30000, 1));
    write_file("/other", pattern(100, 2));
    uint32_t ino, other;
    ASSERT_EQ(fs_->lookup("/open", &ino), 0);
    ASSERT_EQ(fs_->lookup("/other", &other), 0);
    mfs::StatFs before{};
    ASSERT_EQ(fs_->statfs(&before), 0);
    ASSERT_EQ(fs_->open_ref(ino), 0);
    ASSERT_EQ(fs_->open_ref(ino), 0);
    ASSERT_EQ(fs_->open_ref(other), 0);
    ASSERT_EQ(fs_->unlink("/open"), 0);
    ASSERT_EQ(fs_->rename("/other", "/renamed"), 0);  // a rename is no unlink
    EXPECT_EQ(fs_->lookup("/open", &ino), mfs::kENoEnt);
    std::vector<uint8_t> buf(30000);
    EXPECT_EQ(fs_->read(ino, 0, buf.data(), 30000), 30000);  // still there
    EXPECT_EQ(buf, pattern(30000, 1));
    ASSERT_EQ(fs_->close_ref(ino), 0);
    EXPECT_EQ(fs_->read(ino, 0, buf.data(), 30000), 30000);  // one reference left
    ASSERT_EQ(fs_->close_ref(ino), 0);
    EXPECT_EQ(fs_->close_ref(ino), mfs::kEInval);
    mfs::StatFs after{};
    ASSERT_EQ(fs_->statfs(&after), 0);
    EXPECT_EQ(after.free_inodes, before.free_inodes + 1);
    EXPECT_EQ(after.free_blocks, before.free_blocks + 31);  // 30 data zones, 1 indirect
    ASSERT_EQ(fs_->close_ref(other), 0);
    EXPECT_EQ(read_file("/renamed"), pattern(100, 2));
    ASSERT_EQ(fs_->sync(), 0);
    expect_fsck_clean();
}

TEST_F(MfsTest, RandomOperationsMatchAModel) {
    mkfs("4096");
    mount();
    std::mt19937 rng(12345);
    std::map<std::string, std::vector<uint8_t>> model;
    const char* names[] = {"/r0", "/r1", "/r2", "/r3", "/r4", "/r5"};
    for (int step = 0; step < 400; ++step) {
        const char* p = names[rng() % 6];
        uint32_t ino;
        switch (rng() % 5) {
            case 0:
            case 1: {  // write at a random offset
                ASSERT_EQ(fs_->create(p, 0644, false, &ino), 0);
                auto& m = model[p];
                size_t off = rng() % (m.size() + 3000);
                size_t len = rng() % 20000;
                if (rng() % 8 == 0) len = rng() % 300000;
                auto data = pattern(len, static_cast<uint32_t>(step));
                ASSERT_EQ(fs_->write(ino, static_cast<uint32_t>(off), data.data(),
                                     static_cast<uint32_t>(len)),
                          static_cast<int>(len));
                if (m.size() < off + len) m.resize(off + len);
                std::memcpy(m.data() + off, data.data(), len);
                break;
            }
            case 2:
                if (!model.count(p)) break;
                ASSERT_EQ(fs_->lookup(p, &ino), 0);
                {
                    size_t size = rng() % (model[p].size() + 2000);
                    ASSERT_EQ(fs_->truncate(ino, static_cast<uint32_t>(size)), 0);
                    model[p].resize(size);
                }
                break;
            case 3:
                EXPECT_EQ(fs_->unlink(p), model.erase(p) ? 0 : mfs::kENoEnt);
                break;
            case 4: {
                const char* q = names[rng() % 6];
                if (!model.count(p)) {
                    EXPECT_EQ(fs_->rename(p, q), mfs::kENoEnt);
                    break;
                }
                ASSERT_EQ(fs_->rename(p, q), 0);
                auto data = model[p];
                model.erase(p);
                model[q] = data;
                break;
            }
        }
        if (step % 50 == 49) {
            for (const auto& [path, data] : model) ASSERT_EQ(read_file(path), data) << path;
            ASSERT_EQ(fs_->sync(), 0);
            expect_fsck_clean();
        }
    }
    ASSERT_EQ(fs_->sync(), 0);
    for (const auto& [path, data] : model) EXPECT_EQ(extract(path), data) << path;
}

TEST_F(MfsTest, FullDiskIsENoSpcAndStaysConsistent) {
    mkfs("600");
    mount();
    uint32_t ino;
    ASSERT_EQ(fs_->create("/fill", 0644, true, &ino), 0);
    auto data = pattern(1 << 20, 7);
    int n = fs_->write(ino, 0, data.data(), static_cast<uint32_t>(data.size()));
    ASSERT_GT(n, 0);
    EXPECT_LT(n, 1 << 20);
    EXPECT_EQ(fs_->write(ino, static_cast<uint32_t>(n), data.data(), 1024), mfs::kENoSpc);
    ASSERT_EQ(fs_->sync(), 0);
    expect_fsck_clean();
    EXPECT_EQ(read_file("/fill"), std::vector<uint8_t>(data.begin(), data.begin() + n));
    ASSERT_EQ(fs_->unlink("/fill"), 0);
    ASSERT_EQ(fs_->sync(), 0);
    expect_fsck_clean();
}

TEST_F(MfsTest, ReadOnlyMountRefusesWrites) {
    mkfs();
    mount();
    write_file("/keep", pattern(2000, 1));
    ASSERT_EQ(fs_->sync(), 0);
    mount(true);
    uint32_t ino;
    EXPECT_EQ(fs_->create("/new", 0644, true, &ino), mfs::kERoFs);
    EXPECT_EQ(fs_->mkdir("/nd", 0755), mfs::kERoFs);
    EXPECT_EQ(fs_->unlink("/keep"), mfs::kERoFs);
    ASSERT_EQ(fs_->lookup("/keep", &ino), 0);
    EXPECT_EQ(fs_->write(ino, 0, "x", 1), mfs::kERoFs);
    EXPECT_EQ(fs_->truncate(ino, 0), mfs::kERoFs);
    EXPECT_EQ(read_file("/keep"), pattern(2000, 1));
    EXPECT_EQ(dev_->writes, 0);
}

TEST_F(MfsTest, HostileImagesAreErrorsNotCrashes) {
    mkfs();
    mount();
    write_file("/f", pattern(20000, 1));
    ASSERT_EQ(fs_->mkdir("/d", 0755), 0);
    ASSERT_EQ(fs_->sync(), 0);
    uint32_t f, d;
    ASSERT_EQ(fs_->lookup("/f", &f), 0);
    ASSERT_EQ(fs_->lookup("/d", &d), 0);
    const auto& sb = fs_->superblock();
    uint32_t table = 2 + sb.imap_blocks + sb.zmap_blocks;
    auto poke_inode = [&](uint32_t ino, size_t field_offset, uint32_t value) {
        int fd = ::open(image_.c_str(), O_RDWR);
        off_t at = off_t{table} * 1024 + off_t{ino - 1} * 64 + static_cast<off_t>(field_offset);
        ASSERT_EQ(::pwrite(fd, &value, 4, at), 4);
        ::close(fd);
    };
    // A zone pointer past the device, and one into the metadata.
    poke_inode(f, offsetof(ukvm::minixfs::Inode, zone) + 4, sb.zones + 5);
    poke_inode(d, offsetof(ukvm::minixfs::Inode, zone), 1);
    mount();
    std::vector<uint8_t> buf(20000);
    EXPECT_EQ(fs_->read(f, 0, buf.data(), 20000), mfs::kEIo);
    EXPECT_EQ(fs_->lookup("/d/x", &f), mfs::kEIo);
    // A superblock with a wrong magic is not mounted.
    int fd = ::open(image_.c_str(), O_RDWR);
    uint16_t bad = 0x1234;
    ASSERT_EQ(::pwrite(fd, &bad, 2, 1024 + 24), 2);
    ::close(fd);
    mfs::FileSystem other;
    FileDevice dev(image_);
    EXPECT_EQ(other.mount(&dev, false), mfs::kEInval);
}

}  // namespace
