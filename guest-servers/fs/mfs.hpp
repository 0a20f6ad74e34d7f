// The MINIX v3 file system core (the format in ukvm/minixfs.h): superblock, bitmaps,
// inodes with direct, indirect and double-indirect zones, directories, path lookup, the
// namespace operations, and a write-back block cache. Freestanding C++ (no library, no
// exceptions): the guest's MFS server runs it on a block driver, and the host's unit tests
// run the same code on image files.
//
// The disk is hostile: every zone, inode number, size and directory entry read from it is
// checked before use; what is wrong is kEIo, never a crash. Results are 0 (or a count) or
// a negative Linux errno value.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <ukvm/minixfs.h>

namespace mfs {

namespace disk = ukvm::minixfs;

// Errors (Linux values, negated; the guest's proto.hpp uses the same numbers).
inline constexpr int kENoEnt = -2;
inline constexpr int kEIo = -5;
inline constexpr int kENoMem = -12;
inline constexpr int kEBusy = -16;
inline constexpr int kEExist = -17;
inline constexpr int kENotDir = -20;
inline constexpr int kEIsDir = -21;
inline constexpr int kEInval = -22;
inline constexpr int kEFBig = -27;
inline constexpr int kENoSpc = -28;
inline constexpr int kERoFs = -30;
inline constexpr int kEMLink = -31;
inline constexpr int kENameTooLong = -36;
inline constexpr int kENotEmpty = -39;

// The device under the file system: whole 1 KiB blocks. Each returns 0 or a negative
// error (kEIo, kERoFs).
class BlockDevice {
public:
    virtual int read_block(uint32_t block, void* data);
    virtual int write_block(uint32_t block, const void* data);
    // count consecutive blocks in one request (the cache's read-ahead and write-back use
    // up to Cache::kRun); by default one block at a time.
    virtual int read_blocks(uint32_t first, uint32_t count, void* data);
    virtual int write_blocks(uint32_t first, uint32_t count, const void* data);
    virtual int flush();  // everything written so far is on stable storage
protected:
    ~BlockDevice() = default;
};

struct Stat {
    uint32_t ino;
    uint16_t mode;
    uint16_t nlinks;
    uint16_t uid, gid;
    uint32_t size;
    uint32_t atime, mtime, ctime;
    uint32_t blocks;  // zones in use, indirect blocks included (1 KiB each)
};

struct StatFs {
    uint32_t block_size;
    uint32_t blocks;       // data zones
    uint32_t free_blocks;  // free data zones
    uint32_t inodes;
    uint32_t free_inodes;
};

struct DirEnt {
    uint32_t ino;
    char name[disk::kNameMax + 1];  // NUL-terminated
};

// The block cache: kBuffers blocks, the least recently used evicted. Evicting a dirty
// block writes back every dirty block, in runs of consecutive blocks (one request each);
// a miss reads ahead up to kReadAhead blocks that are not cached yet (within the limit).
class Cache {
public:
    static constexpr int kBuffers = 384;
    static constexpr uint32_t kRun = 64;  // blocks per device request (64 KiB)
    static constexpr uint32_t kReadAhead = 64;
    struct Buf {
        uint32_t block;
        bool valid, dirty;
        uint32_t used;  // LRU stamp
        uint8_t data[disk::kBlockSize];
    };

    void attach(BlockDevice* dev) { dev_ = dev, limit_ = 0, invalidate(); }
    // Blocks below `blocks` may be read ahead (the file system's size; 0: none).
    void set_limit(uint32_t blocks) { limit_ = blocks; }
    // The block, read from the device unless `zero` (a fresh block: all zeros). nullptr
    // and *err on an I/O error. The pointer stays valid until kBuffers - 1 other gets.
    Buf* get(uint32_t block, int* err, bool zero = false);
    void mark_dirty(Buf* b) { b->dirty = true; }
    // Writes every dirty block (in block order), then flushes the device.
    int sync();
    // Writes dirty blocks without the flush.
    int write_back();
    void invalidate();
    uint32_t dirty_count() const;

private:
    Buf* find(uint32_t block);
    // A buffer to reuse (invalid, or the least recently used, written back if dirty).
    Buf* victim(int* err);
    BlockDevice* dev_ = nullptr;
    uint32_t clock_ = 0;
    uint32_t limit_ = 0;
    Buf bufs_[kBuffers];
    uint8_t run_[kRun * disk::kBlockSize];          // write-back's staging
    uint8_t ahead_[kReadAhead * disk::kBlockSize];  // read-ahead's
};

class FileSystem {
public:
    // Reads and checks the superblock; the root must be a directory.
    int mount(BlockDevice* dev, bool read_only);
    bool mounted() const { return mounted_; }
    bool read_only() const { return read_only_; }
    void set_time(uint32_t now) { now_ = now; }
    const disk::Superblock& superblock() const { return sb_; }

    // Paths: '/'-separated, relative to the root (a leading '/' is optional; empty
    // components and "." are skipped, ".." follows the directory's entry). At most
    // kPathMax bytes.
    static constexpr size_t kPathMax = 255;
    int lookup(const char* path, uint32_t* ino);
    int stat(uint32_t ino, Stat* out);

