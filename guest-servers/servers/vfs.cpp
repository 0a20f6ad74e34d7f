// VFS, the file system switch: the POSIX file calls of every process (proto::kVfs*). It
// keeps each process's file descriptors (by endpoint; PM tells it about fork and exit)
// and the open files they share (inode, offset, flags), checks what users send, and asks
// MFS, the root file system's server, for the rest. User data moves through the caller's
// grant and VFS's own buffer, which VFS grants MFS: users never deal with MFS.
#include "sys.hpp"

using namespace ukvm::kernel;
using user::print;

namespace {

constexpr int kMaxFilps = 128;
constexpr size_t kChunk = 64 * 1024;

struct Filp {
    int refs = 0;  // fds sharing it (across fork); 0: free
    uint32_t ino = 0;
    uint16_t mode = 0;
    uint64_t flags = 0;
    uint64_t offset = 0;
};
Filp g_filps[kMaxFilps];

struct Proc {
    Endpoint endpoint = kNone;
    int16_t fd[proto::kVfsOpenMax];
};
Proc g_procs[kNrProcs];

void put(uint32_t ino);

// One fd fewer on an open file; the last one tells MFS (an unlinked file goes then).
void unref(int16_t f) {
    if (--g_filps[f].refs == 0) put(g_filps[f].ino);
}

// The file descriptors of `e`; a process in the same slot before it is over (its exit
// may not have been reported): its files are closed.
Proc* proc_of(Endpoint e) {
    if (e < 0 || endpoint_slot(e) >= kNrProcs) return nullptr;
    Proc& p = g_procs[endpoint_slot(e)];
    if (p.endpoint != e) {
        if (p.endpoint != kNone)
            for (int16_t& f : p.fd)
                if (f >= 0) unref(f);
        p.endpoint = e;
        for (int16_t& f : p.fd) f = -1;
    }
    return &p;
}

Filp* filp_of(Endpoint e, int64_t fd) {
    Proc* p = proc_of(e);
    if (!p || fd < 0 || fd >= proto::kVfsOpenMax || p->fd[fd] < 0) return nullptr;
    return &g_filps[p->fd[fd]];
}

// ---- MFS ----

Endpoint g_mfs = kNone;
int32_t g_path_grant = -1, g_data_grant = -1;
char g_path[2 * (proto::kVfsPathMax + 1)];
uint8_t g_data[kChunk];

int32_t grant(Endpoint to, void* addr, uint64_t len, uint64_t rights) {
    Message m{};
    m.u64[0] = static_cast<uint64_t>(to), m.u64[1] = reinterpret_cast<uint64_t>(addr);
    m.u64[2] = len, m.u64[3] = rights;
    int32_t r = user::kernel_call(kSysGrantCreate, &m);
    return r == kOk ? static_cast<int32_t>(m.u64[0]) : r;
}

void revoke(int32_t* id) {
    if (*id < 0) return;
    Message m{};
    m.u64[0] = static_cast<uint64_t>(*id);
    user::kernel_call(kSysGrantRevoke, &m);
    *id = -1;
}

// SENDREC to MFS with our path (u64[0], u64[1]: filled in when path_len) or data grant
// (u64[3]); a restarted MFS is found again and the request sent once more.
int32_t mfs(Message* m, uint64_t path_len, bool data) {
    Message request = *m;
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (g_mfs == kNone) {
            g_mfs = sys::ds_lookup("mfs");
            if (g_mfs == kNone) return proto::kENoDev;
            g_path_grant = grant(g_mfs, g_path, sizeof g_path, kGrantRead);
            g_data_grant = grant(g_mfs, g_data, sizeof g_data, kGrantRead | kGrantWrite);
            if (g_path_grant < 0 || g_data_grant < 0) return kENoMem;
        }
        *m = request;
        if (path_len) m->u64[0] = static_cast<uint64_t>(g_path_grant), m->u64[1] = path_len;
        if (data) m->u64[3] = static_cast<uint64_t>(g_data_grant);
        int32_t r = user::sendrec(g_mfs, m);
        if (r == kEDeadSrcDst || r == kEBadSrcDst) {
            revoke(&g_path_grant);
            revoke(&g_data_grant);
            g_mfs = kNone;
            continue;
        }
        return r != kOk ? r : m->m_type;
    }
    return proto::kEIo;
}

