#include "vmm/image/minix_image.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

namespace ukvm {

namespace mfs = minixfs;

namespace {

static_assert(std::endian::native == std::endian::little,
              "images are little-endian and read by copying bytes into the structs");

using Block = std::array<std::uint8_t, mfs::kBlockSize>;

// Symlink targets longer than PATH_MAX cannot be made on the host anyway.
constexpr std::uint32_t kMaxSymlinkRead = 4096;
// What the guest's MFS server accepts: the target fits one block with room for a NUL.
constexpr std::uint32_t kMaxSymlinkWrite = mfs::kBlockSize - 1;
// Keeps default_inodes() within what the 16-bit first_data_zone can point past.
constexpr std::uint32_t kMaxDefaultInodes = 60000 * mfs::kInodesPerBlock;

bool test_bit(const std::vector<std::uint8_t>& map, std::uint64_t bit) {
    return (map[bit / 8] >> (bit % 8)) & 1;
}

void set_bit(std::vector<std::uint8_t>& map, std::uint64_t bit) {
    map[bit / 8] = static_cast<std::uint8_t>(map[bit / 8] | (1u << (bit % 8)));
}

std::uint32_t zone_at(const Block& block, std::uint64_t i) {
    std::uint32_t zone;
    std::memcpy(&zone, block.data() + i * sizeof zone, sizeof zone);
    return zone;
}

void set_zone_at(Block& block, std::uint64_t i, std::uint32_t zone) {
    std::memcpy(block.data() + i * sizeof zone, &zone, sizeof zone);
}

// Which inode slot holds block `index` of a file, how many levels of indirect blocks
// lie below it, and the index within that subtree.
struct ZonePath {
    std::uint32_t slot;
    int depth;
    std::uint64_t index;
};

std::optional<ZonePath> zone_path(std::uint64_t index) {
    if (index < mfs::kDirectZones) return ZonePath{static_cast<std::uint32_t>(index), 0, 0};
    index -= mfs::kDirectZones;
    std::uint64_t span = mfs::kZonesPerBlock;
    for (std::uint32_t slot = mfs::kIndirectSlot; slot <= mfs::kTripleIndirectSlot; ++slot) {
        if (index < span)
            return ZonePath{slot, static_cast<int>(slot - mfs::kIndirectSlot + 1), index};
        index -= span;
        span *= mfs::kZonesPerBlock;
    }
    return std::nullopt;
}

std::uint64_t power_of_zones_per_block(int exponent) {
    std::uint64_t v = 1;
    for (int i = 0; i < exponent; ++i) v *= mfs::kZonesPerBlock;
    return v;
}

std::string size_text(std::uint64_t bytes) {
    if (bytes % (1u << 30) == 0 && bytes > 0) return fmt::format("{}G", bytes >> 30);
    if (bytes % (1u << 20) == 0 && bytes > 0) return fmt::format("{}M", bytes >> 20);
    if (bytes % (1u << 10) == 0 && bytes > 0) return fmt::format("{}K", bytes >> 10);
    return fmt::format("{} bytes", bytes);
}

}  // namespace

MinixImage::MinixImage(Fd fd, std::string name, bool writable)
    : fd_(std::move(fd)), name_(std::move(name)), writable_(writable) {}

void MinixImage::corrupt(const std::string& what) const {
    throw ImageError(fmt::format("{}: corrupt MINIX image: {}", name_, what));
}

void MinixImage::read_at(std::uint64_t offset, std::span<std::uint8_t> out) const {
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t r = ::pread(fd_.get(), out.data() + done, out.size() - done,
                                  static_cast<off_t>(offset + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            throw ImageError(
                fmt::format("{}: read at byte {}: {}", name_, offset + done, std::strerror(errno)));
        }
        if (r == 0) {
            corrupt(fmt::format("byte {} is past the end of the file (truncated image?)",
                                offset + done));
        }
        done += static_cast<std::size_t>(r);
    }
}

void MinixImage::write_at(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t r = ::pwrite(fd_.get(), data.data() + done, data.size() - done,
                                   static_cast<off_t>(offset + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            throw ImageError(fmt::format("{}: write at byte {}: {}", name_, offset + done,
                                         std::strerror(errno)));
        }
        done += static_cast<std::size_t>(r);
    }
}

void MinixImage::read_block(std::uint32_t block, std::span<std::uint8_t> out) const {
    read_at(std::uint64_t{block} * mfs::kBlockSize, out);
}

void MinixImage::write_block(std::uint32_t block, std::span<const std::uint8_t> data) {
    write_at(std::uint64_t{block} * mfs::kBlockSize, data);
}

std::uint32_t MinixImage::default_inodes(std::uint64_t blocks) {
    const std::uint64_t wanted = std::max<std::uint64_t>(blocks / 3, 1);
    const std::uint64_t rounded = mfs::inode_table_blocks(wanted) * mfs::kInodesPerBlock;
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(rounded, kMaxDefaultInodes));
}

