#include "mfs.hpp"

namespace mfs {

namespace {

constexpr uint32_t kBs = disk::kBlockSize;
constexpr uint32_t kEntry = sizeof(disk::DirEntry);
constexpr uint32_t kPer = disk::kZonesPerBlock;
// Blocks addressable through the direct, single- and double-indirect zones.
constexpr uint32_t kMaxBlocks = disk::kDirectZones + kPer + kPer * kPer;

void copy(void* d, const void* s, size_t n) {
    __builtin_memcpy(d, s, n);
}
void zero(void* d, size_t n) {
    __builtin_memset(d, 0, n);
}

uint32_t le32(const uint8_t* p) {
    uint32_t v;
    copy(&v, p, 4);
    return v;
}
void set_le32(uint8_t* p, uint32_t v) {
    copy(p, &v, 4);
}

size_t name_len(const char* name) {
    size_t n = 0;
    while (n < disk::kNameMax && name[n]) ++n;
    return n;
}

bool is_dir(const disk::Inode& in) {
    return (in.mode & disk::kTypeMask) == disk::kTypeDirectory;
}

bool is_dot(const char* name, size_t len) {
    return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

}  // namespace

int BlockDevice::read_block(uint32_t, void*) {
    return kEIo;
}
int BlockDevice::write_block(uint32_t, const void*) {
    return kEIo;
}
int BlockDevice::read_blocks(uint32_t first, uint32_t count, void* data) {
    for (uint32_t i = 0; i < count; ++i)
        if (int r = read_block(first + i, static_cast<uint8_t*>(data) + i * kBs); r < 0) return r;
    return 0;
}
int BlockDevice::write_blocks(uint32_t first, uint32_t count, const void* data) {
    for (uint32_t i = 0; i < count; ++i)
        if (int r = write_block(first + i, static_cast<const uint8_t*>(data) + i * kBs); r < 0)
            return r;
    return 0;
}
int BlockDevice::flush() {
    return 0;
}

// ---- the block cache ----

void Cache::invalidate() {
    for (Buf& b : bufs_) b.valid = b.dirty = false, b.used = 0;
}

uint32_t Cache::dirty_count() const {
    uint32_t n = 0;
    for (const Buf& b : bufs_) n += b.valid && b.dirty;
    return n;
}

Cache::Buf* Cache::find(uint32_t block) {
    for (Buf& b : bufs_)
        if (b.valid && b.block == block) return &b;
    return nullptr;
}

Cache::Buf* Cache::victim(int* err) {
    Buf* v = nullptr;
    for (Buf& b : bufs_) {
        if (!b.valid) return &b;
        if (!v || b.used < v->used) v = &b;
    }
    if (v->dirty) {
        int r = write_back();
        if (r < 0) {
            *err = r;
            return nullptr;
        }
    }
    return v;
}

Cache::Buf* Cache::get(uint32_t block, int* err, bool zero_fill) {
    if (Buf* b = find(block)) {
        b->used = ++clock_;
        if (zero_fill) zero(b->data, kBs);
        return b;
    }
    // Read ahead: the uncached blocks following this one, in one request.
    uint32_t n = 1;
    if (!zero_fill && block < limit_) {
        while (n < kReadAhead && block + n < limit_ && !find(block + n)) ++n;
        if (n > 1 && dev_->read_blocks(block, n, ahead_) < 0) n = 1;
        for (uint32_t i = n - 1; i > 0; --i) {  // the first block last: most recently used
            Buf* v = victim(err);
            if (!v) return nullptr;
            v->block = block + i;
            v->valid = true;
            v->dirty = false;
            v->used = ++clock_;
            copy(v->data, ahead_ + i * kBs, kBs);
        }
    }
    Buf* v = victim(err);
    if (!v) return nullptr;
    v->valid = false;
    if (zero_fill) {
        zero(v->data, kBs);
    } else if (n > 1) {
        copy(v->data, ahead_, kBs);
    } else {
        int r = dev_->read_block(block, v->data);
        if (r < 0) {
            *err = r;
            return nullptr;
        }
    }
    v->block = block;
    v->valid = true;
    v->dirty = false;
    v->used = ++clock_;
    return v;
}

int Cache::write_back() {
    // Runs of consecutive dirty blocks, in block order: one request each.
    for (uint32_t from = 0;;) {
        Buf* first = nullptr;
        for (Buf& b : bufs_)
            if (b.valid && b.dirty && b.block >= from && (!first || b.block < first->block))
                first = &b;
        if (!first) return 0;
        Buf* run[kRun];
        uint32_t n = 0;
        run[n++] = first;
        while (n < kRun) {
            Buf* next = find(first->block + n);
            if (!next || !next->dirty) break;
            run[n++] = next;
        }
        for (uint32_t i = 0; i < n; ++i) copy(run_ + i * kBs, run[i]->data, kBs);
        int r = n == 1 ? dev_->write_block(first->block, run_)
                       : dev_->write_blocks(first->block, n, run_);
        if (r < 0) return r;
        for (uint32_t i = 0; i < n; ++i) run[i]->dirty = false;
        from = first->block + n;
    }
}

int Cache::sync() {
    if (!dev_) return kEIo;
    int r = write_back();
    return r < 0 ? r : dev_->flush();
}

// ---- superblock, inodes, bitmaps ----

int FileSystem::mount(BlockDevice* dev, bool read_only) {
    mounted_ = false;
    cache_.attach(dev);
    int err = 0;
    Cache::Buf* b = cache_.get(disk::kSuperblockBlock, &err);
    if (!b) return err;
    copy(&sb_, b->data, sizeof sb_);
    const disk::Superblock& s = sb_;
    if (s.magic != disk::kMagic || s.block_size != kBs || s.log_zone_size != 0) return kEInval;
    if (s.ninodes == 0 || s.imap_blocks < disk::bitmap_blocks(uint64_t{s.ninodes} + 1))
        return kEInval;
    uint64_t table = disk::inode_table_block(s.imap_blocks, s.zmap_blocks);
    if (s.first_data_zone < table + disk::inode_table_blocks(s.ninodes) ||
        s.zones <= s.first_data_zone ||
        s.zmap_blocks < disk::bitmap_blocks(uint64_t{s.zones} - s.first_data_zone + 1))
        return kEInval;
    inode_table_ = static_cast<uint32_t>(table);
    read_only_ = read_only;
    cache_.set_limit(s.zones);
    for (OpenRef& o : open_) o = {};
    zone_hint_ = inode_hint_ = 1;
    disk::Inode root;
    int r = get_inode(disk::kRootInode, &root);
    if (r < 0) return r;
    if (!is_dir(root)) return kEIo;
    mounted_ = true;
    return 0;
}

int FileSystem::writable() const {
    return read_only_ ? kERoFs : 0;
}

int FileSystem::get_inode(uint32_t ino, disk::Inode* out) {
    if (ino < 1 || ino > sb_.ninodes) return kEIo;
    int err = 0;
    Cache::Buf* b = cache_.get(inode_table_ + (ino - 1) / disk::kInodesPerBlock, &err);
    if (!b) return err;
    copy(out, b->data + (ino - 1) % disk::kInodesPerBlock * sizeof(disk::Inode), sizeof *out);
    return 0;
}

int FileSystem::put_inode(uint32_t ino, const disk::Inode& in) {
    if (ino < 1 || ino > sb_.ninodes) return kEIo;
    int err = 0;
    Cache::Buf* b = cache_.get(inode_table_ + (ino - 1) / disk::kInodesPerBlock, &err);
    if (!b) return err;
    copy(b->data + (ino - 1) % disk::kInodesPerBlock * sizeof(disk::Inode), &in, sizeof in);
    cache_.mark_dirty(b);
    return 0;
}

int FileSystem::check_zone(uint32_t zone) const {
    return zone >= sb_.first_data_zone && zone < sb_.zones ? 0 : kEIo;
}

template <typename F>
int FileSystem::for_each_clear_bit(uint32_t start, uint32_t from, uint32_t to, F f) {
    for (uint32_t bit = from; bit < to;) {
        int err = 0;
        Cache::Buf* b = cache_.get(start + bit / disk::kBitsPerBlock, &err);
        if (!b) return err;
        uint32_t block_end = (bit / disk::kBitsPerBlock + 1) * disk::kBitsPerBlock;
        if (block_end > to) block_end = to;
        for (; bit < block_end; ++bit) {
            uint32_t i = bit % disk::kBitsPerBlock;
            if (i % 8 == 0 && bit + 8 <= block_end && b->data[i / 8] == 0xff) {
                bit += 7;  // a full byte: 8 bits in use
                continue;
            }
            if (!(b->data[i / 8] & (1u << (i % 8))) && f(b, bit)) return 1;
        }
    }
    return 0;
}

// Bit 0 of each map is reserved; zone maps have zones - first_data_zone + 1 bits.
int FileSystem::alloc_bit(bool zones, uint32_t* out) {
    uint32_t nbits = zones ? sb_.zones - sb_.first_data_zone + 1 : sb_.ninodes + 1;
    uint32_t start = zones ? disk::kBitmapStartBlock + sb_.imap_blocks : disk::kBitmapStartBlock;
    uint32_t& hint = zones ? zone_hint_ : inode_hint_;
    if (hint < 1 || hint >= nbits) hint = 1;
    for (int pass = 0; pass < 2; ++pass) {
        uint32_t from = pass == 0 ? hint : 1;
        uint32_t to = pass == 0 ? nbits : hint;
        int r = for_each_clear_bit(start, from, to, [&](Cache::Buf* b, uint32_t bit) {
            uint32_t i = bit % disk::kBitsPerBlock;
            b->data[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
            cache_.mark_dirty(b);
            hint = bit + 1;
            *out = bit;
            return true;
        });
        if (r != 0) return r < 0 ? r : 0;
    }
    return kENoSpc;
}

int FileSystem::free_bit(bool zones, uint32_t bit) {
    uint32_t start = zones ? disk::kBitmapStartBlock + sb_.imap_blocks : disk::kBitmapStartBlock;
    int err = 0;
    Cache::Buf* b = cache_.get(start + bit / disk::kBitsPerBlock, &err);
    if (!b) return err;
    uint32_t i = bit % disk::kBitsPerBlock;
    b->data[i / 8] &= static_cast<uint8_t>(~(1u << (i % 8)));
    cache_.mark_dirty(b);
    uint32_t& hint = zones ? zone_hint_ : inode_hint_;
    if (bit < hint) hint = bit;
    return 0;
}

int FileSystem::alloc_zone(uint32_t* zone) {
    uint32_t bit;
    int r = alloc_bit(true, &bit);
    if (r < 0) return r;
    *zone = bit + sb_.first_data_zone - 1;
    int err = 0;
    Cache::Buf* b = cache_.get(*zone, &err, true);  // a fresh zone reads as zeros
    if (!b) return err;
    cache_.mark_dirty(b);
    return 0;
}

int FileSystem::free_zone(uint32_t zone) {
    int r = check_zone(zone);
    return r < 0 ? r : free_bit(true, disk::zone_bit(zone, sb_.first_data_zone));
}

int FileSystem::alloc_inode(uint16_t mode, uint32_t* ino) {
    int r = alloc_bit(false, ino);
    if (r < 0) return r;
    disk::Inode in{};
    in.mode = mode;
    in.nlinks = 1;
    in.atime = in.mtime = in.ctime = now_;
    return put_inode(*ino, in);
}

// ---- the zone tree ----

int FileSystem::get_ptr(uint32_t block, uint32_t i, uint32_t* zone) {
    int err = 0;
    Cache::Buf* b = cache_.get(block, &err);
    if (!b) return err;
    *zone = le32(b->data + i * 4);
    return 0;
}

int FileSystem::set_ptr(uint32_t block, uint32_t i, uint32_t zone) {
    int err = 0;
    Cache::Buf* b = cache_.get(block, &err);
    if (!b) return err;
    set_le32(b->data + i * 4, zone);
    cache_.mark_dirty(b);
    return 0;
}

int FileSystem::bmap(disk::Inode* in, uint32_t index, bool alloc, uint32_t* zone) {
    *zone = 0;
    if (index >= kMaxBlocks) return alloc ? kEFBig : 0;
    uint32_t slot, depth;
    if (index < disk::kDirectZones) {
        slot = index, depth = 0;
    } else if (index < disk::kDirectZones + kPer) {
        slot = disk::kIndirectSlot, depth = 1, index -= disk::kDirectZones;
    } else {
        slot = disk::kDoubleIndirectSlot, depth = 2, index -= disk::kDirectZones + kPer;
    }
    uint32_t z = in->zone[slot];
    if (z == 0) {
        if (!alloc) return 0;
        int r = alloc_zone(&z);
        if (r < 0) return r;
        in->zone[slot] = z;
    } else if (check_zone(z) < 0) {
        return kEIo;
    }
    for (uint32_t level = depth; level > 0; --level) {
        uint32_t span = level == 2 ? kPer : 1;
        uint32_t i = index / span;
        index %= span;
        uint32_t next = 0;
        int r = get_ptr(z, i, &next);
        if (r < 0) return r;
        if (next == 0) {
            if (!alloc) return 0;
            if ((r = alloc_zone(&next)) < 0 || (r = set_ptr(z, i, next)) < 0) return r;
        } else if (check_zone(next) < 0) {
            return kEIo;
        }
        z = next;
    }
    *zone = z;
    return 0;
}

// Frees, below the indirect block `zone` of `depth` (1: it lists data zones, 2: it lists
// single-indirect blocks), every block whose relative index is >= first.
int FileSystem::free_tree(uint32_t zone, int depth, uint32_t first, uint32_t span, bool* empty) {
    *empty = true;
    if (check_zone(zone) < 0) return kEIo;
    for (uint32_t i = 0; i < kPer; ++i) {
        uint32_t child = 0;
        int r = get_ptr(zone, i, &child);
        if (r < 0) return r;
        if (child == 0) continue;
        if ((i + 1) * span <= first) {
            *empty = false;
            continue;
        }
        uint32_t sub_first = first > i * span ? first - i * span : 0;
        bool child_empty = true;
        if (depth > 1 &&
            (r = free_tree(child, depth - 1, sub_first, span / kPer, &child_empty)) < 0)
            return r;
        if (!child_empty) {
            *empty = false;
            continue;
        }
        if ((r = free_zone(child)) < 0 || (r = set_ptr(zone, i, 0)) < 0) return r;
    }
    return 0;
}

int FileSystem::truncate(uint32_t ino, uint32_t size) {
    return truncate_any(ino, size, false);
}

int FileSystem::truncate_any(uint32_t ino, uint32_t size, bool dir_ok) {
    int r = writable();
    if (r < 0) return r;
    disk::Inode in;
    if ((r = get_inode(ino, &in)) < 0) return r;
    if (is_dir(in) && !dir_ok) return kEIsDir;
    if (uint64_t{size} > uint64_t{kMaxBlocks} * kBs || size > sb_.max_size) return kEFBig;
    if (size < in.size) {
        // The rest of the last kept block reads as zeros if the file grows again.
        r = for_each_block(&in, size, (kBs - size % kBs) % kBs, false,
                           [&](Cache::Buf* b, uint32_t, uint32_t at, uint32_t n) {
                               if (b) {
                                   zero(b->data + at, n);
                                   cache_.mark_dirty(b);
                               }
                               return 0;
                           });
        if (r < 0) return r;
        uint32_t first = (size + kBs - 1) / kBs;
        for (uint32_t i = first; i < disk::kDirectZones; ++i) {
            if (!in.zone[i]) continue;
            if ((r = free_zone(in.zone[i])) < 0) return r;
            in.zone[i] = 0;
        }
        struct {
            uint32_t slot, base, depth, span;
        } trees[] = {{disk::kIndirectSlot, disk::kDirectZones, 1, 1},
                     {disk::kDoubleIndirectSlot, disk::kDirectZones + kPer, 2, kPer}};
        for (const auto& t : trees) {
            if (!in.zone[t.slot]) continue;
            uint32_t rel = first > t.base ? first - t.base : 0;
            bool empty = true;
            if ((r = free_tree(in.zone[t.slot], static_cast<int>(t.depth), rel, t.span, &empty)) <
                0)
                return r;
            if (!empty) continue;
            if ((r = free_zone(in.zone[t.slot])) < 0) return r;
            in.zone[t.slot] = 0;
        }
        // A triple-indirect tree is never written by us; one from elsewhere is refused.
        if (in.zone[disk::kTripleIndirectSlot]) return kEIo;
    }
    in.size = size;
    in.mtime = in.ctime = now_;
    return put_inode(ino, in);
}

int FileSystem::release(uint32_t ino, disk::Inode* in) {
    int r = put_inode(ino, *in);
    if (r < 0) return r;
    if ((r = truncate_any(ino, 0, true)) < 0) return r;
    disk::Inode gone{};
    if ((r = put_inode(ino, gone)) < 0) return r;
    return free_bit(false, ino);
}

// ---- file data ----

template <typename F>
int FileSystem::for_each_block(disk::Inode* in, uint32_t offset, uint32_t len, bool alloc, F f) {
    for (uint32_t done = 0; done < len;) {
        uint32_t pos = offset + done;
        uint32_t in_block = pos % kBs;
        uint32_t n = kBs - in_block;
        if (n > len - done) n = len - done;
        uint32_t z;
        int r = bmap(in, pos / kBs, alloc, &z);
        if (r < 0) return r;
        Cache::Buf* b = nullptr;
        if (z != 0) {
            int err = 0;
            // With alloc (a write), a block written whole need not be read.
            if (!(b = cache_.get(z, &err, alloc && n == kBs))) return err;
        }
        if (int stop = f(b, pos, in_block, n)) return stop;
        done += n;
    }
    return 0;
}

int FileSystem::read(uint32_t ino, uint32_t offset, void* buf, uint32_t len) {
    disk::Inode in;
    int r = get_inode(ino, &in);
    if (r < 0) return r;
    if (in.mode == 0) return kEIo;
    if (offset >= in.size) return 0;
    if (len > in.size - offset) len = in.size - offset;
    if (len > 0x7fffffff) len = 0x7fffffff;
    auto* out = static_cast<uint8_t*>(buf);
    r = for_each_block(&in, offset, len, false,
                       [&](Cache::Buf* b, uint32_t pos, uint32_t at, uint32_t n) {
                           if (b)
                               copy(out + (pos - offset), b->data + at, n);
                           else
                               zero(out + (pos - offset), n);  // a hole
                           return 0;
                       });
    return r < 0 ? r : static_cast<int>(len);
}

int FileSystem::write(uint32_t ino, uint32_t offset, const void* buf, uint32_t len) {
    return write_any(ino, offset, buf, len, false);
}

int FileSystem::write_any(uint32_t ino, uint32_t offset, const void* buf, uint32_t len,
                          bool dir_ok) {
    int r = writable();
    if (r < 0) return r;
    disk::Inode in;
    if ((r = get_inode(ino, &in)) < 0) return r;
    if (in.mode == 0) return kEIo;
    if (is_dir(in) && !dir_ok) return kEIsDir;
    if (len > 0x7fffffff) len = 0x7fffffff;
    uint64_t end = uint64_t{offset} + len;
    if (end > uint64_t{kMaxBlocks} * kBs || end > sb_.max_size) return kEFBig;
    const auto* src = static_cast<const uint8_t*>(buf);
    uint32_t done = 0;
    int err = for_each_block(&in, offset, len, true,
                             [&](Cache::Buf* b, uint32_t pos, uint32_t at, uint32_t n) {
                                 if (!b) return kEIo;  // (bmap allocates: never a hole)
                                 copy(b->data + at, src + done, n);
                                 cache_.mark_dirty(b);
                                 done += n;
                                 if (pos + n > in.size) in.size = pos + n;
                                 return 0;
                             });
    if (done) in.mtime = in.ctime = now_;
    r = put_inode(ino, in);
    if (err < 0 && (done == 0 || err != kENoSpc)) return err;
    if (r < 0) return r;
    return static_cast<int>(done);
}

// ---- directories ----

// Calls f(pos, entry) for each slot of the directory; f returns true to stop there.
template <typename F>
int FileSystem::for_each_entry(disk::Inode& in, uint32_t from, F f) {
    uint32_t start = from - from % kEntry;
    uint32_t size = in.size - in.size % kEntry;
    if (start >= size) return 0;
    return for_each_block(&in, start, size - start, false,
                          [&](Cache::Buf* b, uint32_t pos, uint32_t at, uint32_t n) {
                              if (!b) return 0;  // a hole: no entries
                              for (uint32_t end = pos + n; pos < end; pos += kEntry, at += kEntry) {
                                  disk::DirEntry e;
                                  copy(&e, b->data + at, kEntry);
                                  if (f(pos, e)) return 1;
                              }
                              return 0;
                          });
}

int FileSystem::dir_find(uint32_t dir, const char* name, size_t len, uint32_t* ino, uint32_t* pos) {
    disk::Inode in;
    int r = get_inode(dir, &in);
    if (r < 0) return r;
    if (!is_dir(in)) return kENotDir;
    if (len > disk::kNameMax) return kENameTooLong;
    r = for_each_entry(in, 0, [&](uint32_t p, const disk::DirEntry& e) {
        if (e.inode == 0 || name_len(e.name) != len || __builtin_memcmp(e.name, name, len))
            return false;
        *ino = e.inode;
        if (pos) *pos = p;
        return true;
    });
    if (r < 0) return r;
    if (r == 0) return kENoEnt;
    if (*ino < 1 || *ino > sb_.ninodes) return kEIo;
    return 0;
}

int FileSystem::dir_set(uint32_t dir, uint32_t pos, uint32_t ino) {
    disk::Inode in;
    int r = get_inode(dir, &in);
    if (r < 0) return r;
    return for_each_block(&in, pos, 4, false, [&](Cache::Buf* b, uint32_t, uint32_t at, uint32_t) {
        if (!b) return kEIo;  // entries are never in a hole
        set_le32(b->data + at, ino);
        cache_.mark_dirty(b);
        return 0;
    });
}

int FileSystem::dir_remove(uint32_t dir, uint32_t pos) {
    int r = dir_set(dir, pos, 0);
    if (r < 0) return r;
    disk::Inode in;
    if ((r = get_inode(dir, &in)) < 0) return r;
    in.mtime = in.ctime = now_;
    return put_inode(dir, in);
}

int FileSystem::dir_add(uint32_t dir, const char* name, size_t len, uint32_t ino) {
    disk::Inode in;
    int r = get_inode(dir, &in);
    if (r < 0) return r;
    uint32_t free_pos = in.size - in.size % kEntry;  // append unless a slot is free
    r = for_each_entry(in, 0, [&](uint32_t p, const disk::DirEntry& e) {
        if (e.inode != 0) return false;
        free_pos = p;
        return true;
    });
    if (r < 0) return r;
    disk::DirEntry e{};
    e.inode = ino;
    copy(e.name, name, len);
    r = write_any(dir, free_pos, &e, kEntry, true);
    return r < 0 ? r : (r == static_cast<int>(kEntry) ? 0 : kENoSpc);
}

int FileSystem::dir_empty(uint32_t dir) {
    disk::Inode in;
    int r = get_inode(dir, &in);
    if (r < 0) return r;
    r = for_each_entry(in, 0, [&](uint32_t, const disk::DirEntry& e) {
        return e.inode != 0 && !is_dot(e.name, name_len(e.name));
    });
    if (r < 0) return r;
    return r == 1 ? kENotEmpty : 0;
}

int FileSystem::readdir(uint32_t dir, uint32_t* pos, DirEnt* out) {
    disk::Inode in;
    int r = get_inode(dir, &in);
    if (r < 0) return r;
    if (!is_dir(in)) return kENotDir;
    out->ino = 0;
    r = for_each_entry(in, *pos, [&](uint32_t p, const disk::DirEntry& e) {
        *pos = p + kEntry;
        if (e.inode == 0) return false;
        out->ino = e.inode;
        size_t n = name_len(e.name);
        copy(out->name, e.name, n);
        out->name[n] = '\0';
        return true;
    });
    if (r < 0) return r;
    if (r == 0) *pos = in.size;
    return 0;
}

// ---- paths ----

int FileSystem::lookup(const char* path, uint32_t* ino) {
    uint32_t cur = disk::kRootInode;
    size_t total = 0;
    for (const char* p = path; *p;) {
        while (*p == '/') ++p, ++total;
        if (!*p) break;
        const char* start = p;
        while (*p && *p != '/') ++p;
        size_t len = static_cast<size_t>(p - start);
        total += len;
        if (total > kPathMax) return kENameTooLong;
        if (len == 1 && start[0] == '.') {
            disk::Inode in;
            int r = get_inode(cur, &in);
            if (r < 0) return r;
            if (!is_dir(in)) return kENotDir;
            continue;
        }
        uint32_t next;
        int r = dir_find(cur, start, len, &next, nullptr);
        if (r < 0) return r;
        cur = next;
    }
    *ino = cur;
    return 0;
}

int FileSystem::lookup_parent(const char* path, uint32_t* dir, const char** name, size_t* len) {
    size_t n = 0;
    while (path[n]) {
        if (++n > kPathMax) return kENameTooLong;
    }
    while (n > 0 && path[n - 1] == '/') --n;  // "a/b/" names b
    size_t start = n;
    while (start > 0 && path[start - 1] != '/') --start;
    if (start == n) return kEBusy;  // the root itself
    if (n - start > disk::kNameMax) return kENameTooLong;
    char parent[kPathMax + 1];
    copy(parent, path, start);
    parent[start] = '\0';
    int r = lookup(parent, dir);
    if (r < 0) return r;
    disk::Inode in;
    if ((r = get_inode(*dir, &in)) < 0) return r;
    if (!is_dir(in)) return kENotDir;
    *name = path + start;
    *len = n - start;
    return 0;
}

int FileSystem::stat(uint32_t ino, Stat* out) {
    disk::Inode in;
    int r = get_inode(ino, &in);
    if (r < 0) return r;
    if (in.mode == 0) return kEIo;
    *out = Stat{ino,     in.mode,  in.nlinks, in.uid,   in.gid,
                in.size, in.atime, in.mtime,  in.ctime, (in.size + kBs - 1) / kBs};
    return 0;
}

// ---- namespace operations ----

int FileSystem::create(const char* path, uint16_t perm, bool exclusive, uint32_t* ino) {
    uint32_t dir;
    const char* name;
    size_t len;
    int r = lookup_parent(path, &dir, &name, &len);
    if (r == kEBusy) return kEIsDir;
    if (r < 0) return r;
    uint32_t found;
    r = dir_find(dir, name, len, &found, nullptr);
    if (r == 0) {
        if (exclusive) return kEExist;
        disk::Inode in;
        if ((r = get_inode(found, &in)) < 0) return r;
        if (is_dir(in)) return kEIsDir;
        *ino = found;
        return 0;
    }
    if (r != kENoEnt) return r;
    if ((r = writable()) < 0) return r;
    if (is_dot(name, len)) return kEExist;
    if ((r = alloc_inode(static_cast<uint16_t>(disk::kTypeRegular | (perm & 07777)), ino)) < 0)
        return r;
    if ((r = dir_add(dir, name, len, *ino)) < 0) {
        disk::Inode in;
        if (get_inode(*ino, &in) == 0) release(*ino, &in);
        return r;
    }
    return 0;
}

int FileSystem::mkdir(const char* path, uint16_t perm) {
    uint32_t dir;
    const char* name;
    size_t len;
    int r = lookup_parent(path, &dir, &name, &len);
    if (r == kEBusy) return kEExist;
    if (r < 0) return r;
    uint32_t found;
    r = dir_find(dir, name, len, &found, nullptr);
    if (r == 0 || is_dot(name, len)) return kEExist;
    if (r != kENoEnt) return r;
    if ((r = writable()) < 0) return r;
    disk::Inode parent;
    if ((r = get_inode(dir, &parent)) < 0) return r;
    if (parent.nlinks == 0xffff) return kEMLink;
    uint32_t ino;
    if ((r = alloc_inode(static_cast<uint16_t>(disk::kTypeDirectory | (perm & 07777)), &ino)) < 0)
        return r;
    disk::Inode in;
    if ((r = get_inode(ino, &in)) < 0) return r;
    in.nlinks = 2;
    if ((r = put_inode(ino, in)) < 0) return r;
    if ((r = dir_add(ino, ".", 1, ino)) < 0 || (r = dir_add(ino, "..", 2, dir)) < 0 ||
        (r = dir_add(dir, name, len, ino)) < 0) {
        if (get_inode(ino, &in) == 0) release(ino, &in);
        return r;
    }
    if ((r = get_inode(dir, &parent)) < 0) return r;
    ++parent.nlinks;
    parent.ctime = now_;
    return put_inode(dir, parent);
}

int FileSystem::unlink(const char* path) {
    uint32_t dir, ino, pos;
    const char* name;
    size_t len;
    int r = lookup_parent(path, &dir, &name, &len);
    if (r == kEBusy) return kEIsDir;
    if (r < 0) return r;
    if ((r = dir_find(dir, name, len, &ino, &pos)) < 0) return r;
    disk::Inode in;
    if ((r = get_inode(ino, &in)) < 0) return r;
    if (is_dir(in)) return kEIsDir;
    if ((r = writable()) < 0) return r;
    if ((r = dir_remove(dir, pos)) < 0) return r;
    if (in.nlinks > 0) --in.nlinks;
    in.ctime = now_;
    if (in.nlinks == 0) return drop(ino, &in);
    return put_inode(ino, in);
}

int FileSystem::rmdir(const char* path) {
    uint32_t dir, ino, pos;
    const char* name;
    size_t len;
    int r = lookup_parent(path, &dir, &name, &len);
    if (r < 0) return r;
    if (len == 1 && name[0] == '.') return kEInval;
    if (is_dot(name, len)) return kENotEmpty;
    if ((r = dir_find(dir, name, len, &ino, &pos)) < 0) return r;
    disk::Inode in;
    if ((r = get_inode(ino, &in)) < 0) return r;
    if (!is_dir(in)) return kENotDir;
    if ((r = writable()) < 0) return r;
    if ((r = dir_empty(ino)) < 0) return r;
    if ((r = dir_remove(dir, pos)) < 0) return r;
    disk::Inode parent;
    if ((r = get_inode(dir, &parent)) < 0) return r;
    if (parent.nlinks > 0) --parent.nlinks;
    if ((r = put_inode(dir, parent)) < 0) return r;
    in.nlinks = 0;
    return drop(ino, &in);
}

int FileSystem::rename(const char* from, const char* to) {
    uint32_t odir, ndir, src, spos;
    const char *oname, *nname;
    size_t olen, nlen;
    int r = lookup_parent(from, &odir, &oname, &olen);
    if (r < 0) return r;
    if ((r = lookup_parent(to, &ndir, &nname, &nlen)) < 0) return r;
    if (is_dot(oname, olen) || is_dot(nname, nlen)) return kEInval;
    if ((r = dir_find(odir, oname, olen, &src, &spos)) < 0) return r;
    if ((r = writable()) < 0) return r;
    disk::Inode sin;
    if ((r = get_inode(src, &sin)) < 0) return r;
    bool src_dir = is_dir(sin);
    uint32_t dst, dpos;
    r = dir_find(ndir, nname, nlen, &dst, &dpos);
    if (r < 0 && r != kENoEnt) return r;
    bool exists = r == 0;
    disk::Inode din{};
    if (exists) {
        if (dst == src) return 0;
        if ((r = get_inode(dst, &din)) < 0) return r;
        if (src_dir && !is_dir(din)) return kENotDir;
        if (!src_dir && is_dir(din)) return kEIsDir;
        if (is_dir(din) && (r = dir_empty(dst)) < 0) return r;
    }
    if (src_dir && odir != ndir) {
        // The new parent must not be the directory itself or below it.
        for (uint32_t cur = ndir, steps = 0; cur != disk::kRootInode; ++steps) {
            if (cur == src) return kEInval;
            if (steps > sb_.ninodes) return kEIo;  // a ".." loop on disk
            uint32_t up;
            if ((r = dir_find(cur, "..", 2, &up, nullptr)) < 0) return r;
            cur = up;
        }
        disk::Inode np;
        if ((r = get_inode(ndir, &np)) < 0) return r;
        if (np.nlinks == 0xffff && !exists) return kEMLink;
    }
    if (exists) {
        if ((r = dir_set(ndir, dpos, src)) < 0) return r;
        if (is_dir(din)) {
            disk::Inode np;
            if ((r = get_inode(ndir, &np)) < 0) return r;
            if (np.nlinks > 0) --np.nlinks;
            if ((r = put_inode(ndir, np)) < 0) return r;
            din.nlinks = 0;
        } else if (din.nlinks > 0) {
            --din.nlinks;
        }
        if ((r = din.nlinks == 0 ? drop(dst, &din) : put_inode(dst, din)) < 0) return r;
    } else if ((r = dir_add(ndir, nname, nlen, src)) < 0) {
        return r;
    }
    if ((r = dir_remove(odir, spos)) < 0) return r;
    if (src_dir && odir != ndir) {
        uint32_t up, upos;
        if ((r = dir_find(src, "..", 2, &up, &upos)) < 0) return r;
        if ((r = dir_set(src, upos, ndir)) < 0) return r;
        disk::Inode p;
        if ((r = get_inode(odir, &p)) < 0) return r;
        if (p.nlinks > 0) --p.nlinks;
        if ((r = put_inode(odir, p)) < 0) return r;
        if ((r = get_inode(ndir, &p)) < 0) return r;
        ++p.nlinks;
        if ((r = put_inode(ndir, p)) < 0) return r;
    }
    if ((r = get_inode(src, &sin)) < 0) return r;
    sin.ctime = now_;
    return put_inode(src, sin);
}

// ---- open inodes ----

FileSystem::OpenRef* FileSystem::open_entry(uint32_t ino) {
    for (OpenRef& o : open_)
        if (o.refs && o.ino == ino) return &o;
    return nullptr;
}

int FileSystem::open_ref(uint32_t ino) {
    if (ino < 1 || ino > sb_.ninodes) return kEInval;
    if (OpenRef* o = open_entry(ino)) {
        ++o->refs;
        return 0;
    }
    for (OpenRef& o : open_)
        if (!o.refs) {
            o = {ino, 1};
            return 0;
        }
    return kENoMem;
}

int FileSystem::close_ref(uint32_t ino) {
    OpenRef* o = open_entry(ino);
    if (!o) return kEInval;
    if (--o->refs) return 0;
    disk::Inode in;
    int r = get_inode(ino, &in);
    if (r < 0) return r;
    if (in.mode == 0 || in.nlinks != 0 || read_only_) return 0;
    return release(ino, &in);
}

int FileSystem::drop(uint32_t ino, disk::Inode* in) {
    if (open_entry(ino)) return put_inode(ino, *in);  // freed at its last close
    return release(ino, in);
}

// ---- statfs ----

int FileSystem::statfs(StatFs* out) {
    auto count_free = [&](uint32_t start, uint32_t nbits, uint32_t* free) {
        *free = 0;
        return for_each_clear_bit(start, 1, nbits, [&](Cache::Buf*, uint32_t) {
            ++*free;
            return false;
        });
    };
    out->block_size = kBs;
    out->blocks = sb_.zones - sb_.first_data_zone;
    out->inodes = sb_.ninodes;
    int r = count_free(disk::kBitmapStartBlock, sb_.ninodes + 1, &out->free_inodes);
    if (r < 0) return r;
    return count_free(disk::kBitmapStartBlock + sb_.imap_blocks,
                      sb_.zones - sb_.first_data_zone + 1, &out->free_blocks);
}

}  // namespace mfs