// ---- the caller's memory ----

int32_t copy_from(Endpoint from, uint64_t grant_id, uint64_t offset, void* to, uint64_t len) {
    Message m{};
    m.u64[0] = static_cast<uint64_t>(from), m.u64[1] = grant_id, m.u64[2] = offset;
    m.u64[3] = reinterpret_cast<uint64_t>(to), m.u64[4] = len;
    int32_t r = user::kernel_call(kSysSafeCopyFrom, &m);
    return r == kOk ? 0 : kEFault;
}

int32_t copy_to(Endpoint to, uint64_t grant_id, uint64_t offset, const void* from, uint64_t len) {
    Message m{};
    m.u64[0] = static_cast<uint64_t>(to), m.u64[1] = grant_id, m.u64[2] = offset;
    m.u64[3] = reinterpret_cast<uint64_t>(from), m.u64[4] = len;
    int32_t r = user::kernel_call(kSysSafeCopyTo, &m);
    return r == kOk ? 0 : kEFault;
}

// The caller's path (u64[0] grant, u64[1] length) into g_path; `names` paths (a rename
// has two, NUL-separated). -> the length to hand MFS.
int32_t user_path(const Message& m, int names, uint64_t* len_out) {
    uint64_t len = m.u64[1];
    if (len == 0) return proto::kENoEnt;
    if (len > names * (proto::kVfsPathMax + 1) - 1) return proto::kENameTooLong;
    int32_t r = copy_from(m.m_source, m.u64[0], 0, g_path, len);
    if (r < 0) return r;
    g_path[len] = '\0';
    int nuls = 0;
    for (uint64_t i = 0; i < len; ++i) nuls += g_path[i] == '\0';
    if (nuls != names - 1 || g_path[len - 1] == '\0') return kEInval;
    *len_out = len + 1;
    return 0;
}

int32_t lookup(const Message& m, proto::FileStat* st, int32_t call = proto::kMfsLookup,
               uint64_t perm = 0, bool exclusive = false, bool open = false) {
    uint64_t len;
    int32_t r = user_path(m, 1, &len);
    if (r < 0) return r;
    Message q{};
    q.m_type = call;
    q.u64[2] = perm, q.u64[3] = exclusive, q.u64[4] = open;
    if ((r = mfs(&q, len, false)) < 0) return r;
    memcpy(st, q.bytes, sizeof *st);
    return 0;
}

bool is_dir(uint16_t mode) {
    return (mode & 0170000) == 0040000;
}

// ---- the calls ----

int32_t do_open(Message& m) {
    Proc* p = proc_of(m.m_source);
    if (!p) return kEInval;
    uint64_t flags = m.u64[2];
    uint64_t acc = flags & proto::kOAccMode;
    if (acc == 3) return kEInval;
    int fd = -1;
    for (int i = 0; i < proto::kVfsOpenMax && fd < 0; ++i)
        if (p->fd[i] < 0) fd = i;
    if (fd < 0) return proto::kEMFile;
    Filp* f = nullptr;
    for (Filp& x : g_filps)
        if (x.refs == 0) {
            f = &x;
            break;
        }
    if (!f) return -23;  // ENFILE
    proto::FileStat st{};
    int32_t r = flags & proto::kOCreat ? lookup(m, &st, proto::kMfsCreate, m.u64[3] & 07777,
                                                flags & proto::kOExcl, true)
                                       : lookup(m, &st, proto::kMfsLookup, 0, false, true);
    if (r < 0) return r;
    // MFS holds the inode for us from here: every failure below lets it go.
    if (is_dir(st.mode) && acc != proto::kORdOnly) r = proto::kEIsDir;
    if (r == 0 && (flags & proto::kODirectory) && !is_dir(st.mode)) r = proto::kENotDir;
    if (r == 0 && (flags & proto::kOTrunc) && acc != proto::kORdOnly && st.size) {
        Message q{};
        q.m_type = proto::kMfsTruncate;
        q.u64[0] = st.ino, q.u64[1] = 0;
        r = mfs(&q, 0, false);
    }
    if (r < 0) {
        put(st.ino);
        return r;
    }
    *f = Filp{1, st.ino, st.mode, flags, 0};
    p->fd[fd] = static_cast<int16_t>(f - g_filps);
    return fd;
}

