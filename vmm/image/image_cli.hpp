// `ukvm image create|extract|ls`: MINIX v3 disk images built from, and unpacked to, host
// directories. Each handler returns the exit status; user errors (bad arguments, corrupt
// or full images) are thrown as ImageError, which main() reports with exit status 2.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

namespace ukvm {

struct ImageCreateOptions {
    std::filesystem::path image;
    std::string size;                           // "32M"; see parse_size()
    std::optional<std::filesystem::path> from;  // host directory to copy in
    std::optional<std::uint32_t> inodes;        // default: enough, and one per 3 KiB
    bool force = false;                         // replace an existing image file
};

// Writes a temporary file next to the image and renames it into place only when
// complete, so a failure leaves nothing behind. Warnings (skipped files) go to `err`.
int image_create(const ImageCreateOptions& options, std::ostream& out, std::ostream& err);

// Copies the whole tree out under `dir` (created if missing), never writing outside it.
int image_extract(const std::filesystem::path& image, const std::filesystem::path& dir,
                  std::ostream& out, std::ostream& err);

// `ls -l` style: mode, links, size, mtime (UTC), name. A directory lists its entries,
// "." and ".." included; anything else lists itself.
int image_ls(const std::filesystem::path& image, const std::string& path, std::ostream& out);

}  // namespace ukvm
