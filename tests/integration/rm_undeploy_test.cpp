// Removal end to end: a real resource-manager driving real node-agents on loopback. Removing a
// service (or one of its RunningInstances, or the whole scope) undeploys it from the node it runs
// on; scheduling honours the packages' requirements; a node lost mid-deployment can hand its
// service to another node (--reschedule-on-lost).
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <map>
#include <optional>

#include "agent_test_helpers.h"
#include "deployer/package_archive.h"
#include "rm_test_helpers.h"

using namespace rm::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

void packSample(const std::string& name, const fs::path& repository) {
    rm::deployer::buildPackage(sourceDir() / "etc" / "packages" / name,
                               repository / (name + ".tar.gz"));
}

// A copy of a sample package with a different profile (requirements, a slow install, ...).
void packVariant(const std::string& sample, const std::string& profile, const fs::path& repository,
                 const fs::path& work) {
    fs::path source = work / ("variant-" + std::to_string(std::hash<std::string>{}(profile)));
    fs::copy(sourceDir() / "etc" / "packages" / sample, source, fs::copy_options::recursive);
    std::ofstream(source / "profile.xml", std::ios::trunc) << profile;
    rm::deployer::buildPackage(source, repository / (source.filename().string() + ".tar.gz"));
}

std::string docsProfile(const std::string& serviceName, const std::string& extra) {
    return "<Package><ServiceClass>Samples</ServiceClass><ServiceName>" + serviceName +
           "</ServiceName><ServiceVersion>1.0.0</ServiceVersion><PackageName>Docs</PackageName>"
           "<PackageVersion>1.0.0</PackageVersion>" +
           extra + "</Package>";
}

// A scope: one RM (its repository filled before it starts) and named agents.
class Scope {
  public:
    Scope(const std::vector<std::string>& samples, std::vector<std::string> rmArgs = {},
          const std::function<void(const fs::path&, const fs::path&)>& extraPackages = {}) {
        rmArgs.insert(rmArgs.end(), {"--heartbeat-interval-ms", "300"});
        rm_ = std::make_unique<RmInstance>(rmArgs);
        for (const auto& s : samples) packSample(s, rm_->repository());
        if (extraPackages) extraPackages(rm_->repository(), rm_->dir());
        rm_->restart();  // indexes the repository at start
        client_ = rm_->client();
    }
    ~Scope() {
        std::vector<fs::path> roots;
        for (const auto& [name, agent] : agents_) roots.push_back(root(name));
        agents_.clear();  // SIGTERM-less: DaemonProcess kills what still runs
        // The agents leave their services running (to adopt them on restart): end them here.
        for (const auto& r : roots) ProcessReaper{r};
    }
    RmInstance& rm() { return *rm_; }
    rm::client::RmClient& client() { return *client_; }

    fs::path root(const std::string& name) { return rm_->dir() / ("agent-" + name); }
    DaemonProcess& agent(const std::string& name) { return *agents_.at(name); }

    // Starts an agent and waits until the RM lists it ALIVE; returns its node ID.
    std::string startAgent(const std::string& name, const std::string& labels = "zone=test") {
        // One token of unlimited uses enrolls every agent; a restarted one keeps its identity.
        if (!token_) token_ = createJoinToken(rm_->url());
        std::vector<std::string> args{"--name",      name,     "--listen",
                                      "127.0.0.1:0", "--root", root(name).string(),
                                      "--labels",    labels};
        auto join = joinArgs(*token_);
        args.insert(args.end(), join.begin(), join.end());
        agents_[name] = std::make_unique<DaemonProcess>("node-agent", args,
                                                        rm_->dir() / ("agent-" + name + ".log"));
        std::string id;
        BOOST_REQUIRE_MESSAGE(waitUntil(
                                  [&] {
                                      for (const auto& n : client_->listNodes()) {
                                          if (n.name == name && n.liveness == "ALIVE") id = n.id;
                                      }
                                      return !id.empty();
                                  },
                                  15s),
                              agents_[name]->log());
        return id;
    }

    rm::reports::ResourceReport run(
        const std::string& operation, std::vector<rm::client::ServiceRequest> services,
        std::vector<std::pair<std::string, std::string>> resources = {}) {
        rm::client::ScopeRequest request;
        request.targetScope = kScope;
        request.services = std::move(services);
        request.resources = std::move(resources);
        std::string id = operation == "add"      ? client_->addResources(request)
                         : operation == "remove" ? client_->removeResources(request)
                                                 : client_->disposeScope(kScope);
        return waitClosed(*client_, id, 60s);
    }

