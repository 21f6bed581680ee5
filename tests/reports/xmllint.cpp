#include "tests/reports/xmllint.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace rm::reports::testing {
namespace {

// A temporary file removed when it goes out of scope; unique so parallel test runs can't clash.
class TempFile {
  public:
    explicit TempFile(std::string_view content) {
        std::string pattern = "/tmp/rm-report-XXXXXX.xml";
        const int fd = mkstemps(pattern.data(), 4);
        if (fd < 0) throw std::runtime_error("mkstemps failed for " + pattern);
        close(fd);
        path_ = pattern;
        std::ofstream out(path_, std::ios::binary);
        out.write(content.data(), static_cast<std::streamsize>(content.size()));
        if (!out) throw std::runtime_error("cannot write " + path_);
    }
    ~TempFile() { std::remove(path_.c_str()); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

}  // namespace

Validation validateWithXmllint(std::string_view document, const std::string& schemaPath) {
    const TempFile file(document);
    // Paths come from the build and mkstemps, never from test data, so quoting suffices.
    const std::string command = std::string("'") + RM_XMLLINT + "' --noout --nonet --schema '" +
                                schemaPath + "' '" + file.path() + "' 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) throw std::runtime_error("cannot run: " + command);
    Validation result;
    std::array<char, 4096> buffer;
    while (const std::size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) {
        result.output.append(buffer.data(), n);
    }
    const int status = pclose(pipe);
    result.valid = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return result;
}

std::string reportSchemaPath() {
    return std::string(RM_SOURCE_DIR) + "/wsdl/ResourceReport.xsd";
}

std::string withXmlDeclaration(std::string_view report) {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + std::string(report);
}

}  // namespace rm::reports::testing