MinixImage MinixImage::format(Fd fd, std::string name, const FormatOptions& options) {
    const std::uint64_t size = options.size_bytes;
    if (size % mfs::kBlockSize != 0) {
        throw ImageError(fmt::format("image size {} is not a multiple of 1024 bytes", size));
    }
    if (size < kMinImageSize) {
        throw ImageError(fmt::format("image size {} is too small: the minimum is {}",
                                     size_text(size), size_text(kMinImageSize)));
    }
    if (size > kMaxImageSize) {
        throw ImageError(fmt::format("image size {} is too large: the maximum is {}",
                                     size_text(size), size_text(kMaxImageSize)));
    }
    const std::uint64_t blocks = size / mfs::kBlockSize;
    const std::uint64_t ninodes = options.inodes != 0 ? options.inodes : default_inodes(blocks);
    const std::uint64_t imap = mfs::bitmap_blocks(ninodes + 1);
    const std::uint64_t itable = mfs::inode_table_blocks(ninodes);
    // The zone bitmap covers the data area, whose start depends on the bitmap's own size.
    std::uint64_t zmap = 1;
    std::uint64_t first = 0;
    for (;;) {
        first = mfs::kBitmapStartBlock + imap + zmap + itable;
        const std::uint64_t data = blocks > first ? blocks - first : 0;
        const std::uint64_t need = std::max<std::uint64_t>(mfs::bitmap_blocks(data + 1), 1);
        if (need <= zmap) break;
        zmap = need;
    }
    if (first > 0xffff) {
        throw ImageError(
            fmt::format("{} inodes are too many: their table would end at block {}, past the 65535 "
                        "the superblock can address; ask for fewer inodes",
                        ninodes, first));
    }
    if (first + 1 > blocks) {
        throw ImageError(
            fmt::format("{} inodes do not fit in a {} image: bitmaps and inode table alone need {} "
                        "blocks of 1K; ask for fewer inodes or a larger size",
                        ninodes, size_text(size), first + 1));
    }

    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
        throw ImageError(
            fmt::format("{}: cannot size the image to {}: {}", name, size, std::strerror(errno)));
    }
    MinixImage image(std::move(fd), std::move(name), true);
    mfs::Superblock& s = image.super_;
    s.ninodes = static_cast<std::uint32_t>(ninodes);
    s.imap_blocks = static_cast<std::uint16_t>(imap);
    s.zmap_blocks = static_cast<std::uint16_t>(zmap);
    s.first_data_zone = static_cast<std::uint16_t>(first);
    s.log_zone_size = 0;
    s.max_size = mfs::kMaxFileSize;
    s.zones = static_cast<std::uint32_t>(blocks);
    s.magic = mfs::kMagic;
    s.block_size = mfs::kBlockSize;
    image.inode_table_ = mfs::inode_table_block(s.imap_blocks, s.zmap_blocks);

    // Bit 0 is reserved and bits past the last inode or zone are set, so that an
    // allocator scanning whole bytes never hands them out.
    image.inode_map_.assign(imap * mfs::kBlockSize, 0);
    image.zone_map_.assign(zmap * mfs::kBlockSize, 0);
    set_bit(image.inode_map_, 0);
    set_bit(image.zone_map_, 0);
    for (std::uint64_t bit = ninodes + 1; bit < imap * mfs::kBitsPerBlock; ++bit) {
        set_bit(image.inode_map_, bit);
    }
    for (std::uint64_t bit = blocks - first + 1; bit < zmap * mfs::kBitsPerBlock; ++bit) {
        set_bit(image.zone_map_, bit);
    }
    image.next_inode_ = 1;
    image.next_zone_ = 1;

    Block super{};
    std::memcpy(super.data(), &s, sizeof s);
    image.write_block(mfs::kSuperblockBlock, super);

    const std::uint32_t root = image.new_inode(mfs::kTypeDirectory | 0755, options.root_mtime);
    if (root != mfs::kRootInode) throw std::logic_error("the root is not the first inode");
    image.append_entry(root, ".", root);
    image.append_entry(root, "..", root);
    mfs::Inode raw = image.raw_inode(root);
    raw.nlinks = 2;
    image.write_inode(root, raw);
    image.flush();
    return image;
}