    std::vector<std::string> instances() {
        std::vector<std::string> out;
        for (const auto& r : client_->listResources(std::string("RunningInstance"))) {
            out.push_back(r.id + " " + r.status);
        }
        return out;
    }

  private:
    std::unique_ptr<RmInstance> rm_;
    std::unique_ptr<rm::client::RmClient> client_;
    std::optional<JoinToken> token_;
    std::map<std::string, std::unique_ptr<DaemonProcess>> agents_;
};

rm::client::ServiceRequest service(const std::string& cls, const std::string& name) {
    return {cls, name, {}, {}, {}, {}};
}

std::map<std::string, std::string> packageStates(const rm::reports::ResourceReport& report) {
    std::map<std::string, std::string> out;
    for (const auto& ghn : report.ghns) {
        for (const auto& p : ghn.packages) out[p.packageName] = p.status;
    }
    return out;
}

std::string describe(const rm::reports::ResourceReport& r) {
    std::string out = r.operation + " " + r.status + " " + r.sessionExitStatus.value_or("-");
    for (const auto& s : r.services)
        out += "\n service " + s.serviceName + " on " + s.deployedOn + ": " + s.errorDescription;
    for (const auto& g : r.ghns) {
        for (const auto& p : g.packages)
            out += "\n package " + p.packageName + " " + p.status + " " + p.message;
    }
    for (const auto& x : r.resources)
        out += "\n resource " + x.type + " " + x.id + " " + x.status + " " + x.errorDescription;
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rm_undeploy)

BOOST_AUTO_TEST_CASE(removing_a_service_undeploys_it_from_its_node) {
    Scope scope({"is-notifier-stubs", "is-notifier-service"});
    std::string node = scope.startAgent("node-a");
    auto added = scope.run("add", {service("InformationSystem", "IS-Notifier")});
    BOOST_REQUIRE_MESSAGE(added.sessionExitStatus.value_or("-") == "SUCCESS", describe(added));
    std::string instance = node + ":IS-Notifier.Notifier-service";
    BOOST_TEST(scope.instances() == std::vector<std::string>{instance + " PUBLISHED"},
               boost::test_tools::per_element());
    fs::path container = scope.root("node-a") / "services" / "IS-Notifier" / "Notifier-service";
    BOOST_REQUIRE(fs::exists(container));

    auto removed = scope.run("remove", {service("InformationSystem", "IS-Notifier")});
    BOOST_TEST_MESSAGE(describe(removed));
    BOOST_TEST(removed.sessionExitStatus.value_or("-") == "SUCCESS", describe(removed));
    BOOST_TEST(removed.operation == "RemoveResources");
    BOOST_TEST((removed.activityKind == rm::reports::ResourceReport::ActivityKind::Undeployment));
    BOOST_REQUIRE(removed.services.size() == 1u);
    BOOST_TEST(removed.services[0].deployedOn == node);
    BOOST_REQUIRE(removed.ghns.size() == 1u);
    BOOST_TEST(removed.ghns[0].id == node);
    BOOST_TEST(removed.ghns[0].nodeStatus == "CLOSED");
    BOOST_TEST(!removed.ghns[0].lastReportReceivedOn.empty());
    auto states = packageStates(removed);
    BOOST_TEST(states["Notifier-service"] == "UNDEPLOYED");
    BOOST_TEST(states["Notifier-stubs"] == "UNDEPLOYED");
    BOOST_TEST(scope.instances().empty());
    BOOST_TEST(!fs::exists(container));
    auto xml = scope.client().getReport(removed.id);
    BOOST_TEST(xml.find("<UndeploymentActivity>") != std::string::npos);
    BOOST_TEST(schemaProblems(kXmlDeclaration + xml, scope.rm().dir()) == "");

    // Nothing left to remove: said so, and nothing is sent to the node.
    auto again = scope.run("remove", {service("InformationSystem", "IS-Notifier")});
    BOOST_TEST(again.sessionExitStatus.value_or("-") == "FAILED");
    BOOST_REQUIRE(again.services.size() == 1u);
    BOOST_TEST(again.services[0].errorDescription.find("nothing to undeploy") == 0u,
               describe(again));
    BOOST_TEST(again.ghns.empty());
}

