#include "reports/report_xml.h"

#include <pugixml.hpp>

#include <algorithm>
#include <optional>
#include <utility>

#include "reports/markup_text.h"

namespace rm::reports {
namespace {

// ---------------------------------------------------------------------------------------------
// Rendering. A hand-written writer rather than a pugixml DOM: the report is rendered on every
// change of a session and building a tree first costs several times more than appending.

class XmlWriter {
  public:
    XmlWriter(std::string& out, XmlLayout layout)
        : out_(out), indented_(layout == XmlLayout::Indented) {}

    void open(std::string_view name) {
        startLine();
        out_ += '<';
        out_ += name;
        out_ += '>';
        ++depth_;
    }

    // Only for elements opened with open() that got children: empty ones go through empty().
    void close(std::string_view name) {
        --depth_;
        startLine();
        out_ += std::string_view("</");
        out_ += name;
        out_ += '>';
    }

    void empty(std::string_view name) {
        startLine();
        out_ += '<';
        out_ += name;
        out_ += std::string_view("/>");
    }

    void text(std::string_view name, std::string_view value) {
        if (value.empty()) return empty(name);
        startLine();
        out_ += '<';
        out_ += name;
        out_ += '>';
        appendEscapedMarkup(out_, value);
        out_ += std::string_view("</");
        out_ += name;
        out_ += '>';
    }

    void finish() {
        if (indented_) out_ += '\n';
    }

  private:
    void startLine() {
        if (!indented_ || out_.empty()) return;
        out_ += '\n';
        out_.append(2 * depth_, ' ');
    }

