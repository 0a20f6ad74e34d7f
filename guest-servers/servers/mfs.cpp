// MFS, the MINIX v3 file system server: runs the file system core (fs/mfs.hpp) on the
// block driver "vblk0" and answers VFS's requests (proto::kMfs*). It mounts the disk on
// first use (the driver may start after it; without a disk every request is kENoDev and
// the next one tries again), read-only when the driver says so. Paths and data move
// through grants VFS makes; MFS safecopies. Dirty blocks are written back on sync, and
// by RS's heartbeat every few seconds.
#include "mfs.hpp"
#include "bdev.hpp"
#include "sys.hpp"

using namespace ukvm::kernel;
using user::print;

namespace {

class Disk final : public mfs::BlockDevice {
public:
    int read_block(uint32_t block, void* data) override {
        int32_t r = client_.read(uint64_t{block} * 1024, data, 1024);
        return r < 0 ? r : 0;
    }
    int write_block(uint32_t block, const void* data) override {
        int32_t r = client_.write(uint64_t{block} * 1024, data, 1024);
        return r < 0 ? r : 0;
    }
    int read_blocks(uint32_t first, uint32_t count, void* data) override {
        int32_t r = client_.read(uint64_t{first} * 1024, data, uint64_t{count} * 1024);
        return r < 0 ? r : 0;
    }
    int write_blocks(uint32_t first, uint32_t count, const void* data) override {
        int32_t r = client_.write(uint64_t{first} * 1024, data, uint64_t{count} * 1024);
        return r < 0 ? r : 0;
    }
    int flush() override { return client_.flush(); }
    int32_t open(uint64_t* size, uint64_t* flags) { return client_.open(size, flags); }
    void attach(void* base, uint64_t len) { client_.attach(base, len); }

private:
    bdev::Client client_{"vblk0"};
};

Disk g_disk;
mfs::FileSystem g_fs;
Endpoint g_vfs = kNone;
char g_path[2 * (proto::kVfsPathMax + 1) + 1];
uint8_t g_data[64 * 1024];
int g_beats = 0;

// Wall-clock seconds at boot, for timestamps (the VMM's clock; 0 elsewhere, e.g. QEMU:
// then times count from boot).
uint64_t g_boot_epoch = 0;

void read_clock() {
    Message m{};
    m.m_type = ukvm::hc::kTime;
    if (user::sendrec(kVmm, &m) != kOk || m.m_type != 0) return;
    ukvm::hc::TimeReply t;
    memcpy(&t, m.bytes, sizeof t);
    g_boot_epoch = (t.realtime_ns - t.monotonic_ns) / 1000000000;
}

int32_t mount() {
    if (g_fs.mounted()) return 0;
    if (sys::ds_lookup("vblk0") == kNone) return proto::kENoDev;  // no block driver
    uint64_t size = 0, flags = 0;
    int32_t r = g_disk.open(&size, &flags);
    if (r < 0) return r;
    bool ro = flags & proto::kBdevReadOnly;
    r = g_fs.mount(&g_disk, ro);
    if (r < 0) {
        print("mfs: vblk0 holds no MINIX v3 file system (%d)\n", r);
        return proto::kENoDev;
    }
    const auto& sb = g_fs.superblock();
    if (uint64_t{sb.zones} * 1024 > size) {
        print("mfs: the file system (%u blocks) is larger than the disk\n", sb.zones);
        return proto::kENoDev;
    }
    print("mfs: mounted vblk0 (%u KiB, %u inodes%s)\n", sb.zones, sb.ninodes,
          ro ? ", read-only" : "");
    return 0;
}

int32_t copy_from(Endpoint from, uint64_t grant, uint64_t offset, void* to, uint64_t len) {
    Message m{};
    m.u64[0] = static_cast<uint64_t>(from), m.u64[1] = grant, m.u64[2] = offset;
    m.u64[3] = reinterpret_cast<uint64_t>(to), m.u64[4] = len;
    return user::kernel_call(kSysSafeCopyFrom, &m);
}

int32_t copy_to(Endpoint to, uint64_t grant, uint64_t offset, const void* from, uint64_t len) {
    Message m{};
    m.u64[0] = static_cast<uint64_t>(to), m.u64[1] = grant, m.u64[2] = offset;
    m.u64[3] = reinterpret_cast<uint64_t>(from), m.u64[4] = len;
    return user::kernel_call(kSysSafeCopyTo, &m);
}

// The request's path (or the two of a rename), NUL-terminated in g_path.
int32_t get_path(const Message& m, const char** second) {
    uint64_t len = m.u64[1];
    if (len == 0 || len > sizeof g_path - 1) return proto::kENameTooLong;
    int32_t r = copy_from(m.m_source, m.u64[0], 0, g_path, len);
    if (r != kOk) return r;
    g_path[len] = '\0';
    if (second) {
        size_t first = strlen(g_path);
        if (first + 1 >= len) return kEInval;
        *second = g_path + first + 1;
    }
    return 0;
}

void put_stat(Message& m, uint32_t ino) {
    mfs::Stat st{};
    int32_t r = g_fs.stat(ino, &st);
    proto::FileStat f{st.ino, st.mode, st.nlinks, st.size, st.mtime, st.uid, st.gid};
    memcpy(m.bytes, &f, sizeof f);
    if (r < 0) m.m_type = r;
}

// Whose grant u64[3] is: a user's (i64[5], passed on by VFS) or VFS's own.
Endpoint granter(const Message& m) {
    return m.i64[5] ? static_cast<Endpoint>(m.i64[5]) : m.m_source;
}

int32_t do_read(Message& m) {
    auto ino = static_cast<uint32_t>(m.u64[0]);
    uint64_t offset = m.u64[1], len = m.u64[2], grant = m.u64[3];
    Endpoint owner = granter(m);
    uint64_t done = 0;
    while (done < len) {
        uint64_t n = len - done > sizeof g_data ? sizeof g_data : len - done;
        if (offset + done > 0xffffffffu) break;
        int r =
            g_fs.read(ino, static_cast<uint32_t>(offset + done), g_data, static_cast<uint32_t>(n));
        if (r < 0) return done ? static_cast<int32_t>(done) : r;
        if (r == 0) break;
        int32_t c = copy_to(owner, grant, done, g_data, static_cast<uint64_t>(r));
        if (c != kOk) return done ? static_cast<int32_t>(done) : c;
        done += static_cast<uint64_t>(r);
        if (static_cast<uint64_t>(r) < n) break;
    }
    return static_cast<int32_t>(done);
}

int32_t do_write(Message& m) {
    auto ino = static_cast<uint32_t>(m.u64[0]);
    uint64_t offset = m.u64[1], len = m.u64[2], grant = m.u64[3];
    Endpoint owner = granter(m);
    if (m.u64[4] & 1) {
        mfs::Stat st{};
        int r = g_fs.stat(ino, &st);
        if (r < 0) return r;
        offset = st.size;
    }
    uint64_t done = 0;
    int32_t err = 0;
    while (done < len) {
        uint64_t n = len - done > sizeof g_data ? sizeof g_data : len - done;
        if (offset + done + n > 0x7fffffffu) {
            err = proto::kEFBig;
            break;
        }
        int32_t c = copy_from(owner, grant, done, g_data, n);
        if (c != kOk) {
            err = c;
            break;
        }
        int r =
            g_fs.write(ino, static_cast<uint32_t>(offset + done), g_data, static_cast<uint32_t>(n));
        if (r < 0) {
            err = r;
            break;
        }
        done += static_cast<uint64_t>(r);
        if (static_cast<uint64_t>(r) < n) break;
    }
    m.u64[0] = offset + done;
    return done ? static_cast<int32_t>(done) : err;
}

int32_t do_getdents(Message& m) {
    auto ino = static_cast<uint32_t>(m.u64[0]);
    auto pos = static_cast<uint32_t>(m.u64[1]);
    uint64_t len = m.u64[2], grant = m.u64[3];
    uint64_t done = 0;
    while (done + sizeof(proto::Dirent) <= len) {
        mfs::DirEnt e{};
        uint32_t next = pos;
        int r = g_fs.readdir(ino, &next, &e);
        if (r < 0) return done ? static_cast<int32_t>(done) : r;
        if (e.ino == 0) {
            pos = next;
            break;
        }
        proto::Dirent d{};
        d.ino = e.ino;
        mfs::Stat st{};
        if (g_fs.stat(e.ino, &st) == 0) d.mode = st.mode;
        memcpy(d.name, e.name, sizeof e.name);
        int32_t c = copy_to(m.m_source, grant, done, &d, sizeof d);
        if (c != kOk) return c;
        done += sizeof d;
        pos = next;
    }
    m.u64[0] = pos;
    return static_cast<int32_t>(done);
}

int32_t handle(Message& m) {
    int32_t r = mount();
    if (r < 0) return r;
    g_fs.set_time(static_cast<uint32_t>(g_boot_epoch + user::uptime_ns() / 1000000000));
    const char* second = nullptr;
    switch (m.m_type) {
        case proto::kMfsLookup:
        case proto::kMfsCreate: {
            if ((r = get_path(m, nullptr)) < 0) return r;
            uint32_t ino;
            r = m.m_type == proto::kMfsLookup
                    ? g_fs.lookup(g_path, &ino)
                    : g_fs.create(g_path, static_cast<uint16_t>(m.u64[2]), m.u64[3] != 0, &ino);
            if (r < 0) return r;
            if ((m.u64[4] & 1) && (r = g_fs.open_ref(ino)) < 0) return r;
            m.m_type = 0;
            put_stat(m, ino);
            return m.m_type;
        }
        case proto::kMfsMkdir:
            if ((r = get_path(m, nullptr)) < 0) return r;
            return g_fs.mkdir(g_path, static_cast<uint16_t>(m.u64[2]));
        case proto::kMfsUnlink:
            if ((r = get_path(m, nullptr)) < 0) return r;
            return g_fs.unlink(g_path);
        case proto::kMfsRmdir:
            if ((r = get_path(m, nullptr)) < 0) return r;
            return g_fs.rmdir(g_path);
        case proto::kMfsRename:
            if ((r = get_path(m, &second)) < 0) return r;
            return g_fs.rename(g_path, second);
        case proto::kMfsStat:
            m.m_type = 0;
            put_stat(m, static_cast<uint32_t>(m.u64[0]));
            return m.m_type;
        case proto::kMfsRead:
            return do_read(m);
        case proto::kMfsWrite:
            return do_write(m);
        case proto::kMfsTruncate:
            if (m.u64[1] > 0x7fffffffu) return proto::kEFBig;
            return g_fs.truncate(static_cast<uint32_t>(m.u64[0]), static_cast<uint32_t>(m.u64[1]));
        case proto::kMfsGetdents:
            return do_getdents(m);
        case proto::kMfsPut:
            return g_fs.close_ref(static_cast<uint32_t>(m.u64[0]));
        case proto::kMfsSync:
            return g_fs.read_only() ? 0 : g_fs.sync();
        case proto::kMfsStatfs: {
            mfs::StatFs s{};
            if ((r = g_fs.statfs(&s)) < 0) return r;
            proto::FsStat f{s.block_size, s.blocks,      s.free_blocks,
                            s.inodes,     s.free_inodes, g_fs.read_only() ? 1u : 0u};
            memcpy(m.bytes, &f, sizeof f);
            return 0;
        }
        default:
            return kENoSys;
    }
}

// Only VFS talks to MFS (users reach the file system through VFS's checks).
bool from_vfs(Endpoint e) {
    if (e == g_vfs) return true;
    g_vfs = sys::ds_lookup("vfs");
    return e == g_vfs;
}

}  // namespace

int main(const char*) {
    // Every block the core reads or writes lies in its cache: one grant for all of it.
    g_disk.attach(&g_fs, sizeof g_fs);
    read_clock();
    for (;;) {
        Message m{};
        if (user::receive(kAny, &m) != kOk) continue;
        if (m.m_type == kNotifyMessage) {
            if (m.m_source == user::parent()) {
                user::notify(m.m_source);  // RS's heartbeat; write back now and then
                if (++g_beats % 5 == 0 && g_fs.mounted() && !g_fs.read_only() &&
                    g_fs.cache().dirty_count())
                    g_fs.cache().write_back();
            }
            continue;
        }
        Endpoint client = m.m_source;
        int32_t r = from_vfs(client) ? handle(m) : kEPerm;
        m.m_type = r;
        user::sendnb(client, &m);
    }
}
