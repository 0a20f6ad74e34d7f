// The file system calls of the libc: messages to VFS (proto::kVfs*), with the caller's
// buffers and paths granted to VFS for the call. Results are >= 0 or a negative errno
// (proto::kENoEnt, ...); strerror() names one.
#pragma once

#include "proto.hpp"
#include "user.hpp"

namespace sys {

int32_t open(const char* path, uint64_t flags, uint32_t perm = 0644);  // -> fd
int32_t close(int32_t fd);
int32_t read(int32_t fd, void* buf, size_t n);          // -> bytes, 0 at the end
int32_t write(int32_t fd, const void* buf, size_t n);   // -> bytes
int64_t lseek(int32_t fd, int64_t offset, int whence);  // -> the new offset
int32_t stat(const char* path, proto::FileStat* out);
int32_t fstat(int32_t fd, proto::FileStat* out);
int32_t mkdir(const char* path, uint32_t perm = 0755);
int32_t rmdir(const char* path);
int32_t unlink(const char* path);
int32_t rename(const char* from, const char* to);
int32_t truncate(const char* path, uint64_t size);
int32_t ftruncate(int32_t fd, uint64_t size);
// Directory entries of an open directory (open with kODirectory): up to n bytes of
// proto::Dirent records -> bytes, 0 at the end.
int32_t getdents(int32_t fd, proto::Dirent* buf, size_t n);
int32_t fsync(int32_t fd);
int32_t sync();
int32_t statfs(proto::FsStat* out);

const char* strerror(int32_t error);
inline bool is_dir(uint16_t mode) {
    return (mode & 0170000) == 0040000;
}

}  // namespace sys
