// The MINIX v3 file system on disk, as ukvm uses it: 1024-byte blocks, zone size = block
// size (log_zone_size 0), 64-byte inodes and 64-byte directory entries. The host's
// `ukvm image` tools and the guest's MFS server include this same header, and util-linux
// `mkfs.minix -3` / `fsck.minix` make and check the same format.
//
// Layout in 1 KiB blocks: 0 boot block, 1 superblock, then imap_blocks of inode bitmap,
// zmap_blocks of zone bitmap, the inode table (inode 1 first), and data from
// first_data_zone to zones - 1. Zone numbers are absolute block numbers; 0 means "none"
// (a hole). All fields are little-endian.
//
// Freestanding: fixed-width types only, no library dependencies; see docs/disk-images.md.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace ukvm::minixfs {

inline constexpr uint16_t kMagic = 0x4d5a;  // MINIX v3, in Superblock::magic
inline constexpr uint32_t kBlockSize = 1024;
inline constexpr uint32_t kSuperblockBlock = 1;  // byte offset 1024; block 0 is for booting
inline constexpr uint32_t kBitmapStartBlock = 2;
inline constexpr uint32_t kRootInode = 1;  // inode numbers start at 1; 0 means "no inode"
inline constexpr uint32_t kBitsPerBlock = kBlockSize * 8;

// Inode::zone[]: 7 direct zones, then single-, double- and triple-indirect blocks, each
// an array of kZonesPerBlock zone numbers.
inline constexpr uint32_t kDirectZones = 7;
inline constexpr uint32_t kIndirectSlot = 7;
inline constexpr uint32_t kDoubleIndirectSlot = 8;
inline constexpr uint32_t kTripleIndirectSlot = 9;
inline constexpr uint32_t kZoneSlots = 10;
inline constexpr uint32_t kZonesPerBlock = kBlockSize / sizeof(uint32_t);  // 256

inline constexpr uint32_t kNameMax = 60;  // a name fills it, or ends at the first NUL
// What util-linux mkfs.minix writes to Superblock::max_size (file sizes are signed 32-bit
// in MINIX); far below what the zone tree could address.
inline constexpr uint32_t kMaxFileSize = 0x7fffffff;

// Inode::mode: the POSIX file type bits (same values as Linux and MINIX) and permissions.
inline constexpr uint16_t kTypeMask = 0170000;
inline constexpr uint16_t kTypeSocket = 0140000;
inline constexpr uint16_t kTypeSymlink = 0120000;
inline constexpr uint16_t kTypeRegular = 0100000;
inline constexpr uint16_t kTypeBlockDevice = 0060000;
inline constexpr uint16_t kTypeDirectory = 0040000;
inline constexpr uint16_t kTypeCharDevice = 0020000;
inline constexpr uint16_t kTypeFifo = 0010000;
inline constexpr uint16_t kPermissionMask = 07777;

struct Superblock {
    uint32_t ninodes;  // usable inodes, numbered 1..ninodes
    uint16_t pad0;     // the v1/v2 zone count; unused in v3
    uint16_t imap_blocks;
    uint16_t zmap_blocks;
    uint16_t first_data_zone;  // 2 + imap_blocks + zmap_blocks + inode table blocks
    uint16_t log_zone_size;    // 0: a zone is one block
    uint16_t pad1;
    uint32_t max_size;  // largest file size in bytes
    uint32_t zones;     // size of the device in blocks (zones), metadata included
    uint16_t magic;     // kMagic
    uint16_t pad2;
    uint16_t block_size;  // kBlockSize
    uint8_t disk_version;
    uint8_t pad3;
};
static_assert(sizeof(Superblock) == 32, "the v3 superblock's fields span 32 bytes");
static_assert(offsetof(Superblock, magic) == 24, "the magic sits at offset 24 in every version");
static_assert(offsetof(Superblock, block_size) == 28);

struct Inode {
    uint16_t mode;    // type | permissions; 0 for a free inode
    uint16_t nlinks;  // directory entries naming it (a directory's "." and its children's ".." too)
    uint16_t uid;
    uint16_t gid;
    uint32_t size;  // bytes
    uint32_t atime;
    uint32_t mtime;
    uint32_t ctime;
    uint32_t zone[kZoneSlots];
};
static_assert(sizeof(Inode) == 64, "a v3 inode is 64 bytes");
inline constexpr uint32_t kInodesPerBlock = kBlockSize / sizeof(Inode);  // 16

struct DirEntry {
    uint32_t inode;  // 0: a free slot
    char name[kNameMax];
};
static_assert(sizeof(DirEntry) == 64, "a v3 directory entry is 64 bytes");
inline constexpr uint32_t kDirEntriesPerBlock = kBlockSize / sizeof(DirEntry);  // 16

// Bitmaps: bit 0 of each is reserved (always set). Inode n is inode-bitmap bit n; zone z
// is zone-bitmap bit z - first_data_zone + 1. Bits past the last inode or zone are set.
inline constexpr uint32_t zone_bit(uint32_t zone, uint32_t first_data_zone) {
    return zone - first_data_zone + 1;
}

// Blocks needed to hold `bits` bits (rounded up).
inline constexpr uint64_t bitmap_blocks(uint64_t bits) {
    return (bits + kBitsPerBlock - 1) / kBitsPerBlock;
}

inline constexpr uint64_t inode_table_blocks(uint64_t ninodes) {
    return (ninodes + kInodesPerBlock - 1) / kInodesPerBlock;
}

// Where the inode table starts: right after both bitmaps.
inline constexpr uint64_t inode_table_block(uint32_t imap_blocks, uint32_t zmap_blocks) {
    return kBitmapStartBlock + imap_blocks + zmap_blocks;
}

}  // namespace ukvm::minixfs