void MinixImage::check_superblock(std::uint64_t file_size) const {
    const mfs::Superblock& s = super_;
    if (s.magic != mfs::kMagic) {
        corrupt(fmt::format(
            "bad magic 0x{:04x} in the superblock (a MINIX v3 file system has 0x{:04x})", s.magic,
            mfs::kMagic));
    }
    if (s.block_size != mfs::kBlockSize) {
        corrupt(fmt::format("block size {} (only 1024 is supported)", s.block_size));
    }
    if (s.log_zone_size != 0) {
        corrupt(fmt::format("log_zone_size {} (only 0, one block per zone, is supported)",
                            s.log_zone_size));
    }
    if (s.ninodes == 0) corrupt("the superblock says there are no inodes");
    if (std::uint64_t{s.imap_blocks} * mfs::kBitsPerBlock < std::uint64_t{s.ninodes} + 1) {
        corrupt(
            fmt::format("{} inode-bitmap blocks cannot map {} inodes", s.imap_blocks, s.ninodes));
    }
    const std::uint64_t data_start =
        mfs::inode_table_block(s.imap_blocks, s.zmap_blocks) + mfs::inode_table_blocks(s.ninodes);
    if (s.first_data_zone < data_start) {
        corrupt(fmt::format(
            "first data zone {} lies inside the bitmaps or the inode table (they end at "
            "block {})",
            s.first_data_zone, data_start));
    }
    if (s.zones <= s.first_data_zone) {
        corrupt(fmt::format("the device has {} blocks, none of them after the first data zone {}",
                            s.zones, s.first_data_zone));
    }
    if (std::uint64_t{s.zmap_blocks} * mfs::kBitsPerBlock < s.zones - s.first_data_zone + 1) {
        corrupt(fmt::format("{} zone-bitmap blocks cannot map {} zones", s.zmap_blocks,
                            s.zones - s.first_data_zone));
    }
    if (std::uint64_t{s.zones} * mfs::kBlockSize > file_size) {
        corrupt(
            fmt::format("the superblock says {} blocks ({} bytes) but the file has only {} bytes "
                        "(truncated?)",
                        s.zones, std::uint64_t{s.zones} * mfs::kBlockSize, file_size));
    }
}

MinixImage MinixImage::open(const std::filesystem::path& path, bool writable) {
    Fd fd(::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC));
    if (!fd.valid()) {
        throw ImageError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw ImageError(fmt::format("{}: stat: {}", path.string(), std::strerror(errno)));
    }
    if (!S_ISREG(st.st_mode)) throw ImageError(path.string() + ": not a regular file");

    MinixImage image(std::move(fd), path.string(), writable);
    const auto file_size = static_cast<std::uint64_t>(st.st_size);
    if (file_size < 2 * mfs::kBlockSize) {
        image.corrupt(
            fmt::format("the file has {} bytes, too few to hold a superblock", file_size));
    }
    Block super;
    image.read_block(mfs::kSuperblockBlock, super);
    std::memcpy(&image.super_, super.data(), sizeof image.super_);
    image.check_superblock(file_size);
    image.inode_table_ = mfs::inode_table_block(image.super_.imap_blocks, image.super_.zmap_blocks);
    if (!image.inode(mfs::kRootInode).is_directory()) {
        image.corrupt("the root inode (1) is not a directory");
    }
    if (writable) {
        image.inode_map_.resize(std::uint64_t{image.super_.imap_blocks} * mfs::kBlockSize);
        image.zone_map_.resize(std::uint64_t{image.super_.zmap_blocks} * mfs::kBlockSize);
        image.read_at(std::uint64_t{mfs::kBitmapStartBlock} * mfs::kBlockSize, image.inode_map_);
        image.read_at(
            (std::uint64_t{mfs::kBitmapStartBlock} + image.super_.imap_blocks) * mfs::kBlockSize,
            image.zone_map_);
        image.next_inode_ = 1;
        image.next_zone_ = 1;
    }
    return image;
}

