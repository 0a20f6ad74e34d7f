// virtio-blk request handling, driven by a driver-side queue over a byte buffer: reads,
// writes, FLUSH, GET_ID, read-only disks, out-of-range and malformed requests, UNSUPP,
// backend errors; and the raw image file backend (errors, locking, kill -9 durability).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "tests/fuzz/byte_memory.hpp"
#include "vmm/devices/virtio_blk.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ukvm::BlockBackend;
using ukvm::DiskError;
using ukvm::VirtioBlk;
using ukvm::VirtQueue;
using ukvm::testing::ByteMemory;
using ukvm::virtio::DriverBuffer;
using ukvm::virtio::DriverQueue;
using ukvm::virtio::QueueError;

// Sectors in memory, with injectable failures and a flush counter.
class MemoryBackend : public BlockBackend {
public:
    explicit MemoryBackend(std::size_t bytes) : data(bytes) {
        for (std::size_t i = 0; i < bytes; ++i) data[i] = static_cast<std::uint8_t>(i * 7 + 1);
    }
    std::uint64_t size() const override { return data.size(); }
    int read(std::uint64_t offset, std::span<std::uint8_t> out) override {
        if (fail_io) return EIO;
        std::memcpy(out.data(), data.data() + offset, out.size());
        return 0;
    }
    int write(std::uint64_t offset, std::span<const std::uint8_t> in) override {
        if (fail_io) return EIO;
        std::memcpy(data.data() + offset, in.data(), in.size());
        ++writes;
        return 0;
    }
    int flush() override {
        ++flushes;
        return fail_flush ? EIO : 0;
    }

    std::vector<std::uint8_t> data;
    int writes = 0;
    int flushes = 0;
    bool fail_io = false;
    bool fail_flush = false;
};

constexpr std::uint64_t kRing = 0x1000;
constexpr std::uint64_t kHeader = 0x4000;
constexpr std::uint64_t kStatus = 0x5000;
constexpr std::uint64_t kData = 0x10000;
constexpr std::size_t kMemory = 0x40000;
constexpr std::uint64_t kSectors = 64;

class VirtioBlkTest : public ::testing::Test {
protected:
    void SetUp() override { make_device(false, "serial-0001"); }

    void make_device(bool read_only, std::string serial) {
        auto b = std::make_unique<MemoryBackend>(kSectors * 512);
        backend = b.get();
        blk = std::make_unique<VirtioBlk>(std::move(b), mem, read_only, std::move(serial));
        queue = std::make_unique<VirtQueue>(mem);
        ASSERT_TRUE(driver.init(mem.at(kRing), kRing, 16));
        ASSERT_EQ(queue->enable(16, driver.desc_addr(), driver.avail_addr(), driver.used_addr()),
                  QueueError::kNone);
    }

    void header(std::uint32_t type, std::uint64_t sector) {
        virtio_blk_outhdr h{type, 0, sector};
        mem.write(kHeader, &h, sizeof h);
        mem.at(kStatus)[0] = 0xEE;  // neither OK, IOERR nor UNSUPP
    }

    // Submits one chain, runs the device, and returns the status byte; `written` gets the
    // used length. Fails the test if the device did not answer exactly once.
    std::uint8_t run(std::vector<DriverBuffer> bufs, std::uint32_t* written = nullptr) {
        EXPECT_GE(driver.add(bufs.data(), static_cast<std::uint16_t>(bufs.size())), 0);
        driver.publish();
        EXPECT_EQ(blk->process(0, *queue), nullptr);
        std::uint16_t head;
        std::uint32_t len = 0;
        EXPECT_EQ(driver.take_used(head, len), DriverQueue::UsedResult::kTaken);
        if (written != nullptr) *written = len;
        return mem.at(kStatus)[0];
    }

    std::uint8_t read(std::uint64_t sector, std::uint32_t bytes, std::uint32_t* written = nullptr) {
        header(VIRTIO_BLK_T_IN, sector);
        return run({{kHeader, 16, false}, {kData, bytes, true}, {kStatus, 1, true}}, written);
    }

