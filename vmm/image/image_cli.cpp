#include "vmm/image/image_cli.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "vmm/image/minix_image.hpp"
#include "vmm/kvm.hpp"

namespace ukvm {

namespace mfs = minixfs;

namespace {

// Deeper trees are refused rather than recursed into: a hostile image could nest
// directories until the stack runs out, and no real tree is this deep.
constexpr int kMaxDepth = 1024;

[[noreturn]] void host_error(const std::string& path, const char* what) {
    throw ImageError(fmt::format("{}: {}: {}", path, what, std::strerror(errno)));
}

std::uint32_t clamp_time(std::int64_t seconds) {
    return static_cast<std::uint32_t>(
        std::clamp<std::int64_t>(seconds, 0, std::numeric_limits<std::uint32_t>::max()));
}

// "1 file", "2 files"; "director" becomes "directory" or "directories".
std::string plural(std::size_t n, std::string_view word) {
    if (word == "director") return fmt::format("{} {}", n, n == 1 ? "directory" : "directories");
    return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

// Blocks of 1K a file of `blocks` data blocks occupies, indirect blocks included.
std::uint64_t zones_for(std::uint64_t blocks) {
    std::uint64_t total = blocks;
    std::uint64_t rest = blocks > mfs::kDirectZones ? blocks - mfs::kDirectZones : 0;
    const std::uint64_t per = mfs::kZonesPerBlock;
    if (rest > 0) {
        total += 1;
        rest -= std::min(rest, per);
    }
    if (rest > 0) {
        const std::uint64_t n = std::min(rest, per * per);
        total += 1 + (n + per - 1) / per;
        rest -= n;
    }
    if (rest > 0) total += 1 + (rest + per * per - 1) / (per * per) + (rest + per - 1) / per;
    return total;
}

std::uint64_t blocks_for_bytes(std::uint64_t bytes) {
    return (bytes + mfs::kBlockSize - 1) / mfs::kBlockSize;
}

// ---- create ------------------------------------------------------------------------

// One entry of the host tree, read completely before the image is written so that
// "too many files" and "too small" are known up front.
struct HostNode {
    std::string name;
    std::string path;
    struct stat st {};
    std::string link_target;         // symlinks
    std::vector<HostNode> children;  // directories, sorted by name
};

struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
};

struct ScanTotals {
    std::uint64_t inodes = 1;  // the root
    std::uint64_t zones = 0;
    std::set<std::pair<dev_t, ino_t>> hard_links;
};

class HostScanner {
public:
    HostScanner(std::ostream& err, std::optional<std::pair<dev_t, ino_t>> exclude)
        : err_(err), exclude_(exclude) {}

    HostNode scan_root(const std::filesystem::path& dir) {
        HostNode root;
        root.path = dir.string();
        if (::stat(root.path.c_str(), &root.st) != 0)
            host_error("--from " + root.path, "cannot use");
        if (!S_ISDIR(root.st.st_mode)) {
            throw ImageError(fmt::format("--from {}: not a directory", root.path));
        }
        scan_children(root, 0);
        return root;
    }

