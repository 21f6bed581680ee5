// Dependency-resolution and repository-indexing benchmark.
//
// Part 1 (in memory): a synthetic index of 10,000 packages - 250 services x 2 service
// versions x 20 packages - whose dependencies form chains 50 services deep and a fan-out of 20
// (package p19 of every service needs p00..p18, which all need p00: diamonds everywhere).
// Ranges alternate so that some choices are revised during resolution. It measures resolution
// against a plain closure walk over the same graph without any version logic.
//
// Part 2 (on disk): real .tar.gz archives (2,000 by default: fewer than the in-memory index so
// the run stays short) built with buildPackage, indexed by Repository, against the cost of
// only hashing the same archives.
//
// Usage: resolve_bench [--requests N] [--archives N]   (--archives 0 skips part 2)

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "deployer/package_archive.h"
#include "deployer/repository.h"
#include "deployer/resolver.h"
#include "deployer/sha256.h"

namespace fs = std::filesystem;
using namespace rm::deployer;

namespace {

constexpr int kServices = 250;
constexpr int kReleases = 2;
constexpr int kPackagesPerRelease = 20;
constexpr int kChainLength = 50;  // services per chain
constexpr int kWidePackage = kPackagesPerRelease - 1;

using Clock = std::chrono::steady_clock;

double elapsedMicros(Clock::time_point start) {
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// Median / p90 of a set of samples.
class Samples {
  public:
    void add(double value) { values_.push_back(value); }
    std::size_t count() const { return values_.size(); }
    double percentile(double p) const {
        if (values_.empty()) return 0;
        std::vector<double> sorted = values_;
        std::sort(sorted.begin(), sorted.end());
        const auto index = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
        return sorted[index];
    }
    double median() const { return percentile(0.5); }
    double p90() const { return percentile(0.9); }

  private:
    std::vector<double> values_;
};

std::string serviceName(int s) {
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "S%03d", s);
    return buffer;
}
std::string packageName(int k) {
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "p%02d", k);
    return buffer;
}

// Profile XML of package k of service s, release r (1-based).
std::string syntheticProfile(int s, int r, int k) {
    std::string xml = "<Package><ServiceClass>Bench</ServiceClass><ServiceName>" + serviceName(s) +
                      "</ServiceName><ServiceVersion>" + std::to_string(r) +
                      ".0.0</ServiceVersion><PackageName>" + packageName(k) +
                      "</PackageName><PackageVersion>" + std::to_string(r) + "." +
                      std::to_string(k) + ".0</PackageVersion><Dependencies>";
    const auto dep = [&](int service, int package, const std::string& range) {
        xml += "<Dependency><ServiceClass>Bench</ServiceClass><ServiceName>" +
               serviceName(service) + "</ServiceName><PackageName>" + packageName(package) +
               "</PackageName>";
        if (!range.empty()) xml += "<Version>" + range + "</Version>";
        xml += "</Dependency>";
    };
    if (k == kWidePackage) {
        for (int j = 0; j < kWidePackage; ++j) dep(s, j, "");
    } else if (k > 0) {
        dep(s, 0, r == 1 ? "[1.0,2.0)" : "[1.0,]");
    }
    const int position = s % kChainLength;
    if (position + 1 < kChainLength && s + 1 < kServices) {
        dep(s + 1, k, position % 2 == 0 ? "[1.0,2.0)" : "[1.0,3.0)");
    }
    return xml + "</Dependencies></Package>";
}

std::vector<IndexedPackage> syntheticPackages() {
    std::vector<IndexedPackage> packages;
    packages.reserve(kServices * kReleases * kPackagesPerRelease);
    for (int s = 0; s < kServices; ++s) {
        for (int r = 1; r <= kReleases; ++r) {
            for (int k = 0; k < kPackagesPerRelease; ++k) {
                IndexedPackage p;
                p.profile = parseProfile(syntheticProfile(s, r, k), "synthetic");
                p.relativePath =
                    serviceName(s) + "/" + std::to_string(r) + "/" + packageName(k) + ".tar.gz";
                p.sha256 = std::string(64, '0');
                p.sizeBytes = 1;
                packages.push_back(std::move(p));
            }
        }
    }
    return packages;
}

enum class RequestKind { Deep, Wide, WholeService };

struct BenchRequest {
    RequestKind kind;
    ResolveRequest request;
};

