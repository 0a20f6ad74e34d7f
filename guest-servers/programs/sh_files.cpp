// The shell's file commands: ls [-l], cat, mkdir, rmdir, rm, mv, cp, df, sync, and the
// file end of echo's > and >>. Paths are from the root ("a/b" is "/a/b"). Each reports
// an error as "CMD: PATH: reason" and goes on with its next argument.
#include "sh_files.hpp"

#include "fs.hpp"
#include "sys.hpp"

using user::print;

namespace sh_files {

namespace {

void fail(const char* cmd, const char* path, int32_t error) {
    print("%s: %s: %s\n", cmd, path, sys::strerror(error));
}

// dir + "/" + name into out (false if too long).
bool join(char* out, size_t size, const char* dir, const char* name) {
    size_t n = strlen(dir);
    while (n > 0 && dir[n - 1] == '/') --n;
    if (n + 1 + strlen(name) + 1 > size) return false;
    memcpy(out, dir, n);
    out[n] = '/';
    memcpy(out + n + 1, name, strlen(name) + 1);
    return true;
}

const char* base_name(const char* path) {
    const char* b = path;
    for (const char* p = path; *p; ++p)
        if (*p == '/' && p[1]) b = p + 1;
    return b;
}

void mode_string(uint16_t mode, char* out) {
    uint16_t type = mode & 0170000;
    out[0] = type == 0040000 ? 'd' : type == 0120000 ? 'l' : type == 0100000 ? '-' : '?';
    const char* rwx = "rwxrwxrwx";
    for (int i = 0; i < 9; ++i) out[1 + i] = mode & (0400 >> i) ? rwx[i] : '-';
    out[10] = '\0';
}

void print_entry(const char* path, const char* name, bool long_form) {
    if (!long_form) {
        print("%s\n", name);
        return;
    }
    proto::FileStat st{};
    int32_t r = sys::stat(path, &st);
    if (r < 0) {
        fail("ls", path, r);
        return;
    }
    char mode[11];
    mode_string(st.mode, mode);
    print("%s %3u %9u %s\n", mode, st.nlinks, st.size, name);
}

void list(const char* path, bool long_form) {
    proto::FileStat st{};
    int32_t r = sys::stat(path, &st);
    if (r < 0) return fail("ls", path, r);
    if (!sys::is_dir(st.mode)) return print_entry(path, path, long_form);
    int32_t fd = sys::open(path, proto::kORdOnly | proto::kODirectory);
    if (fd < 0) return fail("ls", path, fd);
    proto::Dirent ents[16];
    for (;;) {
        int32_t n = sys::getdents(fd, ents, sizeof ents);
        if (n < 0) fail("ls", path, n);
        if (n <= 0) break;
        for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(proto::Dirent); ++i) {
            const char* name = ents[i].name;
            if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
            char full[proto::kVfsPathMax + 1];
            if (!join(full, sizeof full, path, name)) continue;
            print_entry(full, name, long_form);
        }
    }
    sys::close(fd);
}

// Copies from to to (a new or truncated file); 0 or the error (reported).
int32_t copy_file(const char* cmd, const char* from, const char* to) {
    int32_t in = sys::open(from, proto::kORdOnly);
    if (in < 0) {
        fail(cmd, from, in);
        return in;
    }
    int32_t out = sys::open(to, proto::kOWrOnly | proto::kOCreat | proto::kOTrunc, 0644);
    if (out < 0) {
        fail(cmd, to, out);
        sys::close(in);
        return out;
    }
    static char buf[8192];
    int32_t r;
    while ((r = sys::read(in, buf, sizeof buf)) > 0) {
        int32_t w = sys::write(out, buf, static_cast<size_t>(r));
        if (w != r) {
            r = w < 0 ? w : proto::kENoSpc;
            break;
        }
    }
    if (r < 0) fail(cmd, r == proto::kENoSpc ? to : from, r);
    sys::close(in);
    sys::close(out);
    return r;
}

// The target of mv/cp: into DIR when `to` is a directory.
void target(const char* from, const char* to, char* out, size_t size) {
    proto::FileStat st{};
    if (sys::stat(to, &st) == 0 && sys::is_dir(st.mode) && join(out, size, to, base_name(from)))
        return;
    strncpy(out, to, size - 1);
    out[size - 1] = '\0';
}

}  // namespace

