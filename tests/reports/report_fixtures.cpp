#include "tests/reports/report_fixtures.h"

namespace rm::reports::testing {
namespace {

Dependency dependency(std::string packageName, std::string packageVersion) {
    return {"InformationSystem", "IS-Notifier", "1.00.00", std::move(packageName),
            std::move(packageVersion)};
}

PackageEntry package(std::string name, std::string status, std::string message = {}) {
    return {"InformationSystem", "IS-Notifier",     "1.00.00",         std::move(name),
            "1.01.00",           std::move(status), std::move(message)};
}

ServiceEntry notifierService(std::string deployedOn) {
    ServiceEntry s{"InformationSystem",
                   "IS-Notifier",
                   "1.00.00",
                   "SUCCESS",
                   std::move(deployedOn),
                   "",
                   {},
                   {}};
    s.resolved = {dependency("Notifier-service", "1.01.00"),
                  dependency("Notifier-stubs", "1.00.01")};
    return s;
}

ResourceReport baseReport(std::string status, std::optional<std::string> exitStatus) {
    ResourceReport r;
    r.id = "4522f7c0-a54c-11dd-8525-e7e836b0fdde";
    r.status = std::move(status);
    r.sessionExitStatus = std::move(exitStatus);
    r.operation = "AddResources";
    r.lastUpdate = "2008-10-29T00:58:17+01:00";
    r.targetScope = "/gcube/devsec";
    return r;
}

}  // namespace

const char* const kSpecSampleXml = R"xml(<ResourceReport>
  <ID>4522f7c0-a54c-11dd-8525-e7e836b0fdde</ID>
  <Status>CLOSED</Status>
  <SessionExitStatus>SUCCESS</SessionExitStatus>
  <Operation>AddResources</Operation>
  <LastUpdate>2008-10-29T00:58:17+01:00</LastUpdate>
  <TargetScope>/gcube/devsec</TargetScope>
  <Services>
    <Service>
      <Class>InformationSystem</Class><Name>IS-Notifier</Name><Version>1.00.00</Version>
      <DependenciesResolutionStatus>SUCCESS</DependenciesResolutionStatus>
      <DeployedOn>9bf172d0-a30c-11dd-88bf-83f7edc13611</DeployedOn>
      <ErrorDescription>-</ErrorDescription>
      <DependenciesResolution>
        <ResolvedDependencies>
          <Dependency><ServiceClass/><ServiceName/><ServiceVersion/><PackageName/><PackageVersion/></Dependency>
        </ResolvedDependencies>
        <MissingDependencies/>
      </DependenciesResolution>
    </Service>
  </Services>
  <DeploymentActivity>            <!-- UndeploymentActivity for RemoveResources -->
    <GHN>
      <Host>node1.example.org:9001</Host><ID>9bf172d0-a30c-11dd-88bf-83f7edc13611</ID>
      <LastReportReceivedOn>2008-10-29T00:58:16+01:00</LastReportReceivedOn>
      <LastReportReceived>
        <Status>CLOSED</Status>
        <Packages>
          <Package><ServiceClass/><ServiceName/><ServiceVersion/><PackageName/><PackageVersion/>
                   <Status>RUNNING</Status><Message/></Package>
        </Packages>
      </LastReportReceived>
    </GHN>
  </DeploymentActivity>
  <Resources>
    <Resource><ID/><Type>GenericResource</Type><Status>ADDED</Status><ErrorDescription>-</ErrorDescription></Resource>
  </Resources>
</ResourceReport>
)xml";

ResourceReport specSampleReport() {
    ResourceReport r = baseReport("CLOSED", "SUCCESS");
    ServiceEntry service{"InformationSystem",
                         "IS-Notifier",
                         "1.00.00",
                         "SUCCESS",
                         "9bf172d0-a30c-11dd-88bf-83f7edc13611",
                         "",
                         {},
                         {}};
    service.resolved = {Dependency{}};
    r.services = {service};
    GhnActivity ghn{"node1.example.org:9001",
                    "9bf172d0-a30c-11dd-88bf-83f7edc13611",
                    "2008-10-29T00:58:16+01:00",
                    "CLOSED",
                    {}};
    ghn.packages = {PackageEntry{"", "", "", "", "", "RUNNING", ""}};
    r.ghns = {ghn};
    r.resources = {ResourceEntry{"", "GenericResource", "ADDED", ""}};
    return r;
}

ResourceReport openReport() {
    ResourceReport r = baseReport("OPEN", std::nullopt);
    r.services = {notifierService("node-1")};
    GhnActivity reported{
        "node1.example.org:9001", "node-1", "2008-10-29T00:58:16+01:00", "OPEN", {}};
    reported.packages = {package("Notifier-stubs", "ACTIVATED"),
                         package("Notifier-service", "DEPLOYED"),
                         package("Notifier-docs", "WAITING")};
    GhnActivity silent{"node2.example.org:9001", "node-2", "", "OPEN", {}};
    silent.packages = {package("Notifier-service", "WAITING", "no report received yet")};
    r.ghns = {reported, silent};
    r.resources = {{"83080450-a235-11dd-8a29-b025e02401d5", "RunningInstance", "ADDED", ""},
                   {"f2c04460-b446-11dd-8aab-e7a1e3fdae89", "GenericResource", "WAITING", ""}};
    return r;
}