    std::string& out_;
    bool indented_;
    std::size_t depth_ = 0;
};

std::string_view errorOrDash(const std::string& error) {
    return error.empty() ? kNoError : std::string_view(error);
}

std::string_view activityElementName(ResourceReport::ActivityKind kind) {
    return kind == ResourceReport::ActivityKind::Deployment ? "DeploymentActivity"
                                                            : "UndeploymentActivity";
}

// Renders `<name>` around one `<itemName>` per item, or `<name/>` when there are none.
template <class Item, class WriteItem>
void writeList(XmlWriter& w, std::string_view name, const std::vector<Item>& items,
               WriteItem writeItem) {
    if (items.empty()) return w.empty(name);
    w.open(name);
    for (const Item& item : items) writeItem(w, item);
    w.close(name);
}

void writeDependency(XmlWriter& w, const Dependency& d) {
    w.open("Dependency");
    w.text("ServiceClass", d.serviceClass);
    w.text("ServiceName", d.serviceName);
    w.text("ServiceVersion", d.serviceVersion);
    w.text("PackageName", d.packageName);
    w.text("PackageVersion", d.packageVersion);
    w.close("Dependency");
}

void writeService(XmlWriter& w, const ServiceEntry& s) {
    w.open("Service");
    w.text("Class", s.serviceClass);
    w.text("Name", s.serviceName);
    w.text("Version", s.serviceVersion);
    w.text("DependenciesResolutionStatus", s.resolutionStatus);
    w.text("DeployedOn", s.deployedOn);
    w.text("ErrorDescription", errorOrDash(s.errorDescription));
    w.open("DependenciesResolution");
    writeList(w, "ResolvedDependencies", s.resolved, writeDependency);
    writeList(w, "MissingDependencies", s.missing, writeDependency);
    w.close("DependenciesResolution");
    w.close("Service");
}

void writePackage(XmlWriter& w, const PackageEntry& p) {
    w.open("Package");
    w.text("ServiceClass", p.serviceClass);
    w.text("ServiceName", p.serviceName);
    w.text("ServiceVersion", p.serviceVersion);
    w.text("PackageName", p.packageName);
    w.text("PackageVersion", p.packageVersion);
    w.text("Status", p.status);
    w.text("Message", p.message);
    w.close("Package");
}

void writeGhn(XmlWriter& w, const GhnActivity& g) {
    w.open("GHN");
    w.text("Host", g.host);
    w.text("ID", g.id);
    w.text("LastReportReceivedOn", g.lastReportReceivedOn);
    w.open("LastReportReceived");
    w.text("Status", g.nodeStatus);
    writeList(w, "Packages", g.packages, writePackage);
    w.close("LastReportReceived");
    w.close("GHN");
}

void writeResource(XmlWriter& w, const ResourceEntry& r) {
    w.open("Resource");
    w.text("ID", r.id);
    w.text("Type", r.type);
    w.text("Status", r.status);
    w.text("ErrorDescription", errorOrDash(r.errorDescription));
    w.close("Resource");
}

std::size_t estimatedSize(const ResourceReport& report) {
    std::size_t size = 1024 + 160 * report.resources.size();
    for (const ServiceEntry& s : report.services) {
        size += 400 + 220 * (s.resolved.size() + s.missing.size());
    }
    for (const GhnActivity& g : report.ghns) size += 250 + 300 * g.packages.size();
    return size;
}

// ---------------------------------------------------------------------------------------------
// Parsing.

constexpr std::string_view kRootName = "ResourceReport";

[[noreturn]] void fail(const std::string& what) {
    throw ReportParseError("invalid ResourceReport: " + what);
}

// Text from the document, made fit for a one-line error message.
std::string shown(std::string_view value) {
    constexpr std::size_t kMaxShown = 60;
    std::string text = sanitizeText(value.substr(0, kMaxShown));
    std::replace_if(
        text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
    return value.size() > kMaxShown ? text + "..." : text;
}

std::string quoted(std::string_view value) {
    return "'" + shown(value) + "'";
}
std::string tag(std::string_view name) {
    return "<" + shown(name) + ">";
}

bool isWhitespace(std::string_view text) {
    return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

bool isText(pugi::xml_node node) {
    return node.type() == pugi::node_pcdata || node.type() == pugi::node_cdata;
}

void checkAttributes(pugi::xml_node element, const std::string& path) {
    for (pugi::xml_attribute attribute : element.attributes()) {
        const std::string_view name = attribute.name();
        const bool prefixDeclaration = name.starts_with("xmlns:");
        const bool noDefaultNamespace = name == "xmlns" && *attribute.value() == '\0';
        if (!prefixDeclaration && !noDefaultNamespace) {
            fail("unexpected attribute " + quoted(name) + " on " + path);
        }
    }
}

struct Element {
    pugi::xml_node node;
    std::string path;
};

// The text content of a leaf element; markup inside it is an error.
std::string textOf(const Element& element) {
    std::string text;
    for (pugi::xml_node child : element.node.children()) {
        if (!isText(child)) fail("element " + element.path + " must contain text only");
        text += child.value();
    }
    return sanitizeText(text);
}

template <std::size_t N>
std::string valueIn(const Element& element, const std::array<std::string_view, N>& allowed) {
    std::string value = textOf(element);
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
        std::string expected;
        for (std::string_view option : allowed) {
            expected += expected.empty() ? "" : ", ";
            expected += option;
        }
        fail(element.path + " is " + quoted(value) + ", expected one of " + expected);
    }
    return value;
}

// Walks the child elements of one element in document order, the way the schema's sequences
// demand: each call consumes the next element if (and only if) it has the expected name.
class ChildReader {
  public:
    explicit ChildReader(const Element& parent)
        : path_(parent.path), next_(parent.node.first_child()) {}

    Element required(std::string_view name) {
        skipToElement();
        if (!next_) fail("missing element " + tag(name) + " in " + path_);
        if (name != next_.name()) {
            fail("expected " + tag(name) + " but found " + tag(next_.name()) + " in " + path_);
        }
        return take(std::string(name));
    }

    std::optional<Element> optional(std::string_view name) {
        skipToElement();
        if (!next_ || name != next_.name()) return std::nullopt;
        return take(std::string(name));
    }

    // The next of a run of repeated elements, with its position in the path. Every list in
    // the report repeats a single element name, so one counter per reader suffices.
    std::optional<Element> repeated(std::string_view name) {
        skipToElement();
        if (!next_ || name != next_.name()) return std::nullopt;
        return take(std::string(name) + "[" + std::to_string(++repeatedCount_) + "]");
    }

    std::string text(std::string_view name) { return textOf(required(name)); }

    template <std::size_t N>
    std::string oneOf(std::string_view name, const std::array<std::string_view, N>& allowed) {
        return valueIn(required(name), allowed);
    }

    template <std::size_t N>
    std::optional<std::string> optionalOneOf(std::string_view name,
                                             const std::array<std::string_view, N>& allowed) {
        std::optional<Element> element = optional(name);
        if (!element) return std::nullopt;
        return valueIn(*element, allowed);
    }

    void finish() {
        skipToElement();
        if (next_) fail("unexpected element " + tag(next_.name()) + " in " + path_);
    }

  private:
    void skipToElement() {
        for (; next_ && next_.type() != pugi::node_element; next_ = next_.next_sibling()) {
            if (isText(next_) && !isWhitespace(next_.value())) {
                fail("unexpected text " + quoted(next_.value()) + " in " + path_);
            }
        }
    }

    Element take(const std::string& step) {
        Element element{next_, path_ + "/" + step};
        checkAttributes(element.node, element.path);
        next_ = next_.next_sibling();
        return element;
    }

    std::string path_;
    pugi::xml_node next_;
    std::size_t repeatedCount_ = 0;
};

// "-" on the wire means no error.
std::string errorText(ChildReader& reader) {
    std::string error = reader.text("ErrorDescription");
    if (error == kNoError) error.clear();
    return error;
}

// Parses `<name>` holding zero or more `<itemName>`; an absent list is an error.
template <class ReadItem>
auto readList(ChildReader& reader, std::string_view name, std::string_view itemName,
              ReadItem readItem) {
    ChildReader list(reader.required(name));
    std::vector<decltype(readItem(std::declval<ChildReader&>()))> items;
    while (auto item = list.repeated(itemName)) {
        ChildReader fields(*item);
        items.push_back(readItem(fields));
        fields.finish();
    }
    list.finish();
    return items;
}

Dependency readDependency(ChildReader& r) {
    Dependency d;
    d.serviceClass = r.text("ServiceClass");
    d.serviceName = r.text("ServiceName");
    d.serviceVersion = r.text("ServiceVersion");
    d.packageName = r.text("PackageName");
    d.packageVersion = r.text("PackageVersion");
    return d;
}

ServiceEntry readService(ChildReader& r) {
    ServiceEntry s;
    s.serviceClass = r.text("Class");
    s.serviceName = r.text("Name");
    s.serviceVersion = r.text("Version");
    s.resolutionStatus = r.oneOf("DependenciesResolutionStatus", kResolutionStatuses);
    s.deployedOn = r.text("DeployedOn");
    s.errorDescription = errorText(r);
    ChildReader resolution(r.required("DependenciesResolution"));
    s.resolved = readList(resolution, "ResolvedDependencies", "Dependency", readDependency);
    s.missing = readList(resolution, "MissingDependencies", "Dependency", readDependency);
    resolution.finish();
    return s;
}

PackageEntry readPackage(ChildReader& r) {
    PackageEntry p;
    p.serviceClass = r.text("ServiceClass");
    p.serviceName = r.text("ServiceName");
    p.serviceVersion = r.text("ServiceVersion");
    p.packageName = r.text("PackageName");
    p.packageVersion = r.text("PackageVersion");
    p.status = r.oneOf("Status", kPackageStatuses);
    p.message = r.text("Message");
    return p;
}

std::string readTimestamp(ChildReader& r, std::string_view name, bool emptyAllowed) {
    const Element element = r.required(name);
    std::string value = textOf(element);
    if (!(emptyAllowed && value.empty()) && !isIsoTimestampWithOffset(value)) {
        fail(element.path + " is " + quoted(value) +
             ", expected an ISO 8601 date and time with offset");
    }
    return value;
}

GhnActivity readGhn(ChildReader& r) {
    GhnActivity g;
    g.host = r.text("Host");
    g.id = r.text("ID");
    g.lastReportReceivedOn = readTimestamp(r, "LastReportReceivedOn", true);
    ChildReader nodeReport(r.required("LastReportReceived"));
    g.nodeStatus = nodeReport.oneOf("Status", kReportStatuses);
    g.packages = readList(nodeReport, "Packages", "Package", readPackage);
    nodeReport.finish();
    return g;
}

ResourceEntry readResource(ChildReader& r) {
    ResourceEntry e;
    e.id = r.text("ID");
    e.type = r.text("Type");
    e.status = r.oneOf("Status", kResourceStatuses);
    e.errorDescription = errorText(r);
    return e;
}

[[noreturn]] void tooManyElements(const ReportParseLimits& limits) {
    fail("more than " + std::to_string(limits.maxElements) + " elements");
}

// Rejects what a well-formed, schema-valid report can never contain, before reading it.
void checkEnvelope(std::string_view xml, const ReportParseLimits& limits) {
    if (xml.size() > limits.maxBytes) {
        fail("document is " + std::to_string(xml.size()) + " bytes, the limit is " +
             std::to_string(limits.maxBytes));
    }
    // pugixml silently drops text outside the root element; a strict reader must not.
    std::string_view body = xml;
    if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
    const std::size_t first = body.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) fail("document is empty");
    if (body[first] != '<') fail("text before the root element");
    const std::size_t last = body.find_last_not_of(" \t\r\n");
    if (body[last] != '>') fail("text after the root element");
    // pugixml spends ~64 bytes per node: bound the tree before building it. Each element takes
    // one or two '<', so this only rejects what checkTree would reject later anyway, give or
    // take comments.
    const auto tags = static_cast<std::size_t>(std::count(body.begin(), body.end(), '<'));
    if (tags > 2 * limits.maxElements) tooManyElements(limits);
}

void checkTree(const pugi::xml_document& document, const ReportParseLimits& limits) {
    std::size_t elements = 0;
    std::size_t depth = 0;
    pugi::xml_node node = document.first_child();
    // Iterative walk: a hostile document must not be able to exhaust the stack.
    while (node) {
        if (node.type() == pugi::node_doctype) fail("DOCTYPE is not allowed");
        if (node.type() == pugi::node_element) {
            if (++elements > limits.maxElements) tooManyElements(limits);
            if (depth + 1 > limits.maxDepth) {
                fail("elements nested deeper than " + std::to_string(limits.maxDepth));
            }
        }
        if (node.first_child()) {
            node = node.first_child();
            ++depth;
            continue;
        }
        while (node && !node.next_sibling()) {
            node = node.parent();
            if (depth == 0) return;
            --depth;
        }
        if (node) node = node.next_sibling();
    }
}

pugi::xml_node rootElement(const pugi::xml_document& document) {
    pugi::xml_node root;
    for (pugi::xml_node child : document.children()) {
        if (child.type() != pugi::node_element) continue;
        if (root) fail("more than one root element");
        root = child;
    }
    if (!root) fail("no root element");
    if (kRootName != root.name()) {
        fail("root element is " + tag(root.name()) + ", expected <ResourceReport>");
    }
    checkAttributes(root, std::string(kRootName));
    return root;
}

void checkSessionOutcome(const ResourceReport& report) {
    const bool closed = report.status == "CLOSED";
    if (closed && !report.sessionExitStatus) {
        fail("missing element <SessionExitStatus> in ResourceReport (required when CLOSED)");
    }
    if (!closed && report.sessionExitStatus) {
        fail("ResourceReport/SessionExitStatus given while the session is " + report.status);
    }
}

struct Activity {
    ResourceReport::ActivityKind kind;
    std::vector<GhnActivity> ghns;
};

// The optional DeploymentActivity or UndeploymentActivity element.
std::optional<Activity> readActivity(ChildReader& r) {
    using Kind = ResourceReport::ActivityKind;
    for (const Kind kind : {Kind::Deployment, Kind::Undeployment}) {
        const std::optional<Element> element = r.optional(activityElementName(kind));
        if (!element) continue;
        Activity activity{kind, {}};
        ChildReader list(*element);
        while (auto ghn = list.repeated("GHN")) {
            ChildReader fields(*ghn);
            activity.ghns.push_back(readGhn(fields));
            fields.finish();
        }
        list.finish();
        return activity;
    }
    return std::nullopt;
}

ResourceReport readReport(ChildReader& r) {
    ResourceReport report;
    report.id = r.text("ID");
    report.status = r.oneOf("Status", kReportStatuses);
    report.sessionExitStatus = r.optionalOneOf("SessionExitStatus", kSessionExitStatuses);
    report.operation = r.oneOf("Operation", kOperations);
    report.lastUpdate = readTimestamp(r, "LastUpdate", false);
    report.targetScope = r.text("TargetScope");
    report.services = readList(r, "Services", "Service", readService);
    report.activityKind = activityKindFor(report.operation);
    if (std::optional<Activity> activity = readActivity(r)) {
        report.ghns = std::move(activity->ghns);
        // An activity without GHNs is not rendered, so its kind would not survive a round
        // trip: the operation decides it then, as when the element is absent.
        if (!report.ghns.empty()) report.activityKind = activity->kind;
    }
    report.resources = readList(r, "Resources", "Resource", readResource);
    r.finish();
    checkSessionOutcome(report);
    return report;
}

}  // namespace

std::string renderReportXml(const ResourceReport& report, XmlLayout layout) {
    std::string out;
    out.reserve(estimatedSize(report));
    XmlWriter w(out, layout);
    w.open(kRootName);
    w.text("ID", report.id);
    w.text("Status", report.status);
    if (report.sessionExitStatus) w.text("SessionExitStatus", *report.sessionExitStatus);
    w.text("Operation", report.operation);
    w.text("LastUpdate", report.lastUpdate);
    w.text("TargetScope", report.targetScope);
    writeList(w, "Services", report.services, writeService);
    if (!report.ghns.empty()) {
        const std::string_view activity = activityElementName(report.activityKind);
        w.open(activity);
        for (const GhnActivity& ghn : report.ghns) writeGhn(w, ghn);
        w.close(activity);
    }
    writeList(w, "Resources", report.resources, writeResource);
    w.close(kRootName);
    w.finish();
    return out;
}

ResourceReport parseReportXml(std::string_view xml, const ReportParseLimits& limits) {
    checkEnvelope(xml, limits);
    pugi::xml_document document;
    const unsigned options =
        pugi::parse_default | pugi::parse_doctype | pugi::parse_ws_pcdata_single;
    const pugi::xml_parse_result parsed =
        document.load_buffer(xml.data(), xml.size(), options, pugi::encoding_auto);
    if (!parsed) {
        fail("not well-formed XML at byte " + std::to_string(parsed.offset) + ": " +
             parsed.description());
    }
    checkTree(document, limits);
    ChildReader r(Element{rootElement(document), std::string(kRootName)});

    return readReport(r);
}

}  // namespace rm::reports