mfs::Inode MinixImage::raw_inode(std::uint32_t number) const {
    mfs::Inode inode;
    std::array<std::uint8_t, sizeof inode> bytes;
    read_at(inode_table_ * mfs::kBlockSize + std::uint64_t{number - 1} * sizeof inode, bytes);
    std::memcpy(&inode, bytes.data(), sizeof inode);
    return inode;
}

void MinixImage::write_inode(std::uint32_t number, const mfs::Inode& inode) {
    std::array<std::uint8_t, sizeof inode> bytes;
    std::memcpy(bytes.data(), &inode, sizeof inode);
    write_at(inode_table_ * mfs::kBlockSize + std::uint64_t{number - 1} * sizeof inode, bytes);
}

InodeInfo MinixImage::inode(std::uint32_t number) const {
    if (number == 0 || number > super_.ninodes) {
        corrupt(fmt::format("inode number {} is out of range (1..{})", number, super_.ninodes));
    }
    const mfs::Inode raw = raw_inode(number);
    if (raw.mode == 0) corrupt(fmt::format("inode {} is in use but free (mode 0)", number));
    InodeInfo info{number, raw.mode, raw.nlinks, raw.uid, raw.gid, raw.size, raw.mtime};
    switch (info.type()) {
        case mfs::kTypeRegular:
        case mfs::kTypeDirectory:
        case mfs::kTypeSymlink:
        case mfs::kTypeCharDevice:
        case mfs::kTypeBlockDevice:
        case mfs::kTypeFifo:
        case mfs::kTypeSocket:
            break;
        default:
            corrupt(
                fmt::format("inode {} has an unknown file type (mode 0{:o})", number, raw.mode));
    }
    if (raw.size > super_.max_size) {
        corrupt(fmt::format("inode {} claims {} bytes, more than the file system's maximum {}",
                            number, raw.size, super_.max_size));
    }
    if (info.is_directory()) {
        const std::uint64_t data_bytes =
            std::uint64_t{super_.zones - super_.first_data_zone} * mfs::kBlockSize;
        if (raw.size % sizeof(mfs::DirEntry) != 0 || raw.size < 2 * sizeof(mfs::DirEntry) ||
            raw.size > data_bytes) {
            corrupt(fmt::format(
                "directory inode {} has size {} (want a multiple of 64, at least 128 for "
                "'.' and '..', at most the {} bytes of the data area)",
                number, raw.size, data_bytes));
        }
    }
    if (info.is_symlink() && (raw.size == 0 || raw.size > kMaxSymlinkRead)) {
        corrupt(fmt::format("symlink inode {} has length {} (want 1..{})", number, raw.size,
                            kMaxSymlinkRead));
    }
    return info;
}

void MinixImage::check_zone(std::uint32_t number, std::uint32_t zone) const {
    if (zone != 0 && (zone < super_.first_data_zone || zone >= super_.zones)) {
        corrupt(fmt::format("inode {}: zone pointer {} is outside the data area (blocks {}..{})",
                            number, zone, super_.first_data_zone, super_.zones - 1));
    }
}