ResourceReport closedSuccessReport() {
    ResourceReport r = baseReport("CLOSED", "SUCCESS");
    r.services = {notifierService("node-1")};
    GhnActivity ghn{"node1.example.org:9001", "node-1", "2008-10-29T00:58:16+01:00", "CLOSED", {}};
    ghn.packages = {package("Notifier-stubs", "ALREADYDEPLOYED"),
                    package("Notifier-service", "RUNNING")};
    r.ghns = {ghn};
    r.resources = {{"61927680-a996-11dd-961c-8eba14a244c3", "MetadataCollection", "ADDED", ""}};
    return r;
}

ResourceReport closedFailedReport() {
    ResourceReport r = baseReport("CLOSED", "FAILED");
    ServiceEntry broken{"Search",
                        "Indexer",
                        "2.0.0",
                        "FAILED",
                        std::string(kNotDeployed),
                        "missing dependencies: Search/Lexicon lexicon-core [1.0,2.0)",
                        {},
                        {}};
    broken.missing = {{"Search", "Lexicon", "", "lexicon-core", "[1.0,2.0)"}};
    r.services = {notifierService("node-1"), broken};
    GhnActivity ghn{"node1.example.org:9001", "node-1", "2008-10-29T00:58:16Z", "CLOSED", {}};
    ghn.packages = {package("Notifier-stubs", "FAILED", "sha-256 mismatch"),
                    package("Notifier-service", "SKIPPED", "depends on Notifier-stubs (FAILED)")};
    r.ghns = {ghn};
    r.resources = {{"9bf172d0-0000", "GHN", "FAILED", "node is not registered with this RM"}};
    return r;
}

ResourceReport undeploymentReport() {
    ResourceReport r = baseReport("CLOSED", "SUCCESS");
    r.operation = "RemoveResources";
    r.activityKind = ResourceReport::ActivityKind::Undeployment;
    r.services = {notifierService("node-1")};
    GhnActivity ghn{"node1.example.org:9001", "node-1", "2008-10-29T01:10:00-05:30", "CLOSED", {}};
    ghn.packages = {package("Notifier-service", "UNDEPLOYED"),
                    package("Notifier-stubs", "NOTUNDEPLOYABLE", "still needed by IS-Collector")};
    r.ghns = {ghn};
    r.resources = {{"61927680-a996-11dd-961c-8eba14a244c3", "MetadataCollection", "REMOVED", ""}};
    return r;
}

ResourceReport largeReport(std::size_t services, std::size_t packagesPerService) {
    constexpr std::size_t kNodes = 10;
    ResourceReport r = baseReport("OPEN", std::nullopt);
    for (std::size_t n = 0; n < kNodes; ++n) {
        const std::string id = "node-" + std::to_string(n);
        r.ghns.push_back({id + ".example.org:9001", id, "2008-10-29T00:58:16+01:00", "OPEN", {}});
    }
    for (std::size_t s = 0; s < services; ++s) {
        const std::string name = "Service-" + std::to_string(s);
        GhnActivity& ghn = r.ghns[s % kNodes];
        ServiceEntry service{"Class-" + std::to_string(s % 7),
                             name,
                             "1.0." + std::to_string(s),
                             "SUCCESS",
                             ghn.id,
                             "",
                             {},
                             {}};
        for (std::size_t p = 0; p < packagesPerService; ++p) {
            const std::string packageName = name + "-package-" + std::to_string(p);
            service.resolved.push_back(
                {service.serviceClass, name, service.serviceVersion, packageName, "1.2.3"});
            ghn.packages.push_back({service.serviceClass, name, service.serviceVersion, packageName,
                                    "1.2.3", p % 2 ? "RUNNING" : "WAITING",
                                    "step " + std::to_string(p) + " of the lifecycle & more"});
        }
        r.services.push_back(std::move(service));
    }
    return r;
}

std::string compactXml(std::string xml) {
    // Hand-written rather than std::regex: GCC 12 reports false maybe-uninitialized warnings in
    // <regex> under -fsanitize, and -Werror turns them into errors.
    for (std::size_t start = xml.find("<!--"); start != std::string::npos;
         start = xml.find("<!--", start)) {
        const std::size_t end = xml.find("-->", start);
        xml.erase(start, end == std::string::npos ? std::string::npos : end + 3 - start);
    }
    const auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    std::string out;
    out.reserve(xml.size());
    for (std::size_t i = 0; i < xml.size(); ++i) {
        if (isSpace(xml[i])) {
            std::size_t next = i;
            while (next < xml.size() && isSpace(xml[next])) ++next;
            const bool betweenTags =
                (out.empty() || out.back() == '>') && (next == xml.size() || xml[next] == '<');
            if (betweenTags) {
                i = next - 1;
                continue;
            }
        }
        out += xml[i];
    }
    return out;
}

}  // namespace rm::reports::testing