    const ScanTotals& totals() const { return totals_; }

private:
    void scan_children(HostNode& dir, int depth) {
        if (depth > kMaxDepth) {
            throw ImageError(
                fmt::format("{}: directories nested more than {} deep", dir.path, kMaxDepth));
        }
        std::unique_ptr<DIR, DirCloser> stream(::opendir(dir.path.c_str()));
        if (!stream) host_error(dir.path, "cannot read directory");
        for (;;) {
            errno = 0;
            const dirent* d = ::readdir(stream.get());
            if (d == nullptr) {
                if (errno != 0) host_error(dir.path, "cannot read directory");
                break;
            }
            const std::string name = d->d_name;
            if (name == "." || name == "..") continue;
            HostNode node;
            node.name = name;
            node.path = dir.path + "/" + name;
            if (::lstat(node.path.c_str(), &node.st) != 0) host_error(node.path, "stat");
            if (exclude_ && *exclude_ == std::pair{node.st.st_dev, node.st.st_ino}) continue;
            if (!S_ISDIR(node.st.st_mode) && !S_ISREG(node.st.st_mode) &&
                !S_ISLNK(node.st.st_mode)) {
                err_ << "ukvm: warning: skipping " << node.path
                     << ": not a regular file, directory or symlink\n";
                continue;
            }
            if (name.size() > mfs::kNameMax) {
                throw ImageError(fmt::format("{}: the name is {} bytes; MINIX allows at most {}",
                                             node.path, name.size(), mfs::kNameMax));
            }
            dir.children.push_back(std::move(node));
        }
        std::sort(dir.children.begin(), dir.children.end(),
                  [](const HostNode& a, const HostNode& b) { return a.name < b.name; });
        totals_.zones +=
            zones_for(blocks_for_bytes((dir.children.size() + 2) * sizeof(mfs::DirEntry)));

        for (HostNode& node : dir.children) {
            if (S_ISDIR(node.st.st_mode)) {
                ++totals_.inodes;
                scan_children(node, depth + 1);
            } else if (S_ISREG(node.st.st_mode)) {
                if (node.st.st_size > static_cast<off_t>(mfs::kMaxFileSize)) {
                    throw ImageError(fmt::format("{}: {} bytes; MINIX files hold at most {}",
                                                 node.path, node.st.st_size, mfs::kMaxFileSize));
                }
                if (node.st.st_nlink > 1 &&
                    !totals_.hard_links.insert({node.st.st_dev, node.st.st_ino}).second) {
                    continue;  // another name for a file already counted
                }
                ++totals_.inodes;
                totals_.zones += zones_for(blocks_for_bytes(node.st.st_size));
            } else {
                char target[4096];
                const ssize_t n = ::readlink(node.path.c_str(), target, sizeof target);
                if (n < 0) host_error(node.path, "readlink");
                node.link_target.assign(target, static_cast<std::size_t>(n));
                if (node.link_target.size() >= mfs::kBlockSize) {
                    throw ImageError(
                        fmt::format("{}: the symlink target is {} bytes; images hold at most {}",
                                    node.path, node.link_target.size(), mfs::kBlockSize - 1));
                }
                ++totals_.inodes;
                totals_.zones += 1;
            }
        }
    }

    std::ostream& err_;
    std::optional<std::pair<dev_t, ino_t>> exclude_;
    ScanTotals totals_;
};

struct CopyCounts {
    std::size_t files = 0;
    std::size_t directories = 0;
    std::size_t symlinks = 0;
};

class ImagePopulator {
public:
    explicit ImagePopulator(MinixImage& image) : image_(image) {}

    void copy_children(const HostNode& dir, std::uint32_t parent) {
        for (const HostNode& node : dir.children) {
            const FileAttributes attributes{
                static_cast<std::uint16_t>(node.st.st_mode & mfs::kPermissionMask),
                clamp_time(node.st.st_mtim.tv_sec)};
            if (S_ISDIR(node.st.st_mode)) {
                const std::uint32_t number = image_.add_directory(parent, node.name, attributes);
                ++counts_.directories;
                copy_children(node, number);
            } else if (S_ISLNK(node.st.st_mode)) {
                image_.add_symlink(parent, node.name, node.link_target, attributes);
                ++counts_.symlinks;
            } else {
                copy_file(node, parent, attributes);
            }
        }
    }

