// fstest: the file system seen from a user program, for tests/integration/test_fs.cpp.
//   fstest write    a tree of files of many sizes under /t (through the direct, single- and
//                   double-indirect zones), read back and compared, then sync
//   fstest verify   the same tree read and compared (after a reboot, or a host copy)
//   fstest ro       every kind of write must fail with EROFS (a read-only disk)
//   fstest fsync    /synced written and fsynced, /unsynced written, then waits to be killed
//   fstest sum PATH size and FNV-1a hash of a file (the host compares with its own)
//   fstest kill     write, while a child has the disk driver (vblk) killed mid-way
//   fstest hostile  bad descriptors, grants, lengths, paths and calls: each an error
//   fstest bench    4 MiB written (64 KiB writes), synced, read back: the rates
// Each prints "fstest: ok ..." or "fstest: FAIL ..." lines and exits with the failures.
#include "fs.hpp"
#include "sys.hpp"

using user::print;

namespace {

// The same bytes as the host test's pattern(size, seed).
void fill(uint8_t* out, size_t n, uint32_t* state) {
    uint32_t x = *state;
    for (size_t i = 0; i < n; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out[i] = static_cast<uint8_t>(x);
    }
    *state = x;
}
uint32_t seed_state(uint32_t seed) {
    return seed * 2654435761u + 1;
}

struct File {
    const char* path;
    uint32_t size;
};
// Blocks: 7 direct, then 256 single-indirect (to 263 KiB), then double-indirect.
constexpr File kFiles[] = {
    {"/t/empty", 0},     {"/t/one", 1},          {"/t/d1/k1m", 1023},     {"/t/d1/k1", 1024},
    {"/t/d1/k1p", 1025}, {"/t/d1/d2/z7m", 7167}, {"/t/d1/d2/z7", 7168},   {"/t/d1/d2/z7p", 7169},
    {"/t/mid", 100000},  {"/t/d1/i263", 269312}, {"/t/d1/i263p", 269313}, {"/t/big", 1200000},
};
int g_failures = 0;

void check(bool ok, const char* what, const char* path, int64_t detail) {
    if (ok) return;
    ++g_failures;
    print("fstest: FAIL %s %s (%ld)\n", what, path, detail);
}

uint8_t g_buf[16384], g_want[16384];

bool write_file(const char* path, uint32_t size, uint32_t seed) {
    int32_t fd = sys::open(path, proto::kOWrOnly | proto::kOCreat | proto::kOTrunc, 0644);
    check(fd >= 0, "open", path, fd);
    if (fd < 0) return false;
    uint32_t state = seed_state(seed);
    size_t piece = 1;
    for (uint32_t done = 0; done < size;) {
        size_t n = size - done < piece ? size - done : piece;
        if (n > sizeof g_buf) n = sizeof g_buf;
        fill(g_buf, n, &state);
        int32_t w = sys::write(fd, g_buf, n);
        check(w == static_cast<int32_t>(n), "write", path, w);
        if (w != static_cast<int32_t>(n)) break;
        done += static_cast<uint32_t>(n);
        piece = piece * 3 + 7;  // uneven pieces cross block boundaries every way
    }
    sys::close(fd);
    return true;
}

void verify_file(const char* path, uint32_t size, uint32_t seed) {
    proto::FileStat st{};
    int32_t r = sys::stat(path, &st);
    check(r == 0 && st.size == size, "stat", path, r == 0 ? st.size : r);
    int32_t fd = sys::open(path, proto::kORdOnly);
    check(fd >= 0, "open", path, fd);
    if (fd < 0) return;
    uint32_t state = seed_state(seed);
    uint32_t done = 0;
    for (;;) {
        int32_t n = sys::read(fd, g_buf, sizeof g_buf);
        check(n >= 0, "read", path, n);
        if (n <= 0) break;
        fill(g_want, static_cast<size_t>(n), &state);
        if (memcmp(g_buf, g_want, static_cast<size_t>(n)) != 0) {
            check(false, "contents", path, done);
            break;
        }
        done += static_cast<uint32_t>(n);
    }
    check(done == size, "length", path, done);
    sys::close(fd);
}

uint32_t seed_of(int i) {
    return static_cast<uint32_t>(i + 1);
}

void write_tree() {
    // Users reach MFS only through VFS.
    ukvm::kernel::Message m{};
    m.m_type = proto::kMfsStat;
    m.u64[0] = 1;
    ukvm::kernel::Endpoint mfs = sys::ds_lookup("mfs");
    int32_t direct = mfs == ukvm::kernel::kNone ? -3 : user::sendrec(mfs, &m);
    check(direct == 0 && m.m_type == ukvm::kernel::kEPerm, "MFS refuses a user", "mfs", m.m_type);
    const char* dirs[] = {"/t", "/t/d1", "/t/d1/d2"};
    for (const char* d : dirs) {
        int32_t r = sys::mkdir(d);
        check(r == 0 || r == proto::kEExist, "mkdir", d, r);
    }
    int i = 0;
    for (const File& f : kFiles) write_file(f.path, f.size, seed_of(i++));
    i = 0;
    for (const File& f : kFiles) verify_file(f.path, f.size, seed_of(i++));
    int32_t r = sys::sync();
    check(r == 0, "sync", "/", r);
    print("fstest: ok wrote %d files\n", i);
}

void verify_tree() {
    int i = 0;
    for (const File& f : kFiles) verify_file(f.path, f.size, seed_of(i++));
    print("fstest: ok verified %d files\n", i);
}

void read_only() {
    int32_t fd = sys::open("/ro-new", proto::kOWrOnly | proto::kOCreat, 0644);
    check(fd == proto::kERoFs, "create", "/ro-new", fd);
    int32_t r = sys::mkdir("/ro-dir");
    check(r == proto::kERoFs, "mkdir", "/ro-dir", r);
    // An existing file: opening for writing works, writing does not.
    const char* existing = nullptr;
    int32_t dir = sys::open("/", proto::kORdOnly | proto::kODirectory);
    proto::Dirent ents[8];
    static char path[80];
    int32_t n = sys::getdents(dir, ents, sizeof ents);
    for (int i = 0; i < n / static_cast<int32_t>(sizeof(proto::Dirent)); ++i) {
        if (ents[i].name[0] == '.' || sys::is_dir(ents[i].mode)) continue;
        user::format(path, sizeof path, "/%s", ents[i].name);
        existing = path;
        break;
    }
    sys::close(dir);
    check(existing != nullptr, "a file in", "/", n);
    if (existing) {
        fd = sys::open(existing, proto::kOWrOnly);
        check(fd >= 0, "open", existing, fd);
        r = sys::write(fd, "x", 1);
        check(r == proto::kERoFs, "write", existing, r);
        r = sys::ftruncate(fd, 0);
        check(r == proto::kERoFs, "ftruncate", existing, r);
        sys::close(fd);
        r = sys::unlink(existing);
        check(r == proto::kERoFs, "unlink", existing, r);
        r = sys::rename(existing, "/moved");
        check(r == proto::kERoFs, "rename", existing, r);
    }
    r = sys::sync();
    check(r == 0, "sync", "/", r);
    print("fstest: ok read-only checks done\n");
}

void fsync_then_wait() {
    write_file("/synced", 50000, 77);
    int32_t fd = sys::open("/synced", proto::kORdWr);
    int32_t r = sys::fsync(fd);
    check(r == 0, "fsync", "/synced", r);
    sys::close(fd);
    print("fstest: ok fsynced\n");
    write_file("/unsynced", 30000, 78);
    print("fstest: ok unsynced written\n");
    for (;;) sys::sleep_ns(1000000000);
}

void sum(const char* path) {
    int32_t fd = sys::open(path, proto::kORdOnly);
    check(fd >= 0, "open", path, fd);
    if (fd < 0) return;
    uint32_t h = 2166136261u, size = 0;
    for (;;) {
        int32_t n = sys::read(fd, g_buf, sizeof g_buf);
        check(n >= 0, "read", path, n);
        if (n <= 0) break;
        for (int32_t i = 0; i < n; ++i) h = (h ^ g_buf[i]) * 16777619u;
        size += static_cast<uint32_t>(n);
    }
    sys::close(fd);
    print("fstest: ok sum %s %u %x\n", path, size, h);
}

// The tree written while a forked child kills the disk driver through PM after a while:
// RS restarts it and the block client sends the interrupted request again, so the file
// system sees nothing.
void write_while_killing_the_driver() {
    int32_t child = sys::fork();
    if (child == 0) {
        sys::sleep_ns(1500000000);
        int32_t slot = 0, pid = 0;
        sys::ProcEntry e{};
        while (pid == 0 && sys::next_proc(&slot, &e))
            if (strcmp(e.info.name, "vblk") == 0) pid = e.pid;
        int32_t r = pid > 0 ? sys::kill(pid, proto::kSigKill) : -3;
        print("fstest: killed vblk (pid %d): %d\n", pid, r);
        user::exit(r == 0 ? 0 : 1);
    }
    check(child > 0, "fork", "", child);
    write_tree();
    sys::WaitStatus st{};
    int32_t r = sys::wait(child, &st);
    check(r == child && st.detail == 0, "the child killed the driver", "", r);
}

// A raw request to VFS, with `buf` granted to `grantee` (kNone: no grant) at u64[at].
int32_t raw(int32_t call, int64_t a0, ukvm::kernel::Endpoint grantee, const void* buf,
            uint64_t grant_len, uint64_t len, int at, ukvm::kernel::Message* out = nullptr) {
    using namespace ukvm::kernel;
    Message m{};
    m.m_type = call;
    m.i64[0] = a0;
    int32_t id = -1;
    if (grantee != kNone) {
        Message g{};
        g.u64[0] = static_cast<uint64_t>(grantee), g.u64[1] = reinterpret_cast<uint64_t>(buf);
        g.u64[2] = grant_len, g.u64[3] = kGrantRead | kGrantWrite;
        if (user::kernel_call(kSysGrantCreate, &g) != kOk) return -9999;
        id = static_cast<int32_t>(g.u64[0]);
    }
    m.u64[at] = id >= 0 ? static_cast<uint64_t>(id) : 77;  // 77: no such grant
    m.u64[at + 1] = len;
    int32_t r = user::sendrec(sys::ds_lookup("vfs"), &m);
    if (id >= 0) {
        Message g{};
        g.u64[0] = static_cast<uint64_t>(id);
        user::kernel_call(kSysGrantRevoke, &g);
    }
    if (out) *out = m;
    return r != kOk ? r : m.m_type;
}

void hostile() {
    using namespace ukvm::kernel;
    Endpoint vfs = sys::ds_lookup("vfs"), mfs = sys::ds_lookup("mfs");
    static char buf[512];
    int32_t r;
    const int64_t bad_fds[] = {-1, 16, 1000, int64_t{1} << 40, 5};
    for (int64_t fd : bad_fds) {
        check(sys::read(static_cast<int32_t>(fd), buf, 10) == proto::kEBadF, "read bad fd", "", fd);
        check(raw(proto::kVfsClose, fd, kNone, nullptr, 0, 0, 1) == proto::kEBadF, "close bad fd",
              "", fd);
    }
    check(sys::open("/", 3) == kEInval, "access mode 3", "/", 0);
    check(sys::open("/", proto::kORdWr) == proto::kEIsDir, "a directory for writing", "/", 0);
    // Paths: empty, too long, not granted, a NUL inside, granted to someone else.
    static char t[4] = "/t";  // (granted read and write: not in read-only data)
    r = raw(proto::kVfsStat, 0, vfs, t, 1, 0, 0);
    check(r == proto::kENoEnt, "empty path", "", r);
    check(raw(proto::kVfsStat, 0, vfs, buf, sizeof buf, 300, 0) == proto::kENameTooLong,
          "path too long", "", 0);
    r = raw(proto::kVfsStat, 0, kNone, nullptr, 0, 5, 0);
    check(r == kEFault, "path not granted", "", r);
    memcpy(buf, "/a\0b", 4);
    r = raw(proto::kVfsStat, 0, vfs, buf, 4, 4, 0);
    check(r == kEInval, "NUL in a path", "", r);
    r = raw(proto::kVfsStat, 0, mfs, t, 2, 2, 0);
    check(r == kEFault, "path granted to MFS, not VFS", "", r);
    r = raw(proto::kVfsStat, 0, vfs, t, 2, 50, 0);
    check(r == kEFault, "length past the grant", "", r);
    // Data: a grant that does not exist, one too short, one for VFS instead of MFS.
    int32_t fd = sys::open("/hostile", proto::kORdWr | proto::kOCreat | proto::kOTrunc, 0644);
    check(fd >= 0, "open", "/hostile", fd);
    check(sys::write(fd, "0123456789", 10) == 10, "write", "/hostile", 0);
    sys::lseek(fd, 0, 0);
    r = raw(proto::kVfsRead, fd, kNone, nullptr, 0, 10, 1);
    check(r < 0, "read into no grant", "", r);
    r = raw(proto::kVfsRead, fd, mfs, buf, 4, 10, 1);
    check(r == 4 || r < 0, "read past a short grant", "", r);
    r = raw(proto::kVfsWrite, fd, vfs, buf, 10, 10, 1);
    check(r < 0, "write from a grant MFS may not use", "", r);
    r = raw(proto::kVfsRead, fd, mfs, buf, 10, uint64_t{1} << 62, 1);
    check(r <= 10, "a huge length", "", r);
    // Offsets and whence.
    check(sys::lseek(fd, -5, 0) == kEInval, "negative offset", "", 0);
    check(sys::lseek(fd, 0, 7) == kEInval, "whence 7", "", 0);
    check(sys::lseek(fd, int64_t{1} << 40, 0) == kEInval, "offset past 2 GiB", "", 0);
    check(sys::getdents(fd, reinterpret_cast<proto::Dirent*>(buf), sizeof buf) == proto::kENotDir,
          "getdents on a file", "", 0);
    int32_t dir = sys::open("/", proto::kORdOnly | proto::kODirectory);
    check(sys::getdents(dir, reinterpret_cast<proto::Dirent*>(buf), 10) == kEInval,
          "getdents into 10 bytes", "", 0);
    check(sys::write(dir, "x", 1) == proto::kEBadF, "write to a directory", "", 0);
    sys::close(dir);
    check(sys::open("/hostile", proto::kORdOnly | proto::kODirectory) == proto::kENotDir,
          "O_DIRECTORY on a file", "", 0);
    // PM's calls and unknown ones.
    check(raw(proto::kVfsExit, user::self(), kNone, nullptr, 0, 0, 1) == kEPerm, "exit from a user",
          "", 0);
    check(raw(proto::kVfsFork, user::self(), kNone, nullptr, 0, 0, 2) == kEPerm, "fork from a user",
          "", 0);
    check(raw(0x7ff, 0, kNone, nullptr, 0, 0, 1) == kENoSys, "an unknown call", "", 0);
    // Descriptors run out at 16, and come back.
    int32_t fds[20];
    int n = 0;
    for (; n < 20; ++n)
        if ((fds[n] = sys::open("/hostile", proto::kORdOnly)) < 0) break;
    check(n == 15 && fds[n] == proto::kEMFile, "the 16th descriptor is the last", "", n);
    for (int i = 0; i < n; ++i) sys::close(fds[i]);
    // Still working.
    sys::lseek(fd, 0, 0);
    memset(buf, 0, 16);
    check(sys::read(fd, buf, 16) == 10 && memcmp(buf, "0123456789", 10) == 0, "read back", "", 0);
    sys::close(fd);
    check(sys::unlink("/hostile") == 0, "unlink", "/hostile", 0);
    // An unlinked file stays readable through a descriptor until the last close.
    fd = sys::open("/gone", proto::kORdWr | proto::kOCreat | proto::kOTrunc, 0644);
    check(sys::write(fd, "still here", 10) == 10, "write", "/gone", 0);
    check(sys::unlink("/gone") == 0, "unlink", "/gone", 0);
    proto::FileStat st{};
    check(sys::stat("/gone", &st) == proto::kENoEnt, "unlinked", "/gone", 0);
    sys::lseek(fd, 0, 0);
    memset(buf, 0, 16);
    r = sys::read(fd, buf, 16);
    check(r == 10 && memcmp(buf, "still here", 10) == 0, "read after unlink", "/gone", r);
    check(sys::close(fd) == 0, "close", "/gone", 0);
    print("fstest: ok hostile requests refused\n");
}

void bench() {
    constexpr uint32_t kTotal = 4 << 20;
    static uint8_t chunk[64 * 1024];
    uint32_t state = seed_state(5);
    fill(chunk, sizeof chunk, &state);
    uint64_t t0 = user::uptime_ns();
    int32_t fd = sys::open("/bench", proto::kOWrOnly | proto::kOCreat | proto::kOTrunc, 0644);
    check(fd >= 0, "open", "/bench", fd);
    if (fd < 0) return;
    for (uint32_t done = 0; done < kTotal; done += sizeof chunk) {
        int32_t w = sys::write(fd, chunk, sizeof chunk);
        check(w == static_cast<int32_t>(sizeof chunk), "write", "/bench", w);
        if (w < 0) break;
    }
    int32_t r = sys::fsync(fd);
    check(r == 0, "fsync", "/bench", r);
    sys::close(fd);
    uint64_t t1 = user::uptime_ns();
    fd = sys::open("/bench", proto::kORdOnly);
    uint32_t total = 0;
    for (int32_t n; (n = sys::read(fd, chunk, sizeof chunk)) > 0;)
        total += static_cast<uint32_t>(n);
    sys::close(fd);
    uint64_t t2 = user::uptime_ns();
    check(total == kTotal, "read", "/bench", total);
    r = sys::unlink("/bench");
    check(r == 0, "unlink", "/bench", r);
    sys::sync();
    // The path without the disk: a 256 KiB file that stays in MFS's cache, read 8 times.
    fd = sys::open("/bench2", proto::kORdWr | proto::kOCreat | proto::kOTrunc, 0644);
    for (int i = 0; i < 4; ++i) sys::write(fd, chunk, sizeof chunk);
    uint64_t t3 = user::uptime_ns();
    for (int i = 0; i < 8; ++i) {
        sys::lseek(fd, 0, 0);
        for (int j = 0; j < 4; ++j) sys::read(fd, chunk, sizeof chunk);
    }
    uint64_t t4 = user::uptime_ns();
    sys::close(fd);
    sys::unlink("/bench2");
    uint64_t cached = uint64_t{2048} * 1000000000 / (t4 - t3 + 1);
    print("fstest: ok bench cached read %lu KiB/s\n", cached);
    print("bench: fs_write_kibps=%lu fs_read_kibps=%lu fs_cached_read_kibps=%lu\n",
          uint64_t{kTotal} / 1024 * 1000000000 / (t1 - t0 + 1),
          uint64_t{kTotal} / 1024 * 1000000000 / (t2 - t1 + 1), cached);
    print("fstest: ok bench write+fsync %lu KiB/s, read %lu KiB/s (4 MiB, 64 KiB calls)\n",
          uint64_t{kTotal} / 1024 * 1000000000 / (t1 - t0 + 1),
          uint64_t{kTotal} / 1024 * 1000000000 / (t2 - t1 + 1));
}

}  // namespace

int main(const char* args) {
    if (strcmp(args, "write") == 0)
        write_tree();
    else if (strcmp(args, "verify") == 0)
        verify_tree();
    else if (strcmp(args, "ro") == 0)
        read_only();
    else if (strcmp(args, "fsync") == 0)
        fsync_then_wait();
    else if (strcmp(args, "hostile") == 0)
        hostile();
    else if (strcmp(args, "kill") == 0)
        write_while_killing_the_driver();
    else if (strcmp(args, "bench") == 0)
        bench();
    else if (strncmp(args, "sum ", 4) == 0)
        sum(args + 4);
    else
        print("usage: fstest write|verify|ro|fsync|kill|hostile|bench|sum PATH\n");
    return g_failures;
}