std::uint32_t MinixImage::map_block(std::uint32_t number, const mfs::Inode& inode,
                                    std::uint64_t index, IndirectCache* cache) const {
    const auto path = zone_path(index);
    if (!path) corrupt(fmt::format("inode {}: block {} is beyond triple-indirect", number, index));
    // A fixed number of levels per slot: a zone tree cannot loop, whatever it points at.
    std::uint32_t zone = inode.zone[path->slot];
    for (int level = path->depth; level > 0; --level) {
        check_zone(number, zone);
        if (zone == 0) return 0;
        Block local;
        Block* block = &local;
        if (cache != nullptr) {
            block = &cache->block[level];
            if (cache->zone[level] != zone) {
                cache->zone[level] = 0;  // stays invalid if the read throws
                read_block(zone, *block);
                cache->zone[level] = zone;
            }
        } else {
            read_block(zone, local);
        }
        const std::uint64_t span = power_of_zones_per_block(level - 1);
        zone = zone_at(*block, (path->index / span) % mfs::kZonesPerBlock);
    }
    check_zone(number, zone);
    return zone;
}

std::uint32_t MinixImage::map_block_for_write(std::uint32_t number, mfs::Inode& inode,
                                              std::uint64_t index) {
    const auto path = zone_path(index);
    if (!path) {
        throw ImageError(fmt::format("{}: inode {}: file too large", name_, number));
    }
    const Block zeros{};
    std::uint32_t& top = inode.zone[path->slot];
    check_zone(number, top);
    if (top == 0) {
        top = allocate_zone();
        if (path->depth > 0) write_block(top, zeros);
    }
    std::uint32_t zone = top;
    for (int level = path->depth; level > 0; --level) {
        Block block;
        read_block(zone, block);
        const std::uint64_t span = power_of_zones_per_block(level - 1);
        const std::uint64_t i = (path->index / span) % mfs::kZonesPerBlock;
        std::uint32_t next = zone_at(block, i);
        check_zone(number, next);
        if (next == 0) {
            next = allocate_zone();
            if (level > 1) write_block(next, zeros);
            set_zone_at(block, i, next);
            write_block(zone, block);
        }
        zone = next;
    }
    return zone;
}

std::uint32_t MinixImage::allocate_zone() {
    require_writable();
    const std::uint64_t count = super_.zones - super_.first_data_zone;
    for (std::uint64_t pass = 0; pass < 2; ++pass) {
        const std::uint64_t start = pass == 0 ? next_zone_ : 1;
        for (std::uint64_t bit = start; bit <= count; ++bit) {
            if (test_bit(zone_map_, bit)) continue;
            set_bit(zone_map_, bit);
            next_zone_ = static_cast<std::uint32_t>(bit + 1);
            return static_cast<std::uint32_t>(super_.first_data_zone + bit - 1);
        }
    }
    throw ImageError(
        fmt::format("{}: image full: all {} data blocks of 1K are in use", name_, count));
}

std::uint32_t MinixImage::allocate_inode() {
    require_writable();
    for (std::uint64_t pass = 0; pass < 2; ++pass) {
        const std::uint64_t start = pass == 0 ? next_inode_ : 1;
        for (std::uint64_t bit = start; bit <= super_.ninodes; ++bit) {
            if (test_bit(inode_map_, bit)) continue;
            set_bit(inode_map_, bit);
            next_inode_ = static_cast<std::uint32_t>(bit + 1);
            return static_cast<std::uint32_t>(bit);
        }
    }
    throw ImageError(fmt::format("{}: out of inodes: all {} are in use", name_, super_.ninodes));
}

std::uint64_t MinixImage::free_zones() const {
    require_writable();
    std::uint64_t n = 0;
    for (std::uint64_t bit = 1; bit <= super_.zones - super_.first_data_zone; ++bit) {
        n += test_bit(zone_map_, bit) ? 0 : 1;
    }
    return n;
}

std::uint64_t MinixImage::free_inodes() const {
    require_writable();
    std::uint64_t n = 0;
    for (std::uint64_t bit = 1; bit <= super_.ninodes; ++bit) {
        n += test_bit(inode_map_, bit) ? 0 : 1;
    }
    return n;
}

void MinixImage::require_writable() const {
    if (!writable_) throw std::logic_error(name_ + ": image opened read-only");
}