void ls(int argc, char** argv) {
    bool long_form = false;
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "-l") == 0) long_form = true, first = 2;
    if (first == argc) return list("/", long_form);
    for (int i = first; i < argc; ++i) list(argv[i], long_form);
}

void cat(int argc, char** argv) {
    if (argc < 2) return print("usage: cat FILE...\n");
    static char buf[4096];
    for (int i = 1; i < argc; ++i) {
        int32_t fd = sys::open(argv[i], proto::kORdOnly);
        if (fd < 0) {
            fail("cat", argv[i], fd);
            continue;
        }
        int32_t n;
        while ((n = sys::read(fd, buf, sizeof buf)) > 0) user::write(buf, static_cast<size_t>(n));
        if (n < 0) fail("cat", argv[i], n);
        sys::close(fd);
    }
}

void mkdir(int argc, char** argv) {
    if (argc < 2) return print("usage: mkdir DIR...\n");
    for (int i = 1; i < argc; ++i)
        if (int32_t r = sys::mkdir(argv[i]); r < 0) fail("mkdir", argv[i], r);
}

void rmdir(int argc, char** argv) {
    if (argc < 2) return print("usage: rmdir DIR...\n");
    for (int i = 1; i < argc; ++i)
        if (int32_t r = sys::rmdir(argv[i]); r < 0) fail("rmdir", argv[i], r);
}

void rm(int argc, char** argv) {
    if (argc < 2) return print("usage: rm FILE...\n");
    for (int i = 1; i < argc; ++i)
        if (int32_t r = sys::unlink(argv[i]); r < 0) fail("rm", argv[i], r);
}

void mv(int argc, char** argv) {
    if (argc != 3) return print("usage: mv FROM TO\n");
    char to[proto::kVfsPathMax + 1];
    target(argv[1], argv[2], to, sizeof to);
    if (int32_t r = sys::rename(argv[1], to); r < 0) fail("mv", argv[1], r);
}

void cp(int argc, char** argv) {
    if (argc != 3) return print("usage: cp FROM TO\n");
    char to[proto::kVfsPathMax + 1];
    target(argv[1], argv[2], to, sizeof to);
    copy_file("cp", argv[1], to);
}

void df(int, char**) {
    proto::FsStat s{};
    int32_t r = sys::statfs(&s);
    if (r < 0) return fail("df", "/", r);
    uint32_t used = s.blocks - s.free_blocks;
    print("Filesystem  1K-blocks   Used  Available  Use%%  Inodes  IFree  Mounted on\n");
    print("vblk0       %9u %6u %10u %4u%% %7u %6u  /%s\n", s.blocks, used, s.free_blocks,
          s.blocks ? (used * 100 + s.blocks - 1) / s.blocks : 0, s.inodes, s.free_inodes,
          s.read_only ? " (read-only)" : "");
}

void sync(int, char**) {
    if (int32_t r = sys::sync(); r < 0) fail("sync", "/", r);
}

void write_to(const char* path, const char* text, bool append) {
    uint64_t flags = proto::kOWrOnly | proto::kOCreat | (append ? proto::kOAppend : proto::kOTrunc);
    int32_t fd = sys::open(path, flags, 0644);
    if (fd < 0) return fail("echo", path, fd);
    size_t n = strlen(text);
    int32_t w = sys::write(fd, text, n);
    if (w < 0)
        fail("echo", path, w);
    else if (static_cast<size_t>(w) != n)
        fail("echo", path, proto::kENoSpc);
    sys::close(fd);
}

}  // namespace sh_files