std::vector<BenchRequest> requestMix(int count) {
    std::mt19937 random(20240501);
    std::vector<BenchRequest> requests;
    for (int i = 0; i < count; ++i) {
        const int s = static_cast<int>(random() % kServices);
        const int pick = static_cast<int>(random() % 10);
        ResolveRequest request{"Bench", serviceName(s), std::nullopt, std::nullopt, std::nullopt};
        RequestKind kind = RequestKind::WholeService;
        if (pick < 4) {
            kind = RequestKind::Deep;
            request.packageName = packageName(1 + static_cast<int>(random() % (kWidePackage - 1)));
            request.serviceVersion = std::to_string(1 + static_cast<int>(random() % 2)) + ".0.0";
        } else if (pick < 7) {
            kind = RequestKind::Wide;
            request.packageName = packageName(kWidePackage);
        }
        requests.push_back({kind, std::move(request)});
    }
    return requests;
}

// The reference: the same closure walked with no version logic - highest candidate of every
// dependency, visited set, nothing else.
std::size_t walkClosure(const RepositoryIndex& index, const ResolveRequest& request) {
    std::vector<RepositoryIndex::PackageId> stack;
    const auto* releases = index.findService(request.serviceClass, request.serviceName);
    if (!releases) return 0;
    const auto& release = releases->back();
    for (const auto id : release.packages) {
        if (!request.packageName ||
            index.package(id).profile.coords.packageName == *request.packageName) {
            stack.push_back(id);
        }
    }
    std::unordered_set<RepositoryIndex::IdentityId> seen;
    std::size_t visited = 0;
    while (!stack.empty()) {
        const auto id = stack.back();
        stack.pop_back();
        if (!seen.insert(index.identityOf(id)).second) continue;
        ++visited;
        for (const auto target : index.dependencyTargets(id)) {
            if (target != RepositoryIndex::kNoIdentity)
                stack.push_back(index.candidates(target)[0]);
        }
    }
    return visited;
}

void printStats(const char* name, const Samples& samples, const char* unit) {
    std::printf("%s: n=%zu median=%.1f %s p90=%.1f %s\n", name, samples.count(), samples.median(),
                unit, samples.p90(), unit);
}

void benchResolution(int requestCount) {
    const auto generateStart = Clock::now();
    const std::vector<IndexedPackage> packages = syntheticPackages();
    std::printf(
        "synthetic index: %zu packages (%d services x %d versions x %d packages), chains "
        "of %d services, fan-out %d; generated in %.0f ms\n",
        packages.size(), kServices, kReleases, kPackagesPerRelease, kChainLength, kWidePackage + 1,
        elapsedMicros(generateStart) / 1000);

    Samples buildTimes;
    std::shared_ptr<const RepositoryIndex> index;
    for (int i = 0; i < 5; ++i) {
        std::vector<IndexedPackage> copy = packages;
        const auto start = Clock::now();
        index = RepositoryIndex::build(std::move(copy));
        buildTimes.add(elapsedMicros(start) / 1000);
    }
    printStats("index rebuild, 10000 packages in memory", buildTimes, "ms");

    const std::vector<BenchRequest> requests = requestMix(requestCount);
    Samples all, deep, wide, whole, walk, closureSizes;
    std::size_t failures = 0;
    for (const BenchRequest& r : requests) {
        const auto start = Clock::now();
        const ResolutionResult result = resolve(*index, r.request);
        const double micros = elapsedMicros(start);
        if (!result.success) {
            if (++failures == 1)
                std::printf("unexpected failure: %s\n", result.errorDescription.c_str());
        }
        closureSizes.add(static_cast<double>(result.installOrder.size()));
        all.add(micros);
        (r.kind == RequestKind::Deep   ? deep
         : r.kind == RequestKind::Wide ? wide
                                       : whole)
            .add(micros);

        const auto walkStart = Clock::now();
        const std::size_t walked = walkClosure(*index, r.request);
        walk.add(elapsedMicros(walkStart));
        if (walked == 0) ++failures;
    }
    printStats("packages per resolution", closureSizes, "pkgs");
    printStats("resolve, all requests", all, "us");
    printStats("resolve, deep (one package, chain up to 50)", deep, "us");
    printStats("resolve, wide (fan-out 20 + chain)", wide, "us");
    printStats("resolve, whole service (20 roots + chains)", whole, "us");
    printStats("reference: closure walk without version logic", walk, "us");
    std::printf("ratio resolve/walk: median=%.1fx p90=%.1fx\n", all.median() / walk.median(),
                all.p90() / walk.p90());
    std::printf("failed resolutions: %zu (expected 0)\n", failures);
}

