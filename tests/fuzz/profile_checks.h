// What every accepted package profile must satisfy (the rules deployer/profile.h documents), a
// canonical text of a profile to compare two of them, and a renderer back to profile XML.
// Shared by profile_fuzz, package_archive_fuzz and archive_extract_fuzz.
#pragma once

#include <set>
#include <string>

#include "deployer/profile.h"
#include "tests/fuzz/fuzz_support.h"

namespace rm::fuzz {

inline void checkVersionText(const std::string& text, const char* what) {
    require(deployer::Version::tryParse(text).has_value(), what);
}

inline void checkStep(const std::optional<deployer::LifecycleStep>& step, bool commandOptional) {
    if (!step) return;
    require(commandOptional || !step->command.empty(), "accepted a lifecycle step without command");
    require(step->command.size() <= deployer::ProfileLimits::kMaxCommandLength,
            "accepted a command longer than the limit");
    require(step->timeoutSeconds >= 1 &&
                step->timeoutSeconds <= deployer::ProfileLimits::kMaxTimeoutSeconds,
            "accepted a timeout out of range");
    require(step->command.find('\0') == std::string::npos, "a command holds a NUL byte");
}

// Aborts unless `profile` obeys every validation rule of parseProfile.
inline void checkProfileRules(const deployer::PackageProfile& profile) {
    using deployer::isValidName;
    using deployer::ProfileLimits;
    const auto& c = profile.coords;
    require(isValidName(c.serviceClass) && isValidName(c.serviceName) && isValidName(c.packageName),
            "accepted an invalid coordinate name");
    checkVersionText(c.serviceVersion, "accepted an invalid ServiceVersion");
    checkVersionText(c.packageVersion, "accepted an invalid PackageVersion");
    require(profile.dependencies.size() <= ProfileLimits::kMaxDependencies,
            "accepted too many dependencies");
    std::set<std::string> keys;
    for (const auto& dep : profile.dependencies) {
        require(isValidName(dep.serviceClass) && isValidName(dep.serviceName) &&
                    isValidName(dep.packageName),
                "accepted an invalid dependency name");
        require(
            keys.insert(dep.serviceClass + '/' + dep.serviceName + '/' + dep.packageName).second,
            "accepted the same dependency twice");
        // The range must be what its own text says.
        const auto reparsed = deployer::VersionRange::parse(dep.range.toString());
        require(reparsed.isAny() == dep.range.isAny(), "a dependency range does not reparse");
    }
    const auto& l = profile.lifecycle;
    checkStep(l.install, false);
    checkStep(l.start, false);
    checkStep(l.ready, false);
    checkStep(l.verify, false);
    checkStep(l.stop, true);
    checkStep(l.uninstall, false);
    const auto& r = profile.requirements;
    require(r.labels.size() <= ProfileLimits::kMaxLabels, "accepted too many labels");
    for (const auto& [key, value] : r.labels) {
        require(isValidName(key), "accepted an invalid label key");
        require(value.size() <= ProfileLimits::kMaxNameLength, "accepted a label value too long");
    }
    require(r.minDiskMB >= 0 && r.minDiskMB <= ProfileLimits::kMaxDiskMB,
            "accepted MinDiskMB out of range");
}

// One line per fact, so two profiles are equal exactly when their texts are.
inline std::string describeProfile(const deployer::PackageProfile& p) {
    std::string out = "coords " + p.coords.key() + "\n";
    for (const auto& d : p.dependencies) {
        out += "dep " + d.serviceClass + "/" + d.serviceName + "/" + d.packageName + " " +
               d.range.toString() + "\n";
    }
    const auto step = [&out](const char* name, const std::optional<deployer::LifecycleStep>& s) {
        if (s)
            out += std::string(name) + " " + std::to_string(s->timeoutSeconds) + " " + s->command +
                   "\n";
    };
    step("install", p.lifecycle.install);
    step("start", p.lifecycle.start);
    step("ready", p.lifecycle.ready);
    step("verify", p.lifecycle.verify);
    step("stop", p.lifecycle.stop);
    step("uninstall", p.lifecycle.uninstall);
    for (const auto& [key, value] : p.requirements.labels)
        out += "label " + key + "=" + value + "\n";
    out += "disk " + std::to_string(p.requirements.minDiskMB) + "\n";
    return out;
}

// Escapes text for element content and attribute values; every control character becomes a
// character reference so that line-end normalisation cannot change it.
inline std::string xmlEscape(const std::string& text) {
    std::string out;
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        switch (ch) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&apos;";
                break;
            default:
                if (c < 0x20) {
                    out += "&#" + std::to_string(c) + ";";
                } else {
                    out += ch;
                }
        }
    }
    return out;
}

// The profile as a package author would write it.
inline std::string renderProfile(const deployer::PackageProfile& p) {
    const auto leaf = [](const char* name, const std::string& text) {
        return std::string("<") + name + ">" + xmlEscape(text) + "</" + name + ">";
    };
    std::string xml = "<Package>";
    xml += leaf("ServiceClass", p.coords.serviceClass) + leaf("ServiceName", p.coords.serviceName) +
           leaf("ServiceVersion", p.coords.serviceVersion) +
           leaf("PackageName", p.coords.packageName) +
           leaf("PackageVersion", p.coords.packageVersion);
    xml += "<Dependencies>";
    for (const auto& d : p.dependencies) {
        xml += "<Dependency>" + leaf("ServiceClass", d.serviceClass) +
               leaf("ServiceName", d.serviceName) + leaf("PackageName", d.packageName) +
               leaf("Version", d.range.toString()) + "</Dependency>";
    }
    xml += "</Dependencies><Lifecycle>";
    const auto step = [&xml](const char* name, const std::optional<deployer::LifecycleStep>& s) {
        if (!s) return;
        xml += std::string("<") + name + " timeout=\"" + std::to_string(s->timeoutSeconds) + "\">" +
               xmlEscape(s->command) + "</" + name + ">";
    };
    step("Install", p.lifecycle.install);
    step("Start", p.lifecycle.start);
    step("Ready", p.lifecycle.ready);
    step("Verify", p.lifecycle.verify);
    step("Stop", p.lifecycle.stop);
    step("Uninstall", p.lifecycle.uninstall);
    xml += "</Lifecycle><Requirements>";
    for (const auto& [key, value] : p.requirements.labels) {
        xml += "<Label key=\"" + xmlEscape(key) + "\">" + xmlEscape(value) + "</Label>";
    }
    xml += leaf("MinDiskMB", std::to_string(p.requirements.minDiskMB));
    xml += "</Requirements></Package>";
    return xml;
}

}  // namespace rm::fuzz