    std::uint8_t write(std::uint64_t sector, std::uint32_t bytes) {
        header(VIRTIO_BLK_T_OUT, sector);
        return run({{kHeader, 16, false}, {kData, bytes, false}, {kStatus, 1, true}});
    }

    std::uint8_t simple(std::uint32_t type) {
        header(type, 0);
        return run({{kHeader, 16, false}, {kStatus, 1, true}});
    }

    ByteMemory mem{kMemory};
    DriverQueue driver;
    MemoryBackend* backend = nullptr;
    std::unique_ptr<VirtioBlk> blk;
    std::unique_ptr<VirtQueue> queue;
};

TEST_F(VirtioBlkTest, ConfigAndFeatures) {
    EXPECT_EQ(blk->capacity_sectors(), kSectors);
    virtio_blk_config cfg;
    ASSERT_EQ(blk->config_bytes().size(), sizeof cfg);
    std::memcpy(&cfg, blk->config_bytes().data(), sizeof cfg);
    EXPECT_EQ(cfg.capacity, kSectors);
    EXPECT_EQ(cfg.blk_size, 512u);
    EXPECT_EQ(cfg.seg_max, 254u);
    const std::uint64_t f = blk->device_features();
    EXPECT_TRUE(f & (1ull << VIRTIO_BLK_F_FLUSH));
    EXPECT_FALSE(f & (1ull << VIRTIO_BLK_F_RO));
    EXPECT_EQ(blk->device_id(), VIRTIO_ID_BLOCK);
}

TEST_F(VirtioBlkTest, ReadSectors) {
    std::uint32_t written = 0;
    EXPECT_EQ(read(3, 1024, &written), VIRTIO_BLK_S_OK);
    EXPECT_EQ(written, 1025u);  // data and status
    EXPECT_EQ(std::memcmp(mem.at(kData), backend->data.data() + 3 * 512, 1024), 0);
    EXPECT_EQ(blk->stats().ok, 1u);
}

TEST_F(VirtioBlkTest, WriteSectors) {
    for (int i = 0; i < 1536; ++i) mem.at(kData)[i] = static_cast<std::uint8_t>(0xA0 ^ i);
    EXPECT_EQ(write(10, 1536), VIRTIO_BLK_S_OK);
    EXPECT_EQ(std::memcmp(mem.at(kData), backend->data.data() + 10 * 512, 1536), 0);
}

TEST_F(VirtioBlkTest, LastSectorIsReachable) {
    EXPECT_EQ(read(kSectors - 1, 512), VIRTIO_BLK_S_OK);
    EXPECT_EQ(write(kSectors - 1, 512), VIRTIO_BLK_S_OK);
}

TEST_F(VirtioBlkTest, ScatteredBuffersAndASplitHeader) {
    // Header in two pieces, data in three uneven pieces, status on its own.
    header(VIRTIO_BLK_T_IN, 2);
    std::uint32_t written = 0;
    EXPECT_EQ(run({{kHeader, 5, false},
                   {kHeader + 5, 11, false},
                   {kData, 100, true},
                   {kData + 0x1000, 800, true},
                   {kData + 0x2000, 124, true},
                   {kStatus, 1, true}},
                  &written),
              VIRTIO_BLK_S_OK);
    EXPECT_EQ(written, 1025u);
    const std::uint8_t* src = backend->data.data() + 2 * 512;
    EXPECT_EQ(std::memcmp(mem.at(kData), src, 100), 0);
    EXPECT_EQ(std::memcmp(mem.at(kData + 0x1000), src + 100, 800), 0);
    EXPECT_EQ(std::memcmp(mem.at(kData + 0x2000), src + 900, 124), 0);
}

TEST_F(VirtioBlkTest, StatusSharesTheLastDataBuffer) {
    // Any layout (VIRTIO_F_ANY_LAYOUT is implied in 1.x): data and status in one buffer.
    header(VIRTIO_BLK_T_IN, 0);
    EXPECT_EQ(run({{kHeader, 16, false}, {kData, 513, true}}), 0xEE);  // status not at kStatus
    EXPECT_EQ(mem.at(kData)[512], VIRTIO_BLK_S_OK);
    EXPECT_EQ(std::memcmp(mem.at(kData), backend->data.data(), 512), 0);
}