void put(uint32_t ino) {
    Message q{};
    q.m_type = proto::kMfsPut;
    q.u64[0] = ino;
    mfs(&q, 0, false);
}

int32_t do_close(Message& m) {
    Filp* f = filp_of(m.m_source, m.i64[0]);
    if (!f) return proto::kEBadF;
    unref(static_cast<int16_t>(f - g_filps));
    proc_of(m.m_source)->fd[m.i64[0]] = -1;
    return 0;
}

// Reads and writes: MFS copies straight between its cache and the caller's grant (made
// for MFS), VFS only checks the descriptor and keeps the offset.
int32_t do_read(Message& m) {
    Filp* f = filp_of(m.m_source, m.i64[0]);
    if (!f || (f->flags & proto::kOAccMode) == proto::kOWrOnly) return proto::kEBadF;
    if (is_dir(f->mode)) return proto::kEIsDir;
    Message q{};
    q.m_type = proto::kMfsRead;
    q.u64[0] = f->ino, q.u64[1] = f->offset,
    q.u64[2] = m.u64[2] > 0x7fffffff ? 0x7fffffff : m.u64[2];
    q.u64[3] = m.u64[1], q.i64[5] = m.m_source;
    int32_t r = mfs(&q, 0, false);
    if (r > 0) f->offset += static_cast<uint64_t>(r);
    return r;
}

int32_t do_write(Message& m) {
    Filp* f = filp_of(m.m_source, m.i64[0]);
    if (!f || (f->flags & proto::kOAccMode) == proto::kORdOnly) return proto::kEBadF;
    Message q{};
    q.m_type = proto::kMfsWrite;
    q.u64[0] = f->ino, q.u64[1] = f->offset,
    q.u64[2] = m.u64[2] > 0x7fffffff ? 0x7fffffff : m.u64[2];
    q.u64[3] = m.u64[1], q.i64[5] = m.m_source;
    q.u64[4] = (f->flags & proto::kOAppend) ? 1 : 0;
    int32_t r = mfs(&q, 0, false);
    if (r > 0 || (f->flags & proto::kOAppend)) f->offset = q.u64[0];
    return r;
}

int32_t do_lseek(Message& m) {
    Filp* f = filp_of(m.m_source, m.i64[0]);
    if (!f) return proto::kEBadF;
    int64_t base;
    switch (m.i64[2]) {
        case 0:
            base = 0;
            break;
        case 1:
            base = static_cast<int64_t>(f->offset);
            break;
        case 2: {
            Message q{};
            q.m_type = proto::kMfsStat;
            q.u64[0] = f->ino;
            int32_t r = mfs(&q, 0, false);
            if (r < 0) return r;
            proto::FileStat st;
            memcpy(&st, q.bytes, sizeof st);
            base = st.size;
            break;
        }
        default:
            return kEInval;
    }
    int64_t off = base + m.i64[1];
    if (off < 0 || off > 0x7fffffff) return kEInval;
    f->offset = static_cast<uint64_t>(off);
    m.i64[0] = off;
    return 0;
}

int32_t do_getdents(Message& m) {
    Filp* f = filp_of(m.m_source, m.i64[0]);
    if (!f) return proto::kEBadF;
    if (!is_dir(f->mode)) return proto::kENotDir;
    uint64_t len = m.u64[2] > kChunk ? kChunk : m.u64[2];
    if (len < sizeof(proto::Dirent)) return kEInval;
    Message q{};
    q.m_type = proto::kMfsGetdents;
    q.u64[0] = f->ino, q.u64[1] = f->offset, q.u64[2] = len;
    int32_t r = mfs(&q, 0, true);
    if (r <= 0) return r;
    int32_t c = copy_to(m.m_source, m.u64[1], 0, g_data, static_cast<uint64_t>(r));
    if (c < 0) return c;
    f->offset = q.u64[0];
    return r;
}

// Calls that MFS answers with the path as it is.
int32_t path_call(Message& m, int32_t call, int names) {
    uint64_t len;
    int32_t r = user_path(m, names, &len);
    if (r < 0) return r;
    Message q{};
    q.m_type = call;
    q.u64[2] = m.u64[2] & 07777;
    return mfs(&q, len, false);
}

