// Command-line flags and an optional `--config FILE` (Java-properties style: `key = value`).
// Every flag can be set in the file; a flag given on the command line wins over the file.
#pragma once

#include <Poco/AutoPtr.h>
#include <Poco/Util/LayeredConfiguration.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace rm::common {

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct OptionSpec {
    std::string name;                         // without leading dashes, e.g. "state-dir"
    std::string help;
    std::optional<std::string> defaultValue;  // absent and required: must be given
    bool required = false;
    bool isSwitch = false;  // takes no value (e.g. --help)
};

class Settings {
public:
    Settings(std::string program, std::string summary, std::vector<OptionSpec> options);

    // Throws UsageError with a message that says what is wrong.
    void parse(int argc, const char* const* argv);

    bool has(const std::string& name) const;
    std::string get(const std::string& name) const;
    int64_t getInt(const std::string& name) const;
    double getDouble(const std::string& name) const;
    bool getBool(const std::string& name) const;
    std::chrono::milliseconds getMillis(const std::string& name) const;
    std::vector<std::string> getList(const std::string& name) const;  // comma-separated

    std::string usage() const;

private:
    const OptionSpec& spec(const std::string& name) const;

    std::string program_;
    std::string summary_;
    std::vector<OptionSpec> options_;
    Poco::AutoPtr<Poco::Util::LayeredConfiguration> config_;
};

}  // namespace rm::common