    const CopyCounts& counts() const { return counts_; }

private:
    void copy_file(const HostNode& node, std::uint32_t parent, const FileAttributes& attributes) {
        const std::pair key{node.st.st_dev, node.st.st_ino};
        if (node.st.st_nlink > 1) {
            if (const auto it = links_.find(key); it != links_.end()) {
                image_.add_link(parent, node.name, it->second);
                ++counts_.files;
                return;
            }
        }
        const Fd fd(::open(node.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!fd.valid()) host_error(node.path, "cannot open");
        const std::uint32_t number =
            image_.add_file(parent, node.name, attributes, [&](std::span<std::uint8_t> buf) {
                for (;;) {
                    const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
                    if (n >= 0) return static_cast<std::size_t>(n);
                    if (errno != EINTR) host_error(node.path, "read");
                }
            });
        if (node.st.st_nlink > 1) links_[key] = number;
        ++counts_.files;
    }

    MinixImage& image_;
    std::map<std::pair<dev_t, ino_t>, std::uint32_t> links_;
    CopyCounts counts_;
};

// A temporary file beside the image, removed unless renamed over it at the end.
class TempFile {
public:
    explicit TempFile(const std::filesystem::path& target) {
        std::filesystem::path dir = target.parent_path();
        if (dir.empty()) dir = ".";
        std::string pattern = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
        const int fd = ::mkostemp(pattern.data(), O_CLOEXEC);
        if (fd < 0) {
            throw ImageError(fmt::format("{}: cannot create a temporary file in {}: {}",
                                         target.string(), dir.string(), std::strerror(errno)));
        }
        fd_ = Fd(fd);
        path_ = pattern;
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() {
        if (!path_.empty()) ::unlink(path_.c_str());
    }

    Fd take_fd() { return std::move(fd_); }
    int fd() const { return fd_.get(); }

    void commit(const std::filesystem::path& target, bool replace) {
        int r;
        bool linked = false;
        if (replace) {
            r = ::rename(path_.c_str(), target.c_str());
        } else {
            // No-replace, so an image that appeared since the check is not clobbered.
            r = ::renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE);
            if (r != 0 && errno == EINVAL) {  // a file system without RENAME_NOREPLACE
                r = ::link(path_.c_str(), target.c_str());
                linked = true;
            }
        }
        if (r != 0) {
            if (errno == EEXIST) {
                throw ImageError(
                    fmt::format("{}: already exists (use --force to replace it)", target.string()));
            }
            host_error(target.string(), "cannot create");
        }
        if (linked) ::unlink(path_.c_str());
        path_.clear();
    }

private:
    Fd fd_;
    std::string path_;
};

mode_t current_umask() {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    return mask;
}

// ---- extract -----------------------------------------------------------------------

class Extractor {
public:
    Extractor(const MinixImage& image, int root_fd, std::string root, std::ostream& err)
        : image_(image),
          root_fd_(root_fd),
          root_(std::move(root)),
          err_(err),
          data_blocks_(image.superblock().zones - image.superblock().first_data_zone) {}

    void directory(std::uint32_t number, std::uint32_t parent, int fd, const std::string& rel,
                   int depth) {
        if (depth > kMaxDepth) {
            throw ImageError(fmt::format("{}: directories nested more than {} deep at '{}'",
                                         image_.name(), kMaxDepth, printable(rel)));
        }
        if (!visited_.insert(number).second) {
            throw ImageError(fmt::format(
                "{}: corrupt MINIX image: directory inode {} is reached again at '{}' (a "
                "directory loop)",
                image_.name(), number, printable(rel)));
        }
        spend_blocks(image_.inode(number).size, rel);
        for (const DirectoryEntry& e : image_.read_directory(number)) {
            if (e.name == ".") continue;  // read_directory checked it names this directory
            if (e.name == "..") {
                if (e.inode != parent) {
                    throw ImageError(fmt::format(
                        "{}: corrupt MINIX image: '{}/..' refers to inode {}, not the parent "
                        "directory (inode {})",
                        image_.name(), printable(rel.empty() ? "" : "/" + rel), e.inode, parent));
                }
                continue;
            }
            const std::string child_rel = rel.empty() ? e.name : rel + "/" + e.name;
            const InodeInfo info = image_.inode(e.inode);
            if (info.is_directory()) {
                subdirectory(info, number, fd, e.name, child_rel, depth);
            } else if (info.is_regular()) {
                file(info, fd, e.name, child_rel);
            } else if (info.is_symlink()) {
                symlink(info, fd, e.name, child_rel);
            } else {
                err_ << "ukvm: warning: skipping " << printable(child_rel)
                     << ": a device, FIFO or socket, which extract does not make\n";
            }
        }
    }

