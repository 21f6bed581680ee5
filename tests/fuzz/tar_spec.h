// Structure-aware input for the archive targets. Mutating the bytes of a .tar.gz mostly breaks
// the deflate stream or a tar header checksum, so libarchive refuses it before our checks run.
// An input starting with "#entries\n" is instead a list of entries, one per line, that is
// packed into a real .tar.gz first:
//   KIND[:MODE] NAME [ARG]     MODE: octal permissions (e.g. 4755), default 644 / 755
//   KIND: f regular file (ARG: its content), d directory, l symlink (ARG: target),
//         h hardlink (ARG: target), c character device, b block device, p FIFO, s socket
// so the fuzzer works on names, link targets, types and modes: what our code decides on.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_support.h"

namespace rm::fuzz {

inline constexpr std::string_view kEntriesMagic = "#entries\n";

// Writes the archive `spec` describes to `out`; returns false when `spec` is not a list of
// entries (the caller then uses the bytes as they are).
inline bool buildTarFromSpec(std::string_view spec, const std::filesystem::path& out) {
    if (!spec.starts_with(kEntriesMagic)) return false;
    spec.remove_prefix(kEntriesMagic.size());
    struct WriteFree {
        void operator()(archive* a) const { archive_write_free(a); }
    };
    struct EntryFree {
        void operator()(archive_entry* e) const { archive_entry_free(e); }
    };
    const std::unique_ptr<archive, WriteFree> writer(archive_write_new());
    archive_write_set_format_pax_restricted(writer.get());
    archive_write_add_filter_gzip(writer.get());
    if (archive_write_open_filename(writer.get(), out.c_str()) != ARCHIVE_OK)
        invariantBroken("cannot write the scratch archive");
    int entries = 0;
    while (!spec.empty() && entries++ < 256) {
        const size_t nl = spec.find('\n');
        std::string_view line = spec.substr(0, nl);
        spec.remove_prefix(nl == std::string_view::npos ? spec.size() : nl + 1);
        const size_t space = line.find(' ');
        const std::string_view head = line.substr(0, space);
        line.remove_prefix(space == std::string_view::npos ? line.size() : space + 1);
        const size_t space2 = line.find(' ');
        const std::string name(line.substr(0, space2));
        const std::string arg(space2 == std::string_view::npos ? "" : line.substr(space2 + 1));
        if (head.empty() || name.empty()) continue;
        unsigned mode = head[0] == 'd' ? 0755 : 0644;
        if (head.size() > 2 && head[1] == ':') {
            mode = 0;
            for (const char c : head.substr(2)) {
                if (c >= '0' && c <= '7')
                    mode = (mode * 8 + static_cast<unsigned>(c - '0')) & 07777;
            }
        }
        const std::unique_ptr<archive_entry, EntryFree> entry(archive_entry_new());
        archive_entry_set_pathname(entry.get(), name.c_str());
        archive_entry_set_mtime(entry.get(), 946684800, 0);
        archive_entry_set_perm(entry.get(), mode);
        bool withData = false;
        switch (head[0]) {
            case 'f':
                archive_entry_set_filetype(entry.get(), AE_IFREG);
                archive_entry_set_size(entry.get(), static_cast<la_int64_t>(arg.size()));
                withData = true;
                break;
            case 'd':
                archive_entry_set_filetype(entry.get(), AE_IFDIR);
                break;
            case 'l':
                archive_entry_set_filetype(entry.get(), AE_IFLNK);
                archive_entry_set_symlink(entry.get(), arg.c_str());
                break;
            case 'h':
                archive_entry_set_filetype(entry.get(), AE_IFREG);
                archive_entry_set_hardlink(entry.get(), arg.c_str());
                break;
            case 'c':
            case 'b':
                archive_entry_set_filetype(entry.get(), head[0] == 'c' ? AE_IFCHR : AE_IFBLK);
                archive_entry_set_rdev(entry.get(), 0x0103);  // like /dev/null
                break;
            case 'p':
                archive_entry_set_filetype(entry.get(), AE_IFIFO);
                break;
            case 's':
                archive_entry_set_filetype(entry.get(), AE_IFSOCK);
                break;
            default:
                continue;
        }
        if (archive_write_header(writer.get(), entry.get()) < ARCHIVE_WARN) continue;
        if (withData && !arg.empty()) archive_write_data(writer.get(), arg.data(), arg.size());
    }
    // A format that cannot hold some entry may leave a cut archive: a fine input too.
    archive_write_close(writer.get());
    return true;
}

// The archive for one input: the bytes as they are, or the entries they list.
inline const std::filesystem::path& writeArchive(ScratchFile& file, const uint8_t* data,
                                                 size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    if (!buildTarFromSpec(input, file.path())) file.write(data, size);
    return file.path();
}

}  // namespace rm::fuzz
