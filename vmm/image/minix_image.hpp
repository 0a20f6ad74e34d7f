// A MINIX v3 file system image on the host (the format in ukvm/minixfs.h): format a new
// one, add directories, files and symlinks, and read trees back. Every read treats the
// image as hostile: block, inode and zone numbers, sizes and directory entries are
// checked before use, and anything wrong is an ImageError naming what is wrong.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ukvm/minixfs.h"
#include "vmm/kvm.hpp"

namespace ukvm {

// A problem the user can fix or must know about: a corrupt image, a full one, bad sizes.
class ImageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct FormatOptions {
    std::uint64_t size_bytes = 0;  // a multiple of 1 KiB, kMinImageSize..kMaxImageSize
    std::uint32_t inodes = 0;      // 0: default_inodes()
    std::uint32_t root_mtime = 0;
};

struct FileAttributes {
    std::uint16_t permissions = 0644;  // the low 12 mode bits
    std::uint32_t mtime = 0;
};

// An inode as read from the image, already checked (see MinixImage::inode).
struct InodeInfo {
    std::uint32_t number = 0;
    std::uint16_t mode = 0;
    std::uint16_t nlinks = 0;
    std::uint16_t uid = 0;
    std::uint16_t gid = 0;
    std::uint32_t size = 0;
    std::uint32_t mtime = 0;

    std::uint16_t type() const { return mode & minixfs::kTypeMask; }
    bool is_directory() const { return type() == minixfs::kTypeDirectory; }
    bool is_regular() const { return type() == minixfs::kTypeRegular; }
    bool is_symlink() const { return type() == minixfs::kTypeSymlink; }
};

struct DirectoryEntry {
    std::string name;
    std::uint32_t inode = 0;
};

// Fills the buffer with the next bytes of a file; returns how many, 0 at the end.
using ByteSource = std::function<std::size_t(std::span<std::uint8_t>)>;
// Receives a file's bytes at increasing offsets; holes (unallocated zones) are skipped.
using ByteSink = std::function<void(std::uint64_t offset, std::span<const std::uint8_t>)>;

inline constexpr std::uint64_t kMinImageSize = 16 * 1024;
// Zone numbers would allow 4 TiB; 4 GiB keeps every block number and byte offset of the
// device in 32 bits for the guest's MFS server and is far beyond any guest disk we need.
inline constexpr std::uint64_t kMaxImageSize = std::uint64_t{4} << 30;

class MinixImage {
public:
    // Lays out an empty file system (just the root directory) on `fd`, an empty writable
    // file that this call sizes. `name` is used in messages only.
    static MinixImage format(Fd fd, std::string name, const FormatOptions& options);
    // Opens an existing image and checks its superblock and root directory.
    static MinixImage open(const std::filesystem::path& path, bool writable = false);

    // One inode per 3 KiB of device, filling whole inode-table blocks (what mkfs.minix does).
    static std::uint32_t default_inodes(std::uint64_t blocks);

    MinixImage(MinixImage&&) noexcept = default;
    MinixImage& operator=(MinixImage&&) noexcept = default;

    const minixfs::Superblock& superblock() const { return super_; }
    const std::string& name() const { return name_; }

    // Inode `number`, checked: in range, in use, of a known type, with a plausible size.
    InodeInfo inode(std::uint32_t number) const;
    // A directory's entries in on-disk order, "." and ".." included. Each name is non-empty
    // and has no '/'; each inode number is in range; no name appears twice.
    std::vector<DirectoryEntry> read_directory(std::uint32_t dir) const;
    // A regular file's or symlink's contents, zone by zone.
    void read_file(std::uint32_t number, const ByteSink& sink) const;
    std::string read_symlink(std::uint32_t number) const;
    // The inode a '/'-separated path names, starting at the root; symlinks are not followed.
    // nullopt if a component does not exist; ImageError if one is not a directory.
    std::optional<std::uint32_t> lookup(std::string_view path) const;

    // Writing (an image from format() or open(..., true)). Names: 1 to 60 bytes, no '/',
    // not "." or "..", not already in the directory. Each returns the new inode.
    std::uint32_t add_directory(std::uint32_t parent, std::string_view name,
                                const FileAttributes& attributes);
    std::uint32_t add_file(std::uint32_t parent, std::string_view name,
                           const FileAttributes& attributes, const ByteSource& source);
    std::uint32_t add_symlink(std::uint32_t parent, std::string_view name, std::string_view target,
                              const FileAttributes& attributes);
    // Another name for an existing non-directory inode (a hard link).
    void add_link(std::uint32_t parent, std::string_view name, std::uint32_t target);
    // Writes the bitmaps back and syncs; the image is consistent on disk after this.
    void flush();

    std::uint64_t free_zones() const;
    std::uint64_t free_inodes() const;

private:
    MinixImage(Fd fd, std::string name, bool writable);

    [[noreturn]] void corrupt(const std::string& what) const;
    void read_at(std::uint64_t offset, std::span<std::uint8_t> out) const;
    void write_at(std::uint64_t offset, std::span<const std::uint8_t> data);
    void read_block(std::uint32_t block, std::span<std::uint8_t> out) const;
    void write_block(std::uint32_t block, std::span<const std::uint8_t> data);
    void check_superblock(std::uint64_t file_size) const;

    minixfs::Inode raw_inode(std::uint32_t number) const;
    void write_inode(std::uint32_t number, const minixfs::Inode& inode);
    // The indirect blocks last read at each level, so that walking a whole file reads
    // each indirect block once (and a huge sparse file costs no I/O per hole).
    struct IndirectCache {
        std::uint32_t zone[4] = {};
        std::array<std::uint8_t, minixfs::kBlockSize> block[4];
    };
    // The zone holding block `index` of a file (0 for a hole), every pointer checked.
    std::uint32_t map_block(std::uint32_t number, const minixfs::Inode& inode, std::uint64_t index,
                            IndirectCache* cache = nullptr) const;
    // The same for writing: allocates the zone and any indirect blocks on the way.
    std::uint32_t map_block_for_write(std::uint32_t number, minixfs::Inode& inode,
                                      std::uint64_t index);
    void check_zone(std::uint32_t number, std::uint32_t zone) const;

    std::uint32_t allocate_zone();
    std::uint32_t allocate_inode();
    void require_writable() const;
    void check_new_name(std::uint32_t parent, std::string_view name);
    void append_entry(std::uint32_t parent, std::string_view name, std::uint32_t target);
    std::uint32_t new_inode(std::uint16_t mode, std::uint32_t mtime);
    void write_contents(std::uint32_t number, minixfs::Inode& inode, const ByteSource& source);

    Fd fd_;
    std::string name_;
    bool writable_ = false;
    minixfs::Superblock super_{};
    std::uint64_t inode_table_ = 0;  // first block of the inode table
    // Loaded only when writable; written back by flush().
    std::vector<std::uint8_t> inode_map_;
    std::vector<std::uint8_t> zone_map_;
    std::uint32_t next_zone_ = 0;  // allocation hints: first possibly-free bit
    std::uint32_t next_inode_ = 0;
    // Names in each directory written to, read once: checking each new name against the
    // disk would make filling a directory quadratic.
    std::unordered_map<std::uint32_t, std::unordered_set<std::string>> names_;
};

// A name from an image, fit to print: control bytes become '?'.
std::string printable(std::string_view name);

// A size for humans and the command line: "32M", "512K", "1G", "4096" (bytes).
// Throws ImageError when it is not one.
std::uint64_t parse_size(std::string_view text);

}  // namespace ukvm
