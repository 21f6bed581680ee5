#include "common/settings.h"

#include <Poco/Exception.h>
#include <Poco/NumberParser.h>
#include <Poco/String.h>
#include <Poco/StringTokenizer.h>
#include <Poco/Util/MapConfiguration.h>
#include <Poco/Util/PropertyFileConfiguration.h>

#include <sstream>

namespace rm::common {

namespace {

// Poco expands `${key}` references when a value is read; a reference cycle (`a = ${a}`) makes it
// throw its own exception, which must reach the operator as a UsageError naming the option.
std::string expandedValue(const Poco::Util::AbstractConfiguration& config,
                          const std::string& name) {
    try {
        return config.getString(name);
    } catch (const Poco::Exception& e) {
        throw UsageError("option --" + name + " = '" + config.getRawString(name, "") +
                         "' cannot be expanded (" + e.displayText() +
                         "): check its ${...} references");
    }
}

}  // namespace

Settings::Settings(std::string program, std::string summary, std::vector<OptionSpec> options)
    : program_(std::move(program)),
      summary_(std::move(summary)),
      options_(std::move(options)),
      config_(new Poco::Util::LayeredConfiguration) {
    options_.push_back({"config", "read settings from this file (key = value per line)", {}});
    options_.push_back({"help", "show this help", {}, false, true});
}

const OptionSpec& Settings::spec(const std::string& name) const {
    for (const auto& o : options_) {
        if (o.name == name) return o;
    }
    throw UsageError("unknown option --" + name + " (see " + program_ + " --help)");
}

void Settings::parse(int argc, const char* const* argv) {
    Poco::AutoPtr<Poco::Util::MapConfiguration> flags(new Poco::Util::MapConfiguration);
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg.rfind("--", 0) != 0) {
            throw UsageError("unexpected argument '" + arg + "' (options start with --)");
        }
        std::string name = arg.substr(2);
        std::optional<std::string> value;
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        const OptionSpec& s = spec(name);
        if (s.isSwitch) {
            flags->setString(name, value.value_or("true"));
            continue;
        }
        if (!value) {
            if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value");
            value = argv[++i];
        }
        flags->setString(name, *value);
    }
    config_->add(flags, 0);
    if (flags->has("config")) {
        std::string file = expandedValue(*flags, "config");
        Poco::AutoPtr<Poco::Util::PropertyFileConfiguration> fromFile;
        try {
            fromFile = new Poco::Util::PropertyFileConfiguration(file);
        } catch (const Poco::Exception& e) {
            throw UsageError("cannot read config file " + file + ": " + e.displayText());
        }
        Poco::Util::AbstractConfiguration::Keys keys;
        fromFile->keys(keys);
        for (const auto& key : keys) {
            spec(key);  // reject unknown keys early
            // Poco splits keys at dots ("threads.x" is a child of "threads"), and no option
            // has a dot in its name: such a key is a typo that would otherwise be ignored.
            Poco::Util::AbstractConfiguration::Keys children;
            fromFile->keys(key, children);
            if (!children.empty()) {
                throw UsageError("unknown option --" + key + "." + children.front() +
                                 " in config file " + file + " (see " + program_ + " --help)");
            }
        }
        config_->add(fromFile, 1);
    }
    Poco::AutoPtr<Poco::Util::MapConfiguration> defaults(new Poco::Util::MapConfiguration);
    for (const auto& o : options_) {
        if (o.defaultValue) defaults->setString(o.name, *o.defaultValue);
    }
    config_->add(defaults, 2);
    // Expand every value once now, so a broken ${...} reference is reported at start-up.
    for (const auto& o : options_) {
        if (config_->has(o.name)) expandedValue(*config_, o.name);
    }
    if (getBool("help")) return;
    for (const auto& o : options_) {
        if (o.required && !config_->has(o.name)) {
            throw UsageError("missing required option --" + o.name + " (" + o.help + ")");
        }
    }
}

bool Settings::has(const std::string& name) const {
    spec(name);
    return config_->has(name);
}

std::string Settings::get(const std::string& name) const {
    spec(name);
    if (!config_->has(name)) throw UsageError("option --" + name + " is not set");
    return expandedValue(*config_, name);
}

int64_t Settings::getInt(const std::string& name) const {
    std::string v = get(name);
    Poco::Int64 out = 0;
    if (!Poco::NumberParser::tryParse64(v, out)) {
        throw UsageError("option --" + name + " must be a whole number, got '" + v + "'");
    }
    return out;
}

double Settings::getDouble(const std::string& name) const {
    std::string v = get(name);
    double out = 0;
    if (!Poco::NumberParser::tryParseFloat(v, out)) {
        throw UsageError("option --" + name + " must be a number, got '" + v + "'");
    }
    return out;
}

bool Settings::getBool(const std::string& name) const {
    if (!has(name)) return false;
    std::string v = Poco::toLower(get(name));
    if (v == "true" || v == "yes" || v == "1" || v == "on") return true;
    if (v == "false" || v == "no" || v == "0" || v == "off") return false;
    throw UsageError("option --" + name + " must be true or false, got '" + v + "'");
}

std::chrono::milliseconds Settings::getMillis(const std::string& name) const {
    int64_t v = getInt(name);
    if (v < 0) throw UsageError("option --" + name + " must not be negative");
    return std::chrono::milliseconds(v);
}

std::vector<std::string> Settings::getList(const std::string& name) const {
    std::vector<std::string> out;
    if (!has(name)) return out;
    Poco::StringTokenizer tok(get(name), ",",
                              Poco::StringTokenizer::TOK_TRIM | Poco::StringTokenizer::TOK_IGNORE_EMPTY);
    for (const auto& t : tok) out.push_back(t);
    return out;
}

std::string Settings::usage() const {
    std::ostringstream out;
    out << "usage: " << program_ << " [options]\n" << summary_ << "\n\noptions:\n";
    for (const auto& o : options_) {
        out << "  --" << o.name << (o.isSwitch ? "" : " VALUE");
        out << "\n      " << o.help;
        if (o.required) out << " (required)";
        if (o.defaultValue) out << " (default: " << *o.defaultValue << ")";
        out << "\n";
    }
    out << "\nEvery option can also be set in the --config file as `name = value`.\n";
    return out.str();
}

}  // namespace rm::common