void MinixImage::flush() {
    require_writable();
    write_at(std::uint64_t{mfs::kBitmapStartBlock} * mfs::kBlockSize, inode_map_);
    write_at((std::uint64_t{mfs::kBitmapStartBlock} + super_.imap_blocks) * mfs::kBlockSize,
             zone_map_);
    if (::fsync(fd_.get()) != 0) {
        throw ImageError(fmt::format("{}: fsync: {}", name_, std::strerror(errno)));
    }
}

std::vector<DirectoryEntry> MinixImage::read_directory(std::uint32_t dir) const {
    const InodeInfo info = inode(dir);
    if (!info.is_directory()) {
        throw ImageError(fmt::format("{}: inode {} is not a directory", name_, dir));
    }
    const mfs::Inode raw = raw_inode(dir);
    std::vector<DirectoryEntry> entries;
    std::unordered_set<std::string> seen;
    const std::uint64_t blocks = (std::uint64_t{raw.size} + mfs::kBlockSize - 1) / mfs::kBlockSize;
    IndirectCache cache;
    for (std::uint64_t index = 0; index < blocks; ++index) {
        const std::uint32_t zone = map_block(dir, raw, index, &cache);
        if (zone == 0) continue;  // a hole: 16 free slots
        Block block;
        read_block(zone, block);
        const std::uint64_t bytes =
            std::min<std::uint64_t>(mfs::kBlockSize, raw.size - index * mfs::kBlockSize);
        for (std::uint64_t offset = 0; offset < bytes; offset += sizeof(mfs::DirEntry)) {
            mfs::DirEntry e;
            std::memcpy(&e, block.data() + offset, sizeof e);
            if (e.inode == 0) continue;
            std::string name(e.name, ::strnlen(e.name, mfs::kNameMax));
            if (name.empty()) {
                corrupt(fmt::format("directory inode {}: an entry for inode {} has an empty name",
                                    dir, e.inode));
            }
            if (name.find('/') != std::string::npos) {
                corrupt(fmt::format("directory inode {}: entry name '{}' contains '/'", dir,
                                    printable(name)));
            }
            if (e.inode > super_.ninodes) {
                corrupt(fmt::format(
                    "directory inode {}: entry '{}' refers to inode {}, beyond the last "
                    "inode ({})",
                    dir, printable(name), e.inode, super_.ninodes));
            }
            if (name == "." && e.inode != dir) {
                corrupt(fmt::format("directory inode {}: '.' refers to inode {}, not itself", dir,
                                    e.inode));
            }
            if (!seen.insert(name).second) {
                corrupt(fmt::format("directory inode {}: the name '{}' appears twice", dir,
                                    printable(name)));
            }
            entries.push_back({std::move(name), e.inode});
        }
    }
    return entries;
}

void MinixImage::read_file(std::uint32_t number, const ByteSink& sink) const {
    const InodeInfo info = inode(number);
    if (!info.is_regular() && !info.is_symlink()) {
        throw ImageError(
            fmt::format("{}: inode {} is not a regular file or symlink", name_, number));
    }
    const mfs::Inode raw = raw_inode(number);
    const std::uint64_t blocks = (std::uint64_t{raw.size} + mfs::kBlockSize - 1) / mfs::kBlockSize;
    Block block;
    IndirectCache cache;
    for (std::uint64_t index = 0; index < blocks; ++index) {
        const std::uint32_t zone = map_block(number, raw, index, &cache);
        if (zone == 0) continue;
        read_block(zone, block);
        const std::uint64_t offset = index * mfs::kBlockSize;
        const std::size_t bytes =
            static_cast<std::size_t>(std::min<std::uint64_t>(mfs::kBlockSize, raw.size - offset));
        sink(offset, std::span<const std::uint8_t>(block.data(), bytes));
    }
}

std::string MinixImage::read_symlink(std::uint32_t number) const {
    if (!inode(number).is_symlink()) {
        throw ImageError(fmt::format("{}: inode {} is not a symlink", name_, number));
    }
    std::string target;
    read_file(number, [&](std::uint64_t offset, std::span<const std::uint8_t> bytes) {
        target.resize(offset);  // a hole reads as NULs, which end the target below
        target.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    });
    // Linux's minix driver stores the terminating NUL; MINIX does not.
    target.resize(::strnlen(target.c_str(), target.size()));
    if (target.empty()) corrupt(fmt::format("symlink inode {} has an empty target", number));
    return target;
}