    const CopyCounts& counts() const { return counts_; }

private:
    // For messages only: names from the image are shown with control bytes as '?'.
    // Every block of every file and directory (hard links once) is a distinct data block
    // in a sound image. Zones shared between files, or many times within one, could
    // otherwise make a small image unpack into gigabytes.
    void spend_blocks(std::uint64_t bytes, const std::string& rel) {
        blocks_read_ += (bytes + mfs::kBlockSize - 1) / mfs::kBlockSize;
        if (blocks_read_ > data_blocks_) {
            throw ImageError(fmt::format(
                "{}: corrupt MINIX image: at '{}' the tree holds more data than the image's {} "
                "data blocks (blocks shared between files?)",
                image_.name(), printable(rel), data_blocks_));
        }
    }

    std::string host_path(const std::string& rel) const { return printable(root_ + "/" + rel); }

    static timespec to_timespec(std::uint32_t t) { return timespec{static_cast<time_t>(t), 0}; }

    void subdirectory(const InodeInfo& info, std::uint32_t parent, int fd, const std::string& name,
                      const std::string& rel, int depth) {
        if (::mkdirat(fd, name.c_str(), 0700) != 0 && errno != EEXIST) {
            host_error(host_path(rel), "mkdir");
        }
        // O_NOFOLLOW: a symlink already sitting there is never followed out of the tree.
        const Fd child(::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!child.valid()) host_error(host_path(rel), "cannot open directory");
        // Owner write stays on while filling it; the image's mode is applied after.
        ::fchmod(child.get(), 0700);
        directory(info.number, parent, child.get(), rel, depth + 1);
        ++counts_.directories;
        const timespec times[2] = {to_timespec(info.mtime), to_timespec(info.mtime)};
        if (::fchmod(child.get(), info.mode & 0777) != 0 || ::futimens(child.get(), times) != 0) {
            host_error(host_path(rel), "set mode and time");
        }
    }

    void file(const InodeInfo& info, int fd, const std::string& name, const std::string& rel) {
        // Replace, never write through, whatever is already there.
        if (::unlinkat(fd, name.c_str(), 0) != 0 && errno != ENOENT) {
            host_error(host_path(rel), "cannot replace");
        }
        if (info.nlinks > 1) {
            if (const auto it = links_.find(info.number); it != links_.end()) {
                // Should the first copy be out of reach (its directory's mode forbids it),
                // a second copy of the data will do.
                if (::linkat(root_fd_, it->second.c_str(), fd, name.c_str(), 0) == 0) {
                    ++counts_.files;
                    return;
                }
            }
        }
        const Fd out(
            ::openat(fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!out.valid()) host_error(host_path(rel), "cannot create");
        image_.read_file(info.number, [&](std::uint64_t offset, std::span<const std::uint8_t> b) {
            spend_blocks(b.size(), rel);
            std::size_t done = 0;
            while (done < b.size()) {
                const ssize_t n = ::pwrite(out.get(), b.data() + done, b.size() - done,
                                           static_cast<off_t>(offset + done));
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) host_error(host_path(rel), "write");
                done += static_cast<std::size_t>(n);
            }
        });
        // Sets the size past a trailing hole, which read_file does not deliver.
        const timespec times[2] = {to_timespec(info.mtime), to_timespec(info.mtime)};
        if (::ftruncate(out.get(), info.size) != 0 || ::fchmod(out.get(), info.mode & 0777) != 0 ||
            ::futimens(out.get(), times) != 0) {
            host_error(host_path(rel), "write");
        }
        if (info.nlinks > 1) links_[info.number] = rel;
        ++counts_.files;
    }

