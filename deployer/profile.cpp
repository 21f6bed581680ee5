#include "deployer/profile.h"

#include <pugixml.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <utility>

namespace rm::deployer {

bool isValidName(std::string_view name) {
    if (name.empty() || name.size() > ProfileLimits::kMaxNameLength) return false;
    bool onlyDots = true;
    for (const char c : name) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) return false;
        if (c != '.') onlyDots = false;
    }
    return !onlyDots;
}

std::string PackageCoordinates::key() const {
    return serviceClass + '/' + serviceName + '/' + serviceVersion + '/' + packageName + '/' +
           packageVersion;
}

std::string PackageCoordinates::packageKey() const {
    return serviceClass + '/' + serviceName + '/' + packageName;
}

namespace {

std::string_view trim(std::string_view s) {
    const auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
    while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
    return s;
}

bool containsIgnoreCase(std::string_view haystack, std::string_view needle) {
    const auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                                [](char a, char b) {
                                    return std::tolower(static_cast<unsigned char>(a)) ==
                                           std::tolower(static_cast<unsigned char>(b));
                                });
    return it != haystack.end();
}

// Turns one pugixml document into a PackageProfile. Every error names the source and the
// element path, so that a package author can find the mistake without reading our code.
class ProfileParser {
  public:
    explicit ProfileParser(const std::string& sourceName) : source_(sourceName) {}

    PackageProfile parse(std::string_view xml) {
        checkRawText(xml);
        pugi::xml_document doc;
        // parse_default keeps DOCTYPE handling off; entities other than the five predefined
        // ones and character references are never expanded. parse_fragment keeps text outside
        // the root element in the tree (plain parsing drops it silently) so singleRoot() can
        // refuse it.
        const pugi::xml_parse_result result =
            doc.load_buffer(xml.data(), xml.size(), pugi::parse_default | pugi::parse_fragment,
                            pugi::encoding_utf8);
        if (!result) {
            fail("document", std::string("is not well-formed XML (") + result.description() +
                                 " at byte " + std::to_string(result.offset) + ")");
        }
        checkShape(doc);
        const pugi::xml_node root = singleRoot(doc);
        return readPackage(root);
    }

  private:
    [[noreturn]] void fail(const std::string& where, const std::string& what) const {
        throw ProfileError(source_ + ": " + where + " " + what);
    }

    void checkRawText(std::string_view xml) const {
        if (xml.size() > ProfileLimits::kMaxDocumentBytes) {
            fail("document", "is " + std::to_string(xml.size()) +
                                 " bytes; profiles are limited to " +
                                 std::to_string(ProfileLimits::kMaxDocumentBytes) + " bytes");
        }
        // Refuse DTDs outright instead of relying on the parser not to expand them.
        if (containsIgnoreCase(xml, "<!DOCTYPE")) {
            fail("document", "contains a <!DOCTYPE> declaration; DTDs are not allowed in profiles");
        }
        if (containsIgnoreCase(xml, "<!ENTITY")) {
            fail("document", "contains an <!ENTITY> declaration; entities are not allowed");
        }
    }

    // Bounds depth and element count without recursion, so hostile nesting cannot exhaust the
    // stack.
    void checkShape(const pugi::xml_document& doc) const {
        std::vector<std::pair<pugi::xml_node, int>> stack;
        std::size_t elements = 0;
        for (pugi::xml_node child = doc.first_child(); child; child = child.next_sibling()) {
            stack.emplace_back(child, 1);
        }
        while (!stack.empty()) {
            const auto [node, depth] = stack.back();
            stack.pop_back();
            if (node.type() != pugi::node_element) continue;
            if (depth > ProfileLimits::kMaxDepth) {
                fail("<" + std::string(node.name()) + ">",
                     "is nested deeper than " + std::to_string(ProfileLimits::kMaxDepth) +
                         " levels");
            }
            if (++elements > ProfileLimits::kMaxElements) {
                fail("document",
                     "has more than " + std::to_string(ProfileLimits::kMaxElements) + " elements");
            }
            for (pugi::xml_node child = node.first_child(); child; child = child.next_sibling()) {
                stack.emplace_back(child, depth + 1);
            }
        }
    }