BOOST_AUTO_TEST_CASE(removing_a_running_instance_undeploys_its_package) {
    Scope scope({"is-notifier-stubs", "is-notifier-service"});
    std::string node = scope.startAgent("node-a");
    auto added = scope.run("add", {service("InformationSystem", "IS-Notifier")});
    BOOST_REQUIRE_MESSAGE(added.sessionExitStatus.value_or("-") == "SUCCESS", describe(added));
    std::string instance = node + ":IS-Notifier.Notifier-service";

    auto removed = scope.run("remove", {}, {{"RunningInstance", instance}});
    BOOST_TEST(removed.sessionExitStatus.value_or("-") == "SUCCESS", describe(removed));
    BOOST_REQUIRE(removed.resources.size() == 1u);
    BOOST_TEST(removed.resources[0].status == "REMOVED");
    BOOST_TEST(packageStates(removed) ==
               (std::map<std::string, std::string>{{"Notifier-service", "UNDEPLOYED"}}));
    BOOST_TEST(scope.instances().empty());
    // Only the instance's package went; the library stays deployed.
    BOOST_TEST(!fs::exists(scope.root("node-a") / "services" / "IS-Notifier" / "Notifier-service"));
    BOOST_TEST(fs::exists(scope.root("node-a") / "services" / "IS-Notifier" / "Notifier-stubs"));
}

BOOST_AUTO_TEST_CASE(shared_library_is_kept_and_dispose_removes_everything) {
    Scope scope({"is-notifier-stubs", "is-notifier-service", "is-notifier-client", "static-docs"});
    std::string node = scope.startAgent("node-a");
    auto added = scope.run("add", {service("InformationSystem", "IS-Notifier"),
                                   service("InformationSystem", "IS-Notifier-Client"),
                                   service("Samples", "Static-Docs")});
    BOOST_REQUIRE_MESSAGE(added.sessionExitStatus.value_or("-") == "SUCCESS", describe(added));
    BOOST_TEST(scope.run("add", {}, {{"Collection", "c1"}}).sessionExitStatus.value_or("-") ==
               "SUCCESS");

    // Notifier-stubs is still needed by Notifier-client: the node keeps it (NOTUNDEPLOYABLE),
    // which is the correct outcome of the removal.
    auto removed = scope.run("remove", {service("InformationSystem", "IS-Notifier")});
    auto states = packageStates(removed);
    BOOST_TEST(states["Notifier-service"] == "UNDEPLOYED", describe(removed));
    BOOST_TEST(states["Notifier-stubs"] == "NOTUNDEPLOYABLE", describe(removed));
    BOOST_TEST(removed.sessionExitStatus.value_or("-") == "SUCCESS", describe(removed));
    BOOST_TEST(fs::exists(scope.root("node-a") / "services" / "IS-Notifier" / "Notifier-stubs"));

    auto disposed = scope.run("dispose", {});
    BOOST_TEST(disposed.sessionExitStatus.value_or("-") == "SUCCESS", describe(disposed));
    BOOST_TEST((disposed.activityKind == rm::reports::ResourceReport::ActivityKind::Undeployment));
    states = packageStates(disposed);
    for (const char* p : {"Notifier-stubs", "Notifier-client", "Docs"}) {
        BOOST_TEST(states[p] == "UNDEPLOYED", p << ": " << describe(disposed));
    }
    BOOST_TEST(scope.client().listResources().empty());
    BOOST_TEST(!fs::exists(scope.root("node-a") / "services" / "IS-Notifier" / "Notifier-stubs"));
    BOOST_TEST(!fs::exists(scope.root("node-a") / "services" / "Static-Docs" / "Docs"));
}

BOOST_AUTO_TEST_CASE(scheduling_honours_package_requirements) {
    Scope scope({}, {}, [](const fs::path& repository, const fs::path& work) {
        packVariant(
            "static-docs",
            docsProfile("Docs-EU", "<Requirements><Label key=\"zone\">eu</Label></Requirements>"),
            repository, work);
        packVariant("static-docs",
                    docsProfile("Docs-Asia",
                                "<Requirements><Label key=\"zone\">asia</Label></Requirements>"),
                    repository, work);
        packVariant("static-docs",
                    docsProfile("Docs-Huge",
                                "<Requirements><MinDiskMB>900000000</MinDiskMB></Requirements>"),
                    repository, work);
    });
    scope.startAgent("node-us", "zone=us");
    std::string eu = scope.startAgent("node-eu", "zone=eu");
    auto placed = scope.run("add", {service("Samples", "Docs-EU")});
    BOOST_TEST(placed.sessionExitStatus.value_or("-") == "SUCCESS", describe(placed));
    BOOST_REQUIRE(placed.services.size() == 1u);
    BOOST_TEST(placed.services[0].deployedOn == eu);

    auto nowhere = scope.run("add", {service("Samples", "Docs-Asia")});
    BOOST_TEST(nowhere.sessionExitStatus.value_or("-") == "FAILED");
    const auto& error = nowhere.services.at(0).errorDescription;
    BOOST_TEST(error.find("no suitable gHN") == 0u, error);
    BOOST_TEST(error.find("node-us lacks label zone=asia (it has zone=us)") != std::string::npos,
               error);
    BOOST_TEST(error.find("node-eu lacks label zone=asia (it has zone=eu)") != std::string::npos,
               error);
    BOOST_TEST(nowhere.services.at(0).deployedOn == "not deployed");

    auto huge = scope.run("add", {service("Samples", "Docs-Huge")});
    BOOST_TEST(huge.sessionExitStatus.value_or("-") == "FAILED");
    BOOST_TEST(
        huge.services.at(0).errorDescription.find("MinDiskMB 900000000") != std::string::npos,
        huge.services.at(0).errorDescription);

    // An explicit target that does not qualify is refused rather than ignored.
    rm::client::ServiceRequest pinned = service("Samples", "Docs-EU");
    pinned.targetNode = "node-us";
    auto refused = scope.run("add", {pinned});
    BOOST_TEST(refused.sessionExitStatus.value_or("-") == "FAILED");
    BOOST_TEST(refused.services.at(0).errorDescription ==
               "no suitable gHN: target node node-us does not meet the requirement label zone=eu "
               "(it has zone=us)");
}