// A temporary directory removed on destruction.
class ScratchDir {
  public:
    ScratchDir() {
        std::string pattern = (fs::temp_directory_path() / "rm-resolve-bench-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

void writeFile(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

void benchRepository(int archiveCount) {
    ScratchDir scratch;
    const fs::path source = scratch.path() / "source";
    const fs::path repo = scratch.path() / "repo";
    fs::create_directories(source / "lib");
    fs::create_directories(repo);
    // 32 KiB of poorly compressible payload per package, so hashing has real work to do.
    std::mt19937 random(7);
    std::string payload(32 * 1024, '\0');
    for (char& c : payload) c = static_cast<char>('a' + random() % 26);
    writeFile(source / "lib" / "payload.dat", payload);

    // buildPackage syncs every archive to disk, so setup is latency-bound: a few threads,
    // each with its own source directory, keep it short.
    const auto buildStart = Clock::now();
    constexpr int kBuilders = 4;
    std::vector<std::thread> builders;
    std::atomic<bool> buildFailed{false};
    for (int b = 0; b < kBuilders; ++b) {
        builders.emplace_back([&, b] {
            try {
                const fs::path own = scratch.path() / ("source" + std::to_string(b));
                fs::create_directories(own);
                fs::copy(source / "lib", own / "lib", fs::copy_options::recursive);
                for (int i = b; i < archiveCount; i += kBuilders) {
                    const int s = i / kPackagesPerRelease;
                    const int k = i % kPackagesPerRelease;
                    writeFile(own / "profile.xml", syntheticProfile(s, 1, k));
                    fs::create_directories(repo / serviceName(s));
                    buildPackage(own, repo / serviceName(s) / (packageName(k) + "-1.tar.gz"));
                }
            } catch (const std::exception& e) {
                std::fprintf(stderr, "building archives failed: %s\n", e.what());
                buildFailed = true;
            }
        });
    }
    for (auto& t : builders) t.join();
    if (buildFailed) throw std::runtime_error("could not build the bench archives");
    std::printf("built %d real archives with buildPackage in %.1f s (setup, not a figure)\n",
                archiveCount, elapsedMicros(buildStart) / 1e6);

    Samples fullIndex, unchanged, onePercent, hashOnly;
    for (int run = 0; run < 3; ++run) {
        const auto start = Clock::now();
        Repository repository(repo);
        fullIndex.add(elapsedMicros(start) / 1000);
        if (repository.snapshot()->size() != static_cast<std::size_t>(archiveCount) ||
            !repository.problems().empty()) {
            std::printf("unexpected: indexed %zu archives, %zu problems\n",
                        repository.snapshot()->size(), repository.problems().size());
        }
        if (run != 0) continue;
        for (int i = 0; i < 5; ++i) {
            const auto t = Clock::now();
            repository.rescan();
            unchanged.add(elapsedMicros(t) / 1000);
        }
        for (int round = 0; round < 3; ++round) {
            // Replace 1% of the archives with new content, then rescan.
            writeFile(source / "lib" / "payload.dat", payload + std::to_string(round));
            for (int i = 0; i < archiveCount / 100; ++i) {
                const int s = (i * 7) % (archiveCount / kPackagesPerRelease);
                const int k = i % kPackagesPerRelease;
                writeFile(source / "profile.xml", syntheticProfile(s, 1, k));
                buildPackage(source, repo / serviceName(s) / (packageName(k) + "-1.tar.gz"));
            }
            const auto t = Clock::now();
            const RescanResult changes = repository.rescan();
            onePercent.add(elapsedMicros(t) / 1000);
            if (changes.replaced.size() != static_cast<std::size_t>(archiveCount / 100)) {
                std::printf("unexpected: rescan saw %zu replaced archives\n",
                            changes.replaced.size());
            }
        }
    }
    for (int run = 0; run < 3; ++run) {
        const auto start = Clock::now();
        for (const auto& entry : fs::recursive_directory_iterator(repo)) {
            if (entry.is_regular_file()) sha256File(entry.path());
        }
        hashOnly.add(elapsedMicros(start) / 1000);
    }
    char label[128];
    std::snprintf(label, sizeof label, "repository full index, %d real archives", archiveCount);
    printStats(label, fullIndex, "ms");
    printStats("repository rescan, nothing changed", unchanged, "ms");
    printStats("repository rescan, 1% of archives replaced", onePercent, "ms");
    printStats("reference: SHA-256 of the same archives only", hashOnly, "ms");
    std::printf("ratio full index/hash only: median=%.1fx\n",
                fullIndex.median() / hashOnly.median());
    std::printf("per archive, full index: %.3f ms\n", fullIndex.median() / archiveCount);
}

int intOption(int argc, char** argv, const std::string& name, int fallback) {
    for (int i = 1; i + 1 < argc; ++i) {
        if (argv[i] == name) return std::max(0, std::atoi(argv[i + 1]));
    }
    return fallback;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const auto start = Clock::now();
        benchResolution(intOption(argc, argv, "--requests", 1500));
        if (const int archives = intOption(argc, argv, "--archives", 2000); archives > 0) {
            benchRepository(archives);
        }
        std::printf("total bench time: %.1f s\n", elapsedMicros(start) / 1e6);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "resolve_bench failed: %s\n", e.what());
        return 1;
    }
}