    void symlink(const InodeInfo& info, int fd, const std::string& name, const std::string& rel) {
        const std::string target = image_.read_symlink(info.number);
        if (::unlinkat(fd, name.c_str(), 0) != 0 && errno != ENOENT) {
            host_error(host_path(rel), "cannot replace");
        }
        if (::symlinkat(target.c_str(), fd, name.c_str()) != 0)
            host_error(host_path(rel), "symlink");
        const timespec times[2] = {to_timespec(info.mtime), to_timespec(info.mtime)};
        ::utimensat(fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW);  // best effort
        ++counts_.symlinks;
    }

    const MinixImage& image_;
    int root_fd_;
    std::string root_;
    std::ostream& err_;
    std::unordered_set<std::uint32_t> visited_;
    std::unordered_map<std::uint32_t, std::string> links_;  // inode -> first extracted path
    CopyCounts counts_;
    std::uint64_t data_blocks_;
    std::uint64_t blocks_read_ = 0;
};

// ---- ls ----------------------------------------------------------------------------

std::string mode_string(std::uint16_t mode) {
    std::string s = "?rwxrwxrwx";
    switch (mode & mfs::kTypeMask) {
        case mfs::kTypeRegular:
            s[0] = '-';
            break;
        case mfs::kTypeDirectory:
            s[0] = 'd';
            break;
        case mfs::kTypeSymlink:
            s[0] = 'l';
            break;
        case mfs::kTypeCharDevice:
            s[0] = 'c';
            break;
        case mfs::kTypeBlockDevice:
            s[0] = 'b';
            break;
        case mfs::kTypeFifo:
            s[0] = 'p';
            break;
        case mfs::kTypeSocket:
            s[0] = 's';
            break;
        default:
            break;
    }
    for (int i = 0; i < 9; ++i) {
        if (!(mode & (0400 >> i))) s[1 + i] = '-';
    }
    const auto special = [&](std::uint16_t bit, int pos, char set) {
        if (mode & bit) s[pos] = s[pos] == '-' ? static_cast<char>(set - 'a' + 'A') : set;
    };
    special(04000, 3, 's');
    special(02000, 6, 's');
    special(01000, 9, 't');
    return s;
}

std::string time_string(std::uint32_t t) {
    const time_t when = t;
    std::tm tm{};
    ::gmtime_r(&when, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
    return buf;
}

void ls_line(const MinixImage& image, const InodeInfo& info, const std::string& name,
             std::ostream& out) {
    out << fmt::format("{} {:>3} {:>10} {} {}", mode_string(info.mode), info.nlinks, info.size,
                       time_string(info.mtime), printable(name));
    if (info.is_symlink()) out << " -> " << printable(image.read_symlink(info.number));
    out << "\n";
}

}  // namespace

int image_create(const ImageCreateOptions& options, std::ostream& out, std::ostream& err) {
    const std::uint64_t size = parse_size(options.size);
    if (options.inodes && *options.inodes == 0) {
        throw ImageError("--inodes must be at least 1 (the root directory)");
    }
    const std::string image_name = options.image.string();
    if (options.image.filename().empty()) {
        throw ImageError(fmt::format("{}: not a file name", image_name));
    }
    std::optional<std::pair<dev_t, ino_t>> existing;
    struct stat st {};
    if (::lstat(options.image.c_str(), &st) == 0) {
        if (!options.force) {
            throw ImageError(
                fmt::format("{}: already exists (use --force to replace it)", image_name));
        }
        if (!S_ISREG(st.st_mode)) {
            throw ImageError(
                fmt::format("{}: exists and is not a regular file; not replacing it", image_name));
        }
        existing = std::pair{st.st_dev, st.st_ino};
    } else if (errno != ENOENT) {
        host_error(image_name, "stat");
    }

    HostScanner scanner(err, existing);
    std::optional<HostNode> root;
    if (options.from) root = scanner.scan_root(*options.from);
    const ScanTotals& totals = scanner.totals();
    // Without --from the root directory is the only content.
    const std::uint64_t zones_needed = root ? totals.zones : 1;

    const std::uint64_t blocks = size / mfs::kBlockSize;
    std::uint32_t inodes = MinixImage::default_inodes(blocks);
    if (options.inodes) {
        inodes = *options.inodes;
        if (totals.inodes > inodes) {
            throw ImageError(fmt::format(
                "{} holds {} files, directories and symlinks: with the root that needs {} "
                "inodes, but --inodes is {}",
                options.from->string(), totals.inodes - 1, totals.inodes, inodes));
        }
    } else if (totals.inodes > inodes) {
        inodes = static_cast<std::uint32_t>(
            std::min<std::uint64_t>(totals.inodes, std::numeric_limits<std::uint32_t>::max()));
    }

    TempFile temp(options.image);
    // mkostemp made it 0600; an image gets the usual permissions for new files.
    if (::fchmod(temp.fd(), 0666 & ~current_umask()) != 0) host_error(image_name, "chmod");
    const std::uint32_t root_mtime =
        root ? clamp_time(root->st.st_mtim.tv_sec) : clamp_time(std::time(nullptr));
    MinixImage image =
        MinixImage::format(temp.take_fd(), image_name, FormatOptions{size, inodes, root_mtime});

    // The root directory's block is in use already and counted in zones_needed.
    const std::uint64_t available = image.free_zones() + 1;
    if (zones_needed > available) {
        throw ImageError(fmt::format(
            "{}: {} needs {} blocks of 1K for data and indirect blocks, but a {} image has "
            "room for {}; use a larger --size",
            image_name, options.from->string(), zones_needed, options.size, available));
    }
    CopyCounts counts;
    if (root) {
        ImagePopulator populator(image);
        populator.copy_children(*root, mfs::kRootInode);
        counts = populator.counts();
    }
    image.flush();
    const std::uint64_t data_blocks = image.superblock().zones - image.superblock().first_data_zone;
    const std::uint64_t used = data_blocks - image.free_zones();
    temp.commit(options.image, options.force);

    out << fmt::format("{}: {} MINIX v3 image, {} inodes; {}, {}, {}; {} of {} data blocks used\n",
                       image_name, options.size, inodes, plural(counts.files, "file"),
                       plural(counts.directories, "director"), plural(counts.symlinks, "symlink"),
                       used, data_blocks);
    return 0;
}

int image_extract(const std::filesystem::path& image_path, const std::filesystem::path& dir,
                  std::ostream& out, std::ostream& err) {
    const MinixImage image = MinixImage::open(image_path);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        throw ImageError(fmt::format("{}: cannot create: {}", dir.string(), ec.message()));
    }
    const Fd root_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd.valid()) host_error(dir.string(), "cannot open directory");
    Extractor extractor(image, root_fd.get(), dir.string(), err);
    extractor.directory(mfs::kRootInode, mfs::kRootInode, root_fd.get(), "", 0);
    const CopyCounts& counts = extractor.counts();
    out << fmt::format("{}: extracted {}, {}, {} to {}\n", image.name(),
                       plural(counts.files, "file"), plural(counts.directories, "director"),
                       plural(counts.symlinks, "symlink"), dir.string());
    return 0;
}

int image_ls(const std::filesystem::path& image_path, const std::string& path, std::ostream& out) {
    const MinixImage image = MinixImage::open(image_path);
    const auto number = image.lookup(path);
    if (!number) {
        throw ImageError(fmt::format("{}: {}: no such file or directory", image.name(), path));
    }
    const InodeInfo info = image.inode(*number);
    if (!info.is_directory()) {
        ls_line(image, info, path, out);
        return 0;
    }
    for (const DirectoryEntry& e : image.read_directory(*number)) {
        ls_line(image, image.inode(e.inode), e.name, out);
    }
    return 0;
}

}  // namespace ukvm