    // Namespace operations by path. create: a new regular file (kEExist if the name is
    // taken, unless `exclusive` is false and it is a regular file: then that one).
    int create(const char* path, uint16_t perm, bool exclusive, uint32_t* ino);
    int mkdir(const char* path, uint16_t perm);
    int unlink(const char* path);
    int rmdir(const char* path);
    int rename(const char* from, const char* to);

    // File data. read: bytes read (0 at the end); write: bytes written (short only on
    // kENoSpc after some bytes, else the error).
    int read(uint32_t ino, uint32_t offset, void* buf, uint32_t len);
    int write(uint32_t ino, uint32_t offset, const void* buf, uint32_t len);
    int truncate(uint32_t ino, uint32_t size);
    // The entry at *pos (a byte offset in the directory, advanced past it); 0 with
    // out->ino == 0 at the end.
    int readdir(uint32_t dir, uint32_t* pos, DirEnt* out);

    int statfs(StatFs* out);

    // Open inodes: an inode whose last name goes while it is open keeps its data until
    // the last close (close_ref frees it then). At most kMaxOpen distinct inodes.
    static constexpr int kMaxOpen = 128;
    int open_ref(uint32_t ino);
    int close_ref(uint32_t ino);
    int sync() { return cache_.sync(); }
    Cache& cache() { return cache_; }

private:
    int get_inode(uint32_t ino, disk::Inode* out);
    int put_inode(uint32_t ino, const disk::Inode& in);
    int check_zone(uint32_t zone) const;
    // The zone holding block `index` of the file (0: a hole). With `alloc`, allocates it
    // (and indirect blocks) and updates *in (the caller writes the inode back).
    int bmap(disk::Inode* in, uint32_t index, bool alloc, uint32_t* zone);
    // Pointer i of the indirect block `block`: read, or set (the block marked dirty).
    int get_ptr(uint32_t block, uint32_t i, uint32_t* zone);
    int set_ptr(uint32_t block, uint32_t i, uint32_t zone);
    // The one walk over the file's blocks under bytes [offset, offset + len): calls
    // f(buffer, pos, at, n) for each piece (n bytes at file offset pos, at byte `at` of the
    // block; buffer nullptr for a hole). With `alloc`, holes are allocated (in *in; the
    // caller writes the inode back) and a block covered whole is not read. f returns 0 to go
    // on; anything else stops the walk and is returned (as is an error of the walk).
    template <typename F>
    int for_each_block(disk::Inode* in, uint32_t offset, uint32_t len, bool alloc, F f);
    // Calls f(buffer, bit) for each clear bit in [from, to) of the bitmap that starts at
    // block `start`; f returns true to stop there. 1 if it stopped, 0 at the end, or an error.
    template <typename F>
    int for_each_clear_bit(uint32_t start, uint32_t from, uint32_t to, F f);
    int alloc_bit(bool zones, uint32_t* out);
    int free_bit(bool zones, uint32_t bit);
    int alloc_zone(uint32_t* zone);
    int free_zone(uint32_t zone);
    int alloc_inode(uint16_t mode, uint32_t* ino);
    // Frees zones of blocks >= first_block (the whole tree below a freed pointer).
    int free_tree(uint32_t zone, int depth, uint32_t first, uint32_t span, bool* empty);
    int truncate_any(uint32_t ino, uint32_t size, bool dir_ok);
    int write_any(uint32_t ino, uint32_t offset, const void* buf, uint32_t len, bool dir_ok);
    // Calls f(pos, entry) for each slot of the directory from `from`; f returns true to
    // stop there. 1 if it stopped, 0 at the end, or an error.
    template <typename F>
    int for_each_entry(disk::Inode& in, uint32_t from, F f);

    int dir_find(uint32_t dir, const char* name, size_t len, uint32_t* ino, uint32_t* pos);
    int dir_add(uint32_t dir, const char* name, size_t len, uint32_t ino);
    int dir_remove(uint32_t dir, uint32_t pos);
    int dir_set(uint32_t dir, uint32_t pos, uint32_t ino);
    int dir_empty(uint32_t dir);
    // Resolves all but the last component: its directory and the last name.
    int lookup_parent(const char* path, uint32_t* dir, const char** name, size_t* len);
    int release(uint32_t ino, disk::Inode* in);  // nlinks hit 0: free zones and inode
    int writable() const;

    Cache cache_;
    disk::Superblock sb_{};
    bool mounted_ = false;
    bool read_only_ = false;
    uint32_t now_ = 0;
    uint32_t inode_table_ = 0;
    uint32_t zone_hint_ = 1;
    uint32_t inode_hint_ = 1;
    struct OpenRef {
        uint32_t ino, refs;
    };
    OpenRef open_[kMaxOpen] = {};
    OpenRef* open_entry(uint32_t ino);
    // nlinks reached 0: free the inode now, or at its last close.
    int drop(uint32_t ino, disk::Inode* in);
};

}  // namespace mfs
