#include "deployer/sha256.h"

#include <openssl/evp.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <system_error>

namespace rm::deployer {
namespace {

struct DigestContextDeleter {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

// One streaming SHA-256 computation; owns its OpenSSL context.
class Sha256 {
  public:
    Sha256() : ctx_(EVP_MD_CTX_new()) {
        if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) {
            throw std::runtime_error("OpenSSL could not initialise a SHA-256 context");
        }
    }

    void update(const void* data, std::size_t size) {
        if (EVP_DigestUpdate(ctx_.get(), data, size) != 1) {
            throw std::runtime_error("OpenSSL SHA-256 update failed");
        }
    }

    std::string hexDigest() {
        std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
        unsigned int length = 0;
        if (EVP_DigestFinal_ex(ctx_.get(), digest.data(), &length) != 1) {
            throw std::runtime_error("OpenSSL SHA-256 finalisation failed");
        }
        static constexpr char kHex[] = "0123456789abcdef";
        std::string hex;
        hex.reserve(length * 2);
        for (unsigned int i = 0; i < length; ++i) {
            hex.push_back(kHex[digest[i] >> 4]);
            hex.push_back(kHex[digest[i] & 0x0f]);
        }
        return hex;
    }

  private:
    std::unique_ptr<EVP_MD_CTX, DigestContextDeleter> ctx_;
};

}  // namespace

std::string sha256File(const std::filesystem::path& path) {
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (!file) {
        throw std::runtime_error("cannot open " + path.string() +
                                 " to hash it: " + std::generic_category().message(errno));
    }
    Sha256 sha;
    std::array<char, 64 * 1024> buffer{};
    while (true) {
        const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), file.get());
        if (n > 0) sha.update(buffer.data(), n);
        if (n < buffer.size()) {
            if (std::ferror(file.get())) {
                throw std::runtime_error("read error while hashing " + path.string());
            }
            break;
        }
    }
    return sha.hexDigest();
}

std::string sha256Hex(std::string_view data) {
    Sha256 sha;
    sha.update(data.data(), data.size());
    return sha.hexDigest();
}

}  // namespace rm::deployer
