#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "deployer/profile.h"
#include "deployer/repository_index.h"

namespace rm::deployer::test {

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
  public:
    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "rm-deployer-test-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

inline void writeFile(const std::filesystem::path& path, const std::string& content) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline std::string readFile(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct Dep {
    std::string serviceClass;
    std::string serviceName;
    std::string packageName;
    std::string version;  // empty: no <Version> element
};

// Profile XML for tests; lifecycle is optional raw XML placed inside <Lifecycle>.
inline std::string profileXml(const std::string& serviceClass, const std::string& serviceName,
                              const std::string& serviceVersion, const std::string& packageName,
                              const std::string& packageVersion, const std::vector<Dep>& deps = {},
                              const std::string& lifecycle = "") {
    std::string xml = "<Package><ServiceClass>" + serviceClass + "</ServiceClass><ServiceName>" +
                      serviceName + "</ServiceName><ServiceVersion>" + serviceVersion +
                      "</ServiceVersion><PackageName>" + packageName +
                      "</PackageName><PackageVersion>" + packageVersion + "</PackageVersion>";
    if (!deps.empty()) {
        xml += "<Dependencies>";
        for (const Dep& d : deps) {
            xml += "<Dependency><ServiceClass>" + d.serviceClass + "</ServiceClass><ServiceName>" +
                   d.serviceName + "</ServiceName><PackageName>" + d.packageName + "</PackageName>";
            if (!d.version.empty()) xml += "<Version>" + d.version + "</Version>";
            xml += "</Dependency>";
        }
        xml += "</Dependencies>";
    }
    if (!lifecycle.empty()) xml += "<Lifecycle>" + lifecycle + "</Lifecycle>";
    return xml + "</Package>";
}

// An in-memory index entry; the relative path and checksum are derived from the coordinates.
inline IndexedPackage indexed(const std::string& serviceClass, const std::string& serviceName,
                              const std::string& serviceVersion, const std::string& packageName,
                              const std::string& packageVersion,
                              const std::vector<Dep>& deps = {}) {
    IndexedPackage p;
    p.profile = parseProfile(
        profileXml(serviceClass, serviceName, serviceVersion, packageName, packageVersion, deps),
        "test");
    p.relativePath = serviceClass + "/" + serviceName + "/" + packageName + "-" + packageVersion +
                     "@" + serviceVersion + ".tar.gz";
    p.sha256 = std::string(64, 'a');
    p.sizeBytes = 1;
    return p;
}

struct RawEntry {
    std::string name;
    std::string data;
    int type = AE_IFREG;
    std::string link{};
};

// Writes an arbitrary (possibly hostile) .tar.gz for the reader tests.
inline void writeRawArchive(const std::filesystem::path& path,
                            const std::vector<RawEntry>& entries) {
    std::filesystem::create_directories(path.parent_path());
    const std::unique_ptr<archive, int (*)(archive*)> writer(archive_write_new(),
                                                             archive_write_free);
    archive* a = writer.get();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
    if (archive_write_open_filename(a, path.c_str()) != ARCHIVE_OK) {
        throw std::runtime_error("cannot write " + path.string());
    }
    for (const RawEntry& raw : entries) {
        const std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(),
                                                                             archive_entry_free);
        archive_entry* e = entry.get();
        archive_entry_set_pathname(e, raw.name.c_str());
        archive_entry_set_filetype(e, raw.type);
        archive_entry_set_perm(e, 0644);
        if (raw.type == AE_IFLNK) archive_entry_set_symlink(e, raw.link.c_str());
        if (raw.type == AE_IFREG) archive_entry_set_size(e, raw.data.size());
        archive_write_header(a, e);
        if (raw.type == AE_IFREG) archive_write_data(a, raw.data.data(), raw.data.size());
    }
    archive_write_close(a);
}

}  // namespace rm::deployer::test