int32_t do_truncate(Message& m, uint32_t ino, uint16_t mode, uint64_t size) {
    if (is_dir(mode)) return proto::kEIsDir;
    if (size > 0x7fffffff) return proto::kEFBig;
    Message q{};
    q.m_type = proto::kMfsTruncate;
    q.u64[0] = ino, q.u64[1] = size;
    (void)m;
    return mfs(&q, 0, false);
}

int32_t simple(Message& m, int32_t call) {
    Message q{};
    q.m_type = call;
    int32_t r = mfs(&q, 0, false);
    memcpy(m.bytes, q.bytes, sizeof m.bytes);
    return r;
}

int32_t handle(Message& m) {
    proto::FileStat st{};
    int32_t r;
    switch (m.m_type) {
        case proto::kVfsOpen:
            return do_open(m);
        case proto::kVfsClose:
            return do_close(m);
        case proto::kVfsRead:
            return do_read(m);
        case proto::kVfsWrite:
            return do_write(m);
        case proto::kVfsLseek:
            return do_lseek(m);
        case proto::kVfsStat:
            if ((r = lookup(m, &st)) < 0) return r;
            memcpy(m.bytes, &st, sizeof st);
            return 0;
        case proto::kVfsFstat: {
            Filp* f = filp_of(m.m_source, m.i64[0]);
            if (!f) return proto::kEBadF;
            Message q{};
            q.m_type = proto::kMfsStat;
            q.u64[0] = f->ino;
            r = mfs(&q, 0, false);
            memcpy(m.bytes, q.bytes, sizeof st);
            return r;
        }
        case proto::kVfsMkdir:
            return path_call(m, proto::kMfsMkdir, 1);
        case proto::kVfsRmdir:
            return path_call(m, proto::kMfsRmdir, 1);
        case proto::kVfsUnlink:
            return path_call(m, proto::kMfsUnlink, 1);
        case proto::kVfsRename:
            return path_call(m, proto::kMfsRename, 2);
        case proto::kVfsGetdents:
            return do_getdents(m);
        case proto::kVfsTruncate:
            if ((r = lookup(m, &st)) < 0) return r;
            return do_truncate(m, st.ino, st.mode, m.u64[2]);
        case proto::kVfsFtruncate: {
            Filp* f = filp_of(m.m_source, m.i64[0]);
            if (!f || (f->flags & proto::kOAccMode) == proto::kORdOnly) return proto::kEBadF;
            return do_truncate(m, f->ino, f->mode, m.u64[1]);
        }
        case proto::kVfsFsync:
            if (!filp_of(m.m_source, m.i64[0])) return proto::kEBadF;
            return simple(m, proto::kMfsSync);
        case proto::kVfsSync:
            return simple(m, proto::kMfsSync);
        case proto::kVfsStatfs:
            return simple(m, proto::kMfsStatfs);
        default:
            return kENoSys;
    }
}

// PM's news: a fork (the child shares the parent's open files) or an exit.
int32_t from_pm(Message& m) {
    if (m.m_source != sys::ds_lookup("pm")) return kEPerm;
    if (m.m_type == proto::kVfsExit) {
        Proc* p = proc_of(static_cast<Endpoint>(m.i64[0]));
        if (!p) return kEInval;
        for (int16_t& f : p->fd)
            if (f >= 0) unref(f), f = -1;
        return 0;
    }
    Proc* parent = proc_of(static_cast<Endpoint>(m.i64[0]));
    Proc* child = proc_of(static_cast<Endpoint>(m.i64[1]));
    if (!parent || !child || parent == child) return kEInval;
    for (int i = 0; i < proto::kVfsOpenMax; ++i) {
        if (child->fd[i] >= 0) unref(child->fd[i]);
        child->fd[i] = parent->fd[i];
        if (child->fd[i] >= 0) ++g_filps[child->fd[i]].refs;
    }
    return 0;
}

}  // namespace

int main(const char*) {
    for (;;) {
        Message m{};
        if (user::receive(kAny, &m) != kOk) continue;
        if (m.m_type == kNotifyMessage) {
            if (m.m_source == user::parent()) user::notify(m.m_source);  // RS's heartbeat
            continue;
        }
        Endpoint client = m.m_source;
        int32_t r =
            m.m_type == proto::kVfsFork || m.m_type == proto::kVfsExit ? from_pm(m) : handle(m);
        m.m_type = r;
        user::sendnb(client, &m);
    }
}
