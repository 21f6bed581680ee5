#include "common/settings.h"

#include <stdlib.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <string>

using rm::common::Settings;
using rm::common::UsageError;

namespace {

// A config file with `content`, removed at the end of the test.
class ConfigFile {
  public:
    explicit ConfigFile(const std::string& content) {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "rm-settings-test-XXXXXX").string();
        const int fd = ::mkstemp(pattern.data());
        BOOST_REQUIRE(fd >= 0);
        ::close(fd);
        path_ = pattern;
        std::ofstream(path_) << content;
    }
    ~ConfigFile() { std::filesystem::remove(path_); }
    std::string path() const { return path_.string(); }

  private:
    std::filesystem::path path_;
};

Settings makeSettings() {
    return Settings("rm-test", "settings test",
                    {{"state-dir", "state", {}, true},
                     {"users", "users file", {}},
                     {"threads", "threads", "16"}});
}

// Parses `--config FILE` and returns the UsageError's message ("" when parse() succeeded).
std::string parseError(Settings& settings, const ConfigFile& file) {
    const std::string path = file.path();
    const char* argv[] = {"rm-test", "--config", path.c_str()};
    try {
        settings.parse(3, argv);
    } catch (const UsageError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(settings)

BOOST_AUTO_TEST_CASE(config_references_expand_to_other_options) {
    ConfigFile file("state-dir = /var/lib/rm\nusers = ${state-dir}/users\n");
    Settings settings = makeSettings();
    BOOST_TEST(parseError(settings, file) == "");
    BOOST_TEST(settings.get("users") == "/var/lib/rm/users");
}

// Found by tests/fuzz/settings_config_fuzz: Poco's CircularReferenceException escaped instead of
// a UsageError naming the option.
BOOST_AUTO_TEST_CASE(circular_reference_is_a_usage_error_naming_the_option) {
    for (const std::string text : {"state-dir = ${state-dir}\n",
                                   "state-dir = /x\nusers = ${threads}\nthreads = ${users}\n"}) {
        ConfigFile file(text);
        Settings settings = makeSettings();
        const std::string error = parseError(settings, file);
        BOOST_TEST(error.find("cannot be expanded") != std::string::npos, error);
        BOOST_TEST(error.find("option --") != std::string::npos, error);
    }
}

BOOST_AUTO_TEST_CASE(dotted_keys_are_unknown_options) {
    ConfigFile file("state-dir = /x\nthreads.max = 4\n");
    Settings settings = makeSettings();
    const std::string error = parseError(settings, file);
    BOOST_TEST(error.find("unknown option --threads.max") != std::string::npos, error);
}

BOOST_AUTO_TEST_SUITE_END()
