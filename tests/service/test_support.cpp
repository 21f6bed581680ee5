#include "test_support.h"

#include <unistd.h>

#include <fstream>
#include <random>
#include <stdexcept>

namespace rm::service::testing {

ScratchDir::ScratchDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("rm-service-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

common::Logger& quietLogger() {
    static common::Logger logger("service-tests", common::LogLevel::error);
    return logger;
}

void writeFile(const std::filesystem::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace rm::service::testing