BOOST_AUTO_TEST_CASE(a_node_lost_mid_deployment_hands_its_service_to_another) {
    Scope scope(
        {}, {"--reschedule-on-lost", "true", "--node-lost-after-ms", "1500"},
        [](const fs::path& repository, const fs::path& work) {
            // Slow enough to kill the node before it closes its report.
            packVariant(
                "static-docs",
                docsProfile("Slow-Docs",
                            "<Lifecycle><Install timeout=\"60\">sleep 3</Install></Lifecycle>"),
                repository, work);
        });
    std::string a = scope.startAgent("node-a");
    std::string b = scope.startAgent("node-b");
    rm::client::ScopeRequest request;
    request.targetScope = kScope;
    request.services = {service("Samples", "Slow-Docs")};
    std::string id = scope.client().addResources(request);
    // Whichever node got it dies before finishing.
    std::string first;
    BOOST_REQUIRE(waitUntil(
        [&] {
            auto r = rm::reports::parseReportXml(scope.client().getReport(id));
            if (!r.services.empty() && r.services[0].deployedOn != "not deployed")
                first = r.services[0].deployedOn;
            return !first.empty();
        },
        10s));
    scope.agent(first == a ? "node-a" : "node-b").kill9();
    auto report = waitClosed(scope.client(), id, 60s);
    BOOST_TEST(report.sessionExitStatus.value_or("-") == "SUCCESS", describe(report));
    BOOST_REQUIRE(report.services.size() == 1u);
    std::string second = first == a ? b : a;
    BOOST_TEST(report.services[0].deployedOn == second);
    // Both nodes appear: the lost one with what it never finished, the other with ACTIVATED.
    BOOST_TEST(report.ghns.size() == 2u, describe(report));
    for (const auto& ghn : report.ghns) {
        if (ghn.id == second) BOOST_TEST(ghn.packages.at(0).status == "ACTIVATED");
        if (ghn.id == first)
            BOOST_TEST(ghn.packages.at(0).message.find("rescheduled") != std::string::npos);
    }
}

// The RM keeps calling a node at the address it registered last, not the one it had when the
// call was planned: an agent that comes back on another port still gets its Deploy.
BOOST_AUTO_TEST_CASE(a_deploy_follows_an_agent_that_came_back_on_another_port) {
    Scope scope({"is-notifier-stubs", "is-notifier-service"});
    scope.startAgent("node-a");
    const std::string oldUrl = scope.agent("node-a").url();
    scope.agent("node-a").kill9();  // still ALIVE for the RM until its heartbeats are missed

    rm::client::ScopeRequest request;
    request.targetScope = kScope;
    request.services = {service("InformationSystem", "IS-Notifier")};
    std::string id = scope.client().addResources(request);
    BOOST_REQUIRE_MESSAGE(waitUntil(
                              [&] {
                                  return readText(scope.rm().logFile())
                                             .find("event=deploy_not_acknowledged") !=
                                         std::string::npos;
                              },
                              15s),
                          "the RM never tried the dead agent");

    scope.startAgent("node-a");  // port 0: somewhere else this time
    BOOST_TEST(scope.agent("node-a").url() != oldUrl);
    auto report = waitClosed(scope.client(), id, 60s);
    BOOST_TEST(report.sessionExitStatus.value_or("-") == "SUCCESS", describe(report));
}

BOOST_AUTO_TEST_SUITE_END()