std::optional<std::uint32_t> MinixImage::lookup(std::string_view path) const {
    std::uint32_t current = mfs::kRootInode;
    std::string walked;
    while (!path.empty()) {
        const std::size_t slash = path.find('/');
        const std::string_view component = path.substr(0, slash);
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
        if (component.empty()) continue;
        if (!inode(current).is_directory()) {
            throw ImageError(fmt::format("{}: '{}' is not a directory", name_, walked));
        }
        const auto entries = read_directory(current);
        const auto it = std::find_if(entries.begin(), entries.end(),
                                     [&](const DirectoryEntry& e) { return e.name == component; });
        if (it == entries.end()) return std::nullopt;
        current = it->inode;
        walked += "/" + std::string(component);
    }
    return current;
}

void MinixImage::check_new_name(std::uint32_t parent, std::string_view name) {
    const std::string shown = printable(name);
    if (name.empty() || name.size() > mfs::kNameMax) {
        throw ImageError(fmt::format("{}: cannot add '{}': names are 1 to {} bytes long", name_,
                                     shown, mfs::kNameMax));
    }
    if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos ||
        name == "." || name == "..") {
        throw ImageError(fmt::format("{}: cannot add '{}': not a valid name", name_, shown));
    }
    auto known = names_.find(parent);
    if (known == names_.end()) {
        std::unordered_set<std::string> names;
        for (DirectoryEntry& e : read_directory(parent)) names.insert(std::move(e.name));
        known = names_.emplace(parent, std::move(names)).first;
    }
    if (known->second.contains(std::string(name))) {
        throw ImageError(fmt::format("{}: cannot add '{}': it already exists", name_, shown));
    }
}

void MinixImage::append_entry(std::uint32_t parent, std::string_view name, std::uint32_t target) {
    mfs::Inode dir = raw_inode(parent);
    const std::uint64_t offset = dir.size;
    if (offset + sizeof(mfs::DirEntry) > super_.max_size) {
        throw ImageError(fmt::format("{}: directory inode {} is full", name_, parent));
    }
    const std::uint64_t index = offset / mfs::kBlockSize;
    Block block{};
    std::uint32_t zone = map_block(parent, dir, index);
    if (zone == 0) {
        zone = map_block_for_write(parent, dir, index);
    } else {
        read_block(zone, block);
    }
    mfs::DirEntry entry{};
    entry.inode = target;
    std::memcpy(entry.name, name.data(), std::min<std::size_t>(name.size(), mfs::kNameMax));
    std::memcpy(block.data() + offset % mfs::kBlockSize, &entry, sizeof entry);
    write_block(zone, block);
    dir.size = static_cast<std::uint32_t>(offset + sizeof entry);
    write_inode(parent, dir);
    if (const auto known = names_.find(parent); known != names_.end()) {
        known->second.emplace(name);
    }
}

std::uint32_t MinixImage::new_inode(std::uint16_t mode, std::uint32_t mtime) {
    const std::uint32_t number = allocate_inode();
    mfs::Inode inode{};
    inode.mode = mode;
    inode.atime = inode.mtime = inode.ctime = mtime;
    write_inode(number, inode);
    return number;
}

namespace {

void add_link_count(mfs::Inode& inode, const std::string& image, std::uint32_t number) {
    if (inode.nlinks == 0xffff) {
        throw ImageError(fmt::format("{}: inode {} has too many links", image, number));
    }
    ++inode.nlinks;
}

}  // namespace

std::uint32_t MinixImage::add_directory(std::uint32_t parent, std::string_view name,
                                        const FileAttributes& attributes) {
    require_writable();
    check_new_name(parent, name);
    mfs::Inode parent_inode = raw_inode(parent);
    add_link_count(parent_inode, name_, parent);  // the new directory's ".."

    const std::uint32_t number = new_inode(
        mfs::kTypeDirectory | (attributes.permissions & mfs::kPermissionMask), attributes.mtime);
    append_entry(number, ".", number);
    append_entry(number, "..", parent);
    mfs::Inode inode = raw_inode(number);
    inode.nlinks = 2;
    write_inode(number, inode);

    append_entry(parent, name, number);
    parent_inode = raw_inode(parent);
    add_link_count(parent_inode, name_, parent);
    write_inode(parent, parent_inode);
    return number;
}

