#include "fs.hpp"

#include "sys.hpp"

using namespace ukvm::kernel;

namespace sys {

namespace {

Endpoint g_vfs = kNone;
Endpoint g_mfs = kNone;

// SENDREC to VFS with buf granted (to VFS, or to MFS for file data) for the call (u64[grant_at]
// = grant, u64[grant_at + 1] = len); a restarted VFS or MFS is found again and asked once more.
int32_t vfs(Message* m, const void* buf, uint64_t len, uint64_t rights, int grant_at,
            bool for_mfs = false) {
    Message request = *m;
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (g_vfs == kNone) g_vfs = ds_lookup("vfs");
        if (for_mfs && g_mfs == kNone) g_mfs = ds_lookup("mfs");
        if (g_vfs == kNone || (for_mfs && g_mfs == kNone)) return proto::kENoDev;
        *m = request;
        int32_t id = -1;
        if (buf) {
            Message g{};
            g.u64[0] = static_cast<uint64_t>(for_mfs ? g_mfs : g_vfs);
            g.u64[1] = reinterpret_cast<uint64_t>(buf);
            g.u64[2] = len, g.u64[3] = rights;
            int32_t r = user::kernel_call(kSysGrantCreate, &g);
            if (r != kOk) return r;
            id = static_cast<int32_t>(g.u64[0]);
            m->u64[grant_at] = static_cast<uint64_t>(id);
            m->u64[grant_at + 1] = len;
        }
        int32_t r = user::sendrec(g_vfs, m);
        if (id >= 0) {
            Message g{};
            g.u64[0] = static_cast<uint64_t>(id);
            user::kernel_call(kSysGrantRevoke, &g);
        }
        if (r == kEDeadSrcDst || r == kEBadSrcDst) {
            g_vfs = kNone;
            continue;
        }
        // A grant for an MFS that has been restarted since: MFS may not use it.
        if (for_mfs && r == kOk && m->m_type == kEPerm && attempt == 0) {
            g_mfs = kNone;
            continue;
        }
        return r != kOk ? r : m->m_type;
    }
    return proto::kEIo;
}

int32_t path_call(int32_t call, const char* path, uint64_t arg2 = 0, uint64_t arg3 = 0) {
    Message m{};
    m.m_type = call;
    m.u64[2] = arg2, m.u64[3] = arg3;
    size_t len = strlen(path);
    if (len > proto::kVfsPathMax) return proto::kENameTooLong;
    return vfs(&m, path, len, kGrantRead, 0);
}

int32_t fd_call(int32_t call, int32_t fd, uint64_t arg1 = 0) {
    Message m{};
    m.m_type = call;
    m.i64[0] = fd;
    m.u64[1] = arg1;
    return vfs(&m, nullptr, 0, 0, 0);
}

}  // namespace

int32_t open(const char* path, uint64_t flags, uint32_t perm) {
    return path_call(proto::kVfsOpen, path, flags, perm);
}

int32_t close(int32_t fd) {
    return fd_call(proto::kVfsClose, fd);
}

int32_t read(int32_t fd, void* buf, size_t n) {
    Message m{};
    m.m_type = proto::kVfsRead;
    m.i64[0] = fd;
    return vfs(&m, buf, n, kGrantWrite, 1, true);
}

int32_t write(int32_t fd, const void* buf, size_t n) {
    Message m{};
    m.m_type = proto::kVfsWrite;
    m.i64[0] = fd;
    return vfs(&m, buf, n, kGrantRead, 1, true);
}

int64_t lseek(int32_t fd, int64_t offset, int whence) {
    Message m{};
    m.m_type = proto::kVfsLseek;
    m.i64[0] = fd, m.i64[1] = offset, m.i64[2] = whence;
    int32_t r = vfs(&m, nullptr, 0, 0, 0);
    return r < 0 ? r : m.i64[0];
}

int32_t stat(const char* path, proto::FileStat* out) {
    Message m{};
    m.m_type = proto::kVfsStat;
    size_t len = strlen(path);
    if (len > proto::kVfsPathMax) return proto::kENameTooLong;
    int32_t r = vfs(&m, path, len, kGrantRead, 0);
    if (r >= 0) memcpy(out, m.bytes, sizeof *out);
    return r;
}

int32_t fstat(int32_t fd, proto::FileStat* out) {
    Message m{};
    m.m_type = proto::kVfsFstat;
    m.i64[0] = fd;
    int32_t r = vfs(&m, nullptr, 0, 0, 0);
    if (r >= 0) memcpy(out, m.bytes, sizeof *out);
    return r;
}

int32_t mkdir(const char* path, uint32_t perm) {
    return path_call(proto::kVfsMkdir, path, perm);
}

int32_t rmdir(const char* path) {
    return path_call(proto::kVfsRmdir, path);
}

int32_t unlink(const char* path) {
    return path_call(proto::kVfsUnlink, path);
}

int32_t rename(const char* from, const char* to) {
    char both[2 * (proto::kVfsPathMax + 1)];
    size_t a = strlen(from), b = strlen(to);
    if (a > proto::kVfsPathMax || b > proto::kVfsPathMax) return proto::kENameTooLong;
    memcpy(both, from, a + 1);
    memcpy(both + a + 1, to, b);
    Message m{};
    m.m_type = proto::kVfsRename;
    return vfs(&m, both, a + 1 + b, kGrantRead, 0);
}

int32_t truncate(const char* path, uint64_t size) {
    return path_call(proto::kVfsTruncate, path, size);
}

int32_t ftruncate(int32_t fd, uint64_t size) {
    return fd_call(proto::kVfsFtruncate, fd, size);
}

int32_t getdents(int32_t fd, proto::Dirent* buf, size_t n) {
    Message m{};
    m.m_type = proto::kVfsGetdents;
    m.i64[0] = fd;
    return vfs(&m, buf, n, kGrantWrite, 1);
}

int32_t fsync(int32_t fd) {
    return fd_call(proto::kVfsFsync, fd);
}

int32_t sync() {
    Message m{};
    m.m_type = proto::kVfsSync;
    return vfs(&m, nullptr, 0, 0, 0);
}

int32_t statfs(proto::FsStat* out) {
    Message m{};
    m.m_type = proto::kVfsStatfs;
    int32_t r = vfs(&m, nullptr, 0, 0, 0);
    if (r >= 0) memcpy(out, m.bytes, sizeof *out);
    return r;
}

const char* strerror(int32_t error) {
    switch (error) {
        case -1:
            return "operation not permitted";
        case proto::kENoEnt:
            return "no such file or directory";
        case proto::kEIo:
            return "I/O error";
        case proto::kEBadF:
            return "bad file descriptor";
        case kENoMem:
            return "out of memory";
        case kEFault:
            return "bad address";
        case kEBusy:
            return "busy";
        case proto::kEExist:
            return "file exists";
        case proto::kENoDev:
            return "no file system (no disk)";
        case proto::kENotDir:
            return "not a directory";
        case proto::kEIsDir:
            return "is a directory";
        case kEInval:
            return "invalid argument";
        case proto::kEMFile:
            return "too many open files";
        case proto::kEFBig:
            return "file too large";
        case proto::kENoSpc:
            return "no space left on device";
        case proto::kERoFs:
            return "read-only file system";
        case proto::kENameTooLong:
            return "file name too long";
        case proto::kENotEmpty:
            return "directory not empty";
        case kENoSys:
            return "not implemented";
        default:
            return "error";
    }
}

}  // namespace sys