    pugi::xml_node singleRoot(const pugi::xml_document& doc) const {
        pugi::xml_node root;
        for (pugi::xml_node child = doc.first_child(); child; child = child.next_sibling()) {
            if (child.type() == pugi::node_element) {
                if (root) fail("document", "has more than one top-level element");
                root = child;
            } else if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata) {
                fail("document", "has text outside the <Package> element");
            }
        }
        if (!root) fail("document", "has no <Package> element");
        if (std::string_view(root.name()) != "Package") {
            fail("document",
                 "has root element <" + std::string(root.name()) + ">; expected <Package>");
        }
        return root;
    }

    // Text content of a leaf element; child elements are an error.
    std::string leafText(pugi::xml_node node, const std::string& path) const {
        std::string text;
        for (pugi::xml_node child = node.first_child(); child; child = child.next_sibling()) {
            if (child.type() == pugi::node_element) {
                fail(path, "must contain only text, found <" + std::string(child.name()) + ">");
            }
            if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata) {
                text += child.value();
            }
        }
        return std::string(trim(text));
    }

    void rejectText(pugi::xml_node node, const std::string& path) const {
        for (pugi::xml_node child = node.first_child(); child; child = child.next_sibling()) {
            if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata) {
                fail(path, "contains unexpected text '" +
                               std::string(trim(child.value())).substr(0, 40) + "'");
            }
        }
    }

    void rejectAttributes(pugi::xml_node node, const std::string& path,
                          std::initializer_list<std::string_view> allowed) const {
        for (pugi::xml_attribute attr = node.first_attribute(); attr;
             attr = attr.next_attribute()) {
            if (std::find(allowed.begin(), allowed.end(), std::string_view(attr.name())) ==
                allowed.end()) {
                fail(path, "has unknown attribute '" + std::string(attr.name()) + "'");
            }
        }
    }

    // Returns the single child element `name` (or an empty node); a repeated element is an
    // error because which one wins would be arbitrary.
    pugi::xml_node uniqueChild(pugi::xml_node parent, const char* name,
                               const std::string& parentPath) const {
        pugi::xml_node found;
        for (pugi::xml_node child = parent.child(name); child; child = child.next_sibling(name)) {
            if (found) fail(parentPath + "/" + name, "appears more than once");
            found = child;
        }
        return found;
    }

    std::string requiredName(pugi::xml_node parent, const char* name,
                             const std::string& parentPath) const {
        const std::string path = parentPath + "/" + name;
        const pugi::xml_node node = uniqueChild(parent, name, parentPath);
        if (!node) fail(path, "is missing");
        std::string value = leafText(node, path);
        if (value.empty()) fail(path, "is empty");
        if (!isValidName(value)) {
            fail(path, "'" + value.substr(0, 64) + "' is not a valid name (use 1-" +
                           std::to_string(ProfileLimits::kMaxNameLength) +
                           " characters from A-Z a-z 0-9 . _ -, not only dots)");
        }
        return value;
    }

    std::string requiredVersion(pugi::xml_node parent, const char* name,
                                const std::string& parentPath) const {
        const std::string path = parentPath + "/" + name;
        const pugi::xml_node node = uniqueChild(parent, name, parentPath);
        if (!node) fail(path, "is missing");
        std::string value = leafText(node, path);
        if (value.empty()) fail(path, "is empty");
        try {
            Version::parse(value);
        } catch (const VersionError& e) {
            fail(path, e.what());
        }
        return value;
    }

    PackageProfile readPackage(pugi::xml_node root) {
        const std::string path = "Package";
        rejectText(root, path);
        PackageProfile profile;
        auto& c = profile.coords;
        c.serviceClass = requiredName(root, "ServiceClass", "Package");
        c.serviceName = requiredName(root, "ServiceName", "Package");
        c.serviceVersion = requiredVersion(root, "ServiceVersion", "Package");
        c.packageName = requiredName(root, "PackageName", "Package");
        c.packageVersion = requiredVersion(root, "PackageVersion", "Package");
        if (const auto deps = uniqueChild(root, "Dependencies", "Package")) {
            profile.dependencies = readDependencies(deps);
        }
        if (const auto lifecycle = uniqueChild(root, "Lifecycle", "Package")) {
            profile.lifecycle = readLifecycle(lifecycle);
        }
        if (const auto requirements = uniqueChild(root, "Requirements", "Package")) {
            profile.requirements = readRequirements(requirements);
        }
        return profile;
    }

    std::vector<DependencySpec> readDependencies(pugi::xml_node deps) const {
        const std::string path = "Package/Dependencies";
        rejectText(deps, path);
        std::vector<DependencySpec> result;
        std::set<std::string> seen;
        for (pugi::xml_node node = deps.first_child(); node; node = node.next_sibling()) {
            if (node.type() != pugi::node_element) continue;
            if (std::string_view(node.name()) != "Dependency") {
                fail(path, "may only contain <Dependency> elements, found <" +
                               std::string(node.name()) + ">");
            }
            if (result.size() == ProfileLimits::kMaxDependencies) {
                fail(path, "has more than " + std::to_string(ProfileLimits::kMaxDependencies) +
                               " dependencies");
            }
            const std::string depPath =
                path + "/Dependency[" + std::to_string(result.size() + 1) + "]";
            DependencySpec dep;
            dep.serviceClass = requiredName(node, "ServiceClass", depPath);
            dep.serviceName = requiredName(node, "ServiceName", depPath);
            dep.packageName = requiredName(node, "PackageName", depPath);
            if (const auto version = uniqueChild(node, "Version", depPath)) {
                const std::string versionPath = depPath + "/Version";
                try {
                    dep.range = VersionRange::parse(leafText(version, versionPath));
                } catch (const VersionError& e) {
                    fail(versionPath, e.what());
                }
            }
            const std::string key =
                dep.serviceClass + '/' + dep.serviceName + '/' + dep.packageName;
            if (!seen.insert(key).second) {
                fail(depPath, "names " + key + " a second time; merge the two version ranges");
            }
            result.push_back(std::move(dep));
        }
        return result;
    }

    Lifecycle readLifecycle(pugi::xml_node node) const {
        const std::string path = "Package/Lifecycle";
        rejectText(node, path);
        struct StepSpec {
            const char* name;
            std::optional<LifecycleStep> Lifecycle::*member;
            int defaultTimeout;
            bool commandOptional;
        };
        static constexpr StepSpec kSteps[] = {
            {"Install", &Lifecycle::install, LifecycleDefaults::kInstall, false},
            {"Start", &Lifecycle::start, LifecycleDefaults::kStart, false},
            {"Ready", &Lifecycle::ready, LifecycleDefaults::kReady, false},
            {"Verify", &Lifecycle::verify, LifecycleDefaults::kVerify, false},
            {"Stop", &Lifecycle::stop, LifecycleDefaults::kStop, true},
            {"Uninstall", &Lifecycle::uninstall, LifecycleDefaults::kUninstall, false},
        };
        Lifecycle lifecycle;
        for (pugi::xml_node child = node.first_child(); child; child = child.next_sibling()) {
            if (child.type() != pugi::node_element) continue;
            const std::string_view name = child.name();
            const auto spec = std::find_if(std::begin(kSteps), std::end(kSteps),
                                           [&](const StepSpec& s) { return name == s.name; });
            if (spec == std::end(kSteps)) {
                fail(path, "has unknown step <" + std::string(name) +
                               "> (known: Install, Start, Ready, Verify, Stop, Uninstall)");
            }
            const std::string stepPath = path + "/" + spec->name;
            auto& slot = lifecycle.*(spec->member);
            if (slot) fail(stepPath, "appears more than once");
            rejectAttributes(child, stepPath, {"timeout"});
            LifecycleStep step;
            step.command = leafText(child, stepPath);
            if (step.command.empty() && !spec->commandOptional) fail(stepPath, "has no command");
            if (step.command.size() > ProfileLimits::kMaxCommandLength) {
                fail(stepPath, "command is longer than " +
                                   std::to_string(ProfileLimits::kMaxCommandLength) + " bytes");
            }
            step.timeoutSeconds = spec->defaultTimeout;
            if (const auto attr = child.attribute("timeout")) {
                step.timeoutSeconds = parseTimeout(attr.value(), stepPath);
            }
            slot = std::move(step);
        }
        return lifecycle;
    }

    int parseTimeout(std::string_view raw, const std::string& path) const {
        const std::string_view text = trim(raw);
        int value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 1 ||
            value > ProfileLimits::kMaxTimeoutSeconds) {
            fail(path, "has timeout=\"" + std::string(raw.substr(0, 32)) +
                           "\"; expected whole seconds from 1 to " +
                           std::to_string(ProfileLimits::kMaxTimeoutSeconds));
        }
        return value;
    }

    Requirements readRequirements(pugi::xml_node node) const {
        const std::string path = "Package/Requirements";
        rejectText(node, path);
        Requirements requirements;
        for (pugi::xml_node label = node.child("Label"); label;
             label = label.next_sibling("Label")) {
            const std::string labelPath = path + "/Label";
            rejectAttributes(label, labelPath, {"key"});
            const std::string key = std::string(trim(label.attribute("key").value()));
            if (!isValidName(key)) {
                fail(labelPath, "needs a key attribute made of A-Z a-z 0-9 . _ - (got '" +
                                    key.substr(0, 64) + "')");
            }
            if (requirements.labels.size() == ProfileLimits::kMaxLabels) {
                fail(labelPath,
                     "appears more than " + std::to_string(ProfileLimits::kMaxLabels) + " times");
            }
            std::string value = leafText(label, labelPath + "[@key='" + key + "']");
            if (value.size() > ProfileLimits::kMaxNameLength) {
                fail(labelPath + "[@key='" + key + "']", "value is too long");
            }
            if (!requirements.labels.emplace(key, std::move(value)).second) {
                fail(labelPath + "[@key='" + key + "']", "is given twice");
            }
        }
        if (const auto disk = uniqueChild(node, "MinDiskMB", path)) {
            const std::string diskPath = path + "/MinDiskMB";
            const std::string text = leafText(disk, diskPath);
            std::int64_t value = -1;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
            if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
                value < 0 || value > ProfileLimits::kMaxDiskMB) {
                fail(diskPath, "'" + text.substr(0, 32) +
                                   "' is not a whole number of MB from 0 to " +
                                   std::to_string(ProfileLimits::kMaxDiskMB));
            }
            requirements.minDiskMB = value;
        }
        return requirements;
    }

    const std::string& source_;
};

}  // namespace

PackageProfile parseProfile(std::string_view xml, const std::string& sourceName) {
    return ProfileParser(sourceName).parse(xml);
}

}  // namespace rm::deployer