void MinixImage::write_contents(std::uint32_t number, mfs::Inode& inode, const ByteSource& source) {
    Block block;
    std::uint64_t size = 0;
    for (;;) {
        std::size_t got = 0;
        while (got < block.size()) {
            const std::size_t n = source(std::span<std::uint8_t>(block).subspan(got));
            if (n == 0) break;
            got += std::min(n, block.size() - got);
        }
        if (got == 0) break;
        if (size + got > super_.max_size) {
            throw ImageError(fmt::format("{}: a file is larger than the {}-byte maximum", name_,
                                         super_.max_size));
        }
        std::fill(block.begin() + static_cast<std::ptrdiff_t>(got), block.end(), 0);
        write_block(map_block_for_write(number, inode, size / mfs::kBlockSize), block);
        size += got;
        if (got < block.size()) break;
    }
    inode.size = static_cast<std::uint32_t>(size);
}

std::uint32_t MinixImage::add_file(std::uint32_t parent, std::string_view name,
                                   const FileAttributes& attributes, const ByteSource& source) {
    require_writable();
    check_new_name(parent, name);
    const std::uint32_t number = new_inode(
        mfs::kTypeRegular | (attributes.permissions & mfs::kPermissionMask), attributes.mtime);
    mfs::Inode inode = raw_inode(number);
    write_contents(number, inode, source);
    inode.nlinks = 1;
    write_inode(number, inode);
    append_entry(parent, name, number);
    return number;
}

std::uint32_t MinixImage::add_symlink(std::uint32_t parent, std::string_view name,
                                      std::string_view target, const FileAttributes& attributes) {
    require_writable();
    check_new_name(parent, name);
    if (target.empty() || target.size() > kMaxSymlinkWrite ||
        target.find('\0') != std::string_view::npos) {
        throw ImageError(fmt::format("{}: symlink '{}': the target must be 1 to {} bytes, no NUL",
                                     name_, printable(name), kMaxSymlinkWrite));
    }
    const std::uint32_t number = new_inode(mfs::kTypeSymlink | 0777, attributes.mtime);
    mfs::Inode inode = raw_inode(number);
    std::size_t done = 0;
    write_contents(number, inode, [&](std::span<std::uint8_t> out) {
        const std::size_t n = std::min(out.size(), target.size() - done);
        std::memcpy(out.data(), target.data() + done, n);
        done += n;
        return n;
    });
    inode.nlinks = 1;
    write_inode(number, inode);
    append_entry(parent, name, number);
    return number;
}

void MinixImage::add_link(std::uint32_t parent, std::string_view name, std::uint32_t target) {
    require_writable();
    if (inode(target).is_directory()) {
        throw ImageError(fmt::format("{}: cannot hard-link directory inode {}", name_, target));
    }
    check_new_name(parent, name);
    mfs::Inode inode = raw_inode(target);
    add_link_count(inode, name_, target);
    append_entry(parent, name, target);
    write_inode(target, inode);
}

std::string printable(std::string_view name) {
    std::string out(name);
    for (char& c : out) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    return out;
}

std::uint64_t parse_size(std::string_view text) {
    const auto bad = [&] {
        return ImageError(fmt::format(
            "bad size '{}': want a number of bytes with an optional K, M or G suffix, like 32M",
            text));
    };
    std::uint64_t value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc() || ptr == text.data()) throw bad();
    const std::string_view suffix(ptr, static_cast<std::size_t>(end - ptr));
    unsigned shift = 0;
    if (suffix == "K" || suffix == "k") {
        shift = 10;
    } else if (suffix == "M" || suffix == "m") {
        shift = 20;
    } else if (suffix == "G" || suffix == "g") {
        shift = 30;
    } else if (!suffix.empty()) {
        throw bad();
    }
    if (shift != 0 && value > (~std::uint64_t{0} >> shift)) throw bad();
    return value << shift;
}

}  // namespace ukvm