TEST_F(VirtioBlkTest, OutOfRangeSectors) {
    EXPECT_EQ(read(kSectors, 512), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(read(kSectors - 1, 1024), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(write(kSectors, 512), VIRTIO_BLK_S_IOERR);
    // sector * 512 overflows 64 bits.
    EXPECT_EQ(read(0xFFFFFFFFFFFFFFFFull, 512), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(write(0x0080000000000000ull, 512), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(backend->writes, 0);
    EXPECT_EQ(blk->stats().ioerr, 5u);
}

// Guest RAM of 8 GiB, reserved but never touched beyond what a test writes.
class SparseMemory : public ukvm::VirtioMemory {
public:
    static constexpr std::uint64_t kSize = 8ull << 30;
    SparseMemory() {
        void* p = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        base_ = p == MAP_FAILED ? nullptr : static_cast<std::uint8_t*>(p);
    }
    ~SparseMemory() override {
        if (base_ != nullptr) ::munmap(base_, kSize);
    }
    bool ok() const { return base_ != nullptr; }
    bool contains(std::uint64_t gpa, std::size_t len) const override {
        return gpa <= kSize && len <= kSize - gpa;
    }
    bool read(std::uint64_t gpa, void* out, std::size_t len) override {
        if (!contains(gpa, len)) return false;
        std::memcpy(out, base_ + gpa, len);
        return true;
    }
    bool write(std::uint64_t gpa, const void* in, std::size_t len) override {
        if (!contains(gpa, len)) return false;
        std::memcpy(base_ + gpa, in, len);
        return true;
    }
    std::uint8_t* host(std::uint64_t gpa, std::size_t len) override {
        return len != 0 && contains(gpa, len) ? base_ + gpa : nullptr;
    }

private:
    std::uint8_t* base_ = nullptr;
};

// A disk that claims a petabyte and only counts reads.
class HugeBackend : public BlockBackend {
public:
    std::uint64_t size() const override { return 1ull << 50; }
    int read(std::uint64_t, std::span<std::uint8_t>) override {
        ++reads;
        return 0;
    }
    int write(std::uint64_t, std::span<const std::uint8_t>) override { return 0; }
    int flush() override { return 0; }
    int reads = 0;
};

TEST(VirtioBlkLimits, TransferOf4GiBOrMoreIsRefused) {
    SparseMemory mem;
    ASSERT_TRUE(mem.ok());
    auto owner = std::make_unique<HugeBackend>();
    HugeBackend* disk = owner.get();
    VirtioBlk blk(std::move(owner), mem, false, "");
    VirtQueue queue(mem);
    DriverQueue driver;
    ASSERT_TRUE(driver.init(mem.host(kRing, 0x1000), kRing, 16));
    ASSERT_EQ(queue.enable(16, driver.desc_addr(), driver.avail_addr(), driver.used_addr()),
              QueueError::kNone);
    virtio_blk_outhdr h{VIRTIO_BLK_T_IN, 0, 0};
    mem.write(kHeader, &h, sizeof h);
    // Two 2 GiB buffers: 4 GiB of data, which the 32-bit used length cannot report.
    DriverBuffer req[] = {{kHeader, 16, false},
                          {1ull << 32, 0x80000000u, true},
                          {(1ull << 32) + 0x80000000u, 0x80000000u, true},
                          {kStatus, 1, true}};
    ASSERT_GE(driver.add(req, 4), 0);
    driver.publish();
    EXPECT_EQ(blk.process(0, queue), nullptr);
    EXPECT_EQ(mem.host(kStatus, 1)[0], VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(disk->reads, 0);
    // 4 GiB less a sector is allowed.
    DriverBuffer ok[] = {{kHeader, 16, false},
                         {1ull << 32, 0x80000000u, true},
                         {(1ull << 32) + 0x80000000u, 0x7FFFFE00u, true},
                         {kStatus, 1, true}};
    ASSERT_GE(driver.add(ok, 4), 0);
    driver.publish();
    EXPECT_EQ(blk.process(0, queue), nullptr);
    EXPECT_EQ(mem.host(kStatus, 1)[0], VIRTIO_BLK_S_OK);
    EXPECT_EQ(disk->reads, 2);
}

TEST_F(VirtioBlkTest, LengthsNotAMultipleOfTheSector) {
    EXPECT_EQ(read(0, 511), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(write(0, 513), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(backend->writes, 0);
}

TEST_F(VirtioBlkTest, HeaderTooShort) {
    header(VIRTIO_BLK_T_IN, 0);
    EXPECT_EQ(run({{kHeader, 15, false}, {kData, 512, true}, {kStatus, 1, true}}),
              VIRTIO_BLK_S_IOERR);
}

TEST_F(VirtioBlkTest, ReadWithDeviceReadableDataIsRefused) {
    header(VIRTIO_BLK_T_IN, 0);
    EXPECT_EQ(run({{kHeader, 16, false}, {kData, 512, false}, {kStatus, 1, true}}),
              VIRTIO_BLK_S_IOERR);
}

TEST_F(VirtioBlkTest, WriteWithDeviceWritableDataIsRefused) {
    header(VIRTIO_BLK_T_OUT, 0);
    EXPECT_EQ(run({{kHeader, 16, false}, {kData, 512, true}, {kStatus, 1, true}}),
              VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(backend->writes, 0);
}

TEST_F(VirtioBlkTest, ReadOnlyDisk) {
    make_device(true, "");
    EXPECT_TRUE(blk->device_features() & (1ull << VIRTIO_BLK_F_RO));
    const std::vector<std::uint8_t> before = backend->data;
    EXPECT_EQ(write(0, 512), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(backend->data, before);
    EXPECT_EQ(read(0, 512), VIRTIO_BLK_S_OK);
    EXPECT_EQ(simple(VIRTIO_BLK_T_FLUSH), VIRTIO_BLK_S_OK);
}

TEST_F(VirtioBlkTest, FlushReachesTheBackend) {
    EXPECT_EQ(simple(VIRTIO_BLK_T_FLUSH), VIRTIO_BLK_S_OK);
    EXPECT_EQ(backend->flushes, 1);
    EXPECT_EQ(blk->stats().flushes, 1u);
    backend->fail_flush = true;
    EXPECT_EQ(simple(VIRTIO_BLK_T_FLUSH), VIRTIO_BLK_S_IOERR);
}

TEST_F(VirtioBlkTest, FlushWithDataIsRefused) {
    header(VIRTIO_BLK_T_FLUSH, 0);
    EXPECT_EQ(run({{kHeader, 16, false}, {kData, 512, false}, {kStatus, 1, true}}),
              VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(backend->flushes, 0);
}

TEST_F(VirtioBlkTest, GetIdReturnsTheSerialNulPadded) {
    std::memset(mem.at(kData), 'x', 32);
    header(VIRTIO_BLK_T_GET_ID, 0);
    std::uint32_t written = 0;
    EXPECT_EQ(run({{kHeader, 16, false}, {kData, 20, true}, {kStatus, 1, true}}, &written),
              VIRTIO_BLK_S_OK);
    EXPECT_EQ(written, 21u);
    std::array<char, 20> expected{};
    std::memcpy(expected.data(), "serial-0001", 11);
    EXPECT_EQ(std::memcmp(mem.at(kData), expected.data(), 20), 0);
}

TEST_F(VirtioBlkTest, GetIdFullLengthSerialHasNoTerminator) {
    make_device(false, "ABCDEFGHIJKLMNOPQRST");
    std::memset(mem.at(kData), 'x', 32);
    header(VIRTIO_BLK_T_GET_ID, 0);
    EXPECT_EQ(run({{kHeader, 16, false}, {kData, 32, true}, {kStatus, 1, true}}), VIRTIO_BLK_S_OK);
    EXPECT_EQ(std::memcmp(mem.at(kData), "ABCDEFGHIJKLMNOPQRST", 20), 0);
    EXPECT_EQ(mem.at(kData)[20], 'x');  // nothing past the 20 ID bytes
}

TEST_F(VirtioBlkTest, GetIdIntoTooSmallABuffer) {
    header(VIRTIO_BLK_T_GET_ID, 0);
    EXPECT_EQ(run({{kHeader, 16, false}, {kData, 19, true}, {kStatus, 1, true}}),
              VIRTIO_BLK_S_IOERR);
}

TEST(VirtioBlkSerial, LongerThan20BytesIsAnError) {
    ByteMemory mem{4096};
    EXPECT_THROW(VirtioBlk(std::make_unique<MemoryBackend>(512), mem, false, std::string(21, 's')),
                 DiskError);
}

TEST_F(VirtioBlkTest, UnsupportedTypes) {
    for (std::uint32_t type :
         std::initializer_list<std::uint32_t>{2u, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES,
                                              VIRTIO_BLK_T_SECURE_ERASE, 0x80000000u, 0x12345u}) {
        EXPECT_EQ(simple(type), VIRTIO_BLK_S_UNSUPP) << type;
    }
    EXPECT_EQ(blk->stats().unsupp, 6u);
    EXPECT_EQ(backend->writes, 0);
}

TEST_F(VirtioBlkTest, BackendErrorsBecomeIoerr) {
    backend->fail_io = true;
    EXPECT_EQ(read(0, 512), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(write(0, 512), VIRTIO_BLK_S_IOERR);
}

TEST_F(VirtioBlkTest, NoStatusByteNeedsReset) {
    header(VIRTIO_BLK_T_IN, 0);
    DriverBuffer only_header{kHeader, 16, false};
    driver.add(&only_header, 1);
    driver.publish();
    EXPECT_THAT(blk->process(0, *queue), HasSubstr("status byte"));
}

TEST_F(VirtioBlkTest, MalformedQueueStopsProcessingWithoutCrashing) {
    driver.descriptors()[0] = {kData, 16, VRING_DESC_F_NEXT, 0};  // loops to itself
    driver.avail()->ring[0] = 0;
    driver.avail()->idx = 1;
    EXPECT_EQ(blk->process(0, *queue), nullptr);
    EXPECT_EQ(queue->error(), QueueError::kLoop);
}

TEST_F(VirtioBlkTest, SeveralRequestsInOneNotification) {
    std::vector<DriverBuffer> req{{kHeader, 16, false}, {kData, 512, true}, {kStatus, 1, true}};
    header(VIRTIO_BLK_T_IN, 1);
    for (int i = 0; i < 5; ++i) driver.add(req.data(), 3);
    driver.publish();
    EXPECT_EQ(blk->process(0, *queue), nullptr);
    std::uint16_t head;
    std::uint32_t len;
    int answered = 0;
    while (driver.take_used(head, len) == DriverQueue::UsedResult::kTaken) ++answered;
    EXPECT_EQ(answered, 5);
}

// The raw image backend against real files.
class RawImageTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir = fs::temp_directory_path() /
              ("ukvm-test-blk-" + std::to_string(::getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir);
        fs::create_directories(dir);
        image = dir / "disk.img";
        std::ofstream(image, std::ios::binary) << std::string(8 * 512, '\0');
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    fs::path dir;
    fs::path image;
};

TEST_F(RawImageTest, MissingImage) {
    try {
        ukvm::open_raw_image(dir / "nope.img", false);
        FAIL() << "no DiskError";
    } catch (const DiskError& e) {
        EXPECT_THAT(e.what(), HasSubstr("nope.img' does not exist"));
    }
}

TEST_F(RawImageTest, DirectoryIsNotAnImage) {
    EXPECT_THROW(ukvm::open_raw_image(dir, true), DiskError);
}

TEST_F(RawImageTest, SizeAndRoundTrip) {
    auto b = ukvm::open_raw_image(image, false);
    EXPECT_EQ(b->size(), 8u * 512);
    std::array<std::uint8_t, 4> in{1, 2, 3, 4}, out{};
    EXPECT_EQ(b->write(1000, in), 0);
    EXPECT_EQ(b->read(1000, out), 0);
    EXPECT_EQ(in, out);
    EXPECT_EQ(b->flush(), 0);
    EXPECT_EQ(b->read(8 * 512 - 2, out), EIO);  // past the end
}

TEST_F(RawImageTest, SecondWriterIsRefusedReadersShare) {
    auto writer = ukvm::open_raw_image(image, false);
    try {
        ukvm::open_raw_image(image, false);
        FAIL() << "no DiskError";
    } catch (const DiskError& e) {
        EXPECT_THAT(e.what(), HasSubstr("in use by another process"));
    }
    writer.reset();
    auto r1 = ukvm::open_raw_image(image, true);
    auto r2 = ukvm::open_raw_image(image, true);
    EXPECT_THROW(ukvm::open_raw_image(image, false), DiskError);
}

TEST_F(RawImageTest, ReadOnlyFileNeedsReadOnly) {
    fs::permissions(image, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    fs::permissions(dir, fs::perms(0755));
    // Root ignores permissions: run the check as user nobody in a child.
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        if (::geteuid() == 0 && ::setuid(65534) != 0) ::_exit(3);
        bool rw_refused = false;
        try {
            ukvm::open_raw_image(image, false);
        } catch (const DiskError& e) {
            rw_refused = std::strstr(e.what(), "for reading and writing: Permission denied");
        }
        bool ro_ok = true;
        try {
            ukvm::open_raw_image(image, true);
        } catch (const DiskError&) {
            ro_ok = false;
        }
        ::_exit(rw_refused && ro_ok ? 0 : 1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 3) GTEST_SKIP() << "cannot switch to user nobody";
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

// A write the guest saw completed and flushed is in the file even when the VMM dies by
// SIGKILL right after: nothing is held back in the process.
TEST_F(RawImageTest, FlushedWriteSurvivesKill9) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(ready[0]);
        ByteMemory mem{kMemory};
        VirtioBlk blk(ukvm::open_raw_image(image, false), mem, false, "");
        VirtQueue queue(mem);
        DriverQueue driver;
        driver.init(mem.at(kRing), kRing, 16);
        queue.enable(16, driver.desc_addr(), driver.avail_addr(), driver.used_addr());
        std::memset(mem.at(kData), 0x5A, 512);
        virtio_blk_outhdr w{VIRTIO_BLK_T_OUT, 0, 3};
        virtio_blk_outhdr f{VIRTIO_BLK_T_FLUSH, 0, 0};
        mem.write(kHeader, &w, sizeof w);
        mem.write(kHeader + 16, &f, sizeof f);
        DriverBuffer wr[] = {{kHeader, 16, false}, {kData, 512, false}, {kStatus, 1, true}};
        DriverBuffer fl[] = {{kHeader + 16, 16, false}, {kStatus + 1, 1, true}};
        driver.add(wr, 3);
        driver.add(fl, 2);
        driver.publish();
        blk.process(0, queue);
        const char ok = (mem.at(kStatus)[0] == 0 && mem.at(kStatus)[1] == 0) ? 'y' : 'n';
        [[maybe_unused]] ssize_t n = ::write(ready[1], &ok, 1);
        for (;;) ::pause();
    }
    ::close(ready[1]);
    char ok = 0;
    ASSERT_EQ(::read(ready[0], &ok, 1), 1);
    ::close(ready[0]);
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    ASSERT_EQ(ok, 'y');
    std::ifstream in(image, std::ios::binary);
    std::vector<char> bytes(8 * 512);
    in.read(bytes.data(), bytes.size());
    for (int i = 0; i < 512; ++i) ASSERT_EQ(bytes[3 * 512 + i], 0x5A) << i;
    EXPECT_EQ(bytes[2 * 512], 0);
}

}  // namespace
