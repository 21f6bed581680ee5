// The browser views, looked at by a real browser: headless Chromium loads the pages from a
// running RM, the test checks what it rendered (the DOM after parsing) and keeps screenshots in
// build/tests/screenshots for a person to look at.
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/rm_client.h"
#include "daemon_process.h"
#include "reports/report_xml.h"

namespace {

using rm::testing::DaemonProcess;
using rm::testing::TempDir;

std::string chromium() {
    for (const char* candidate : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
        if (std::ifstream(candidate)) return candidate;
    }
    return {};
}

// Runs headless Chromium with a fresh profile; returns what it printed on stdout.
std::string runChromium(const std::string& args, const TempDir& dir) {
    std::string command = chromium() +
                          " --headless --no-sandbox --disable-gpu --disable-background-networking "
                          "--disable-component-update --disable-sync --disable-quic --no-first-run "
                          "--user-data-dir=" + (dir.path() / "profile").string() + " " + args + " 2>/dev/null";
    std::string output;
    FILE* pipe = ::popen(command.c_str(), "r");
    BOOST_REQUIRE_MESSAGE(pipe, "cannot run " + command);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
    ::pclose(pipe);
    return output;
}

std::filesystem::path screenshotDir() {
    auto dir = rm::testing::binDir().parent_path() / "tests" / "screenshots";
    std::filesystem::create_directories(dir);
    return dir;
}

std::string waitClosed(rm::client::RmClient& client, const std::string& id) {
    for (int i = 0; i < 200; ++i) {
        std::string xml = client.getReport(id);
        if (rm::reports::parseReportXml(xml).status == "CLOSED") return xml;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    BOOST_FAIL("report " + id + " did not close");
    return {};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(browser_views)

BOOST_AUTO_TEST_CASE(report_and_scope_pages_render_in_chromium) {
    if (chromium().empty()) {
        BOOST_FAIL("chromium is not installed (scripts/setup.sh installs it)");
    }
    TempDir dir("rm-browser");
    std::filesystem::create_directories(dir.path() / "repo");
    DaemonProcess rm("resource-manager",
                     {"--scope", "/gcube/devsec", "--listen", "127.0.0.1:0", "--state-dir",
                      (dir.path() / "state").string(), "--repository",
                      (rm::testing::binDir().parent_path() / "repository").string(),
                      "--agent-listen", "127.0.0.1:0"},
                     dir.path() / "rm.log");
    rm::client::RmClient client({rm.url()});
    rm::client::ScopeRequest request;
    request.targetScope = "/gcube/devsec";
    request.resources = {{"GenericResource", "f2c04460-b446-11dd"}, {"Collection", "<script>alert(1)</script>"}};
    // The second ID is refused as a whole request: hostile text must never reach a page.
    BOOST_CHECK_THROW(client.addResources(request), rm::client::ClientError);
    request.resources = {{"GenericResource", "f2c04460-b446-11dd"}, {"GHN", "not-a-node"}};
    request.services = {{"Samples", "Missing-Dep", {}, {}, {}, {}}};
    std::string id = client.addResources(request);
    waitClosed(client, id);

    std::string dom = runChromium("--dump-dom " + rm.url() + "/reports/" + id, dir);
    BOOST_TEST(dom.find(id) != std::string::npos);
    BOOST_TEST(dom.find("FAILED") != std::string::npos);
    BOOST_TEST(dom.find("Missing-Dep") != std::string::npos);
    BOOST_TEST(dom.find("Ghost-lib") != std::string::npos);
    BOOST_TEST(dom.find("not-a-node") != std::string::npos);
    BOOST_TEST(dom.find("/reports/" + id + ".xml") != std::string::npos);
    // CLOSED: the page no longer refreshes itself.
    BOOST_TEST(dom.find("http-equiv=\"refresh\"") == std::string::npos);

    std::string scope = runChromium("--dump-dom " + rm.url() + "/", dir);
    BOOST_TEST(scope.find("/gcube/devsec") != std::string::npos);
    BOOST_TEST(scope.find(id) != std::string::npos);
    BOOST_TEST(scope.find("f2c04460-b446-11dd") != std::string::npos);

    auto shots = screenshotDir();
    runChromium("--window-size=1280,1400 --screenshot=" + (shots / "report.png").string() + " " + rm.url() +
                    "/reports/" + id,
                dir);
    runChromium("--window-size=1280,900 --screenshot=" + (shots / "scope.png").string() + " " + rm.url() + "/", dir);
    BOOST_TEST(std::filesystem::file_size(shots / "report.png") > 10000u);
    BOOST_TEST(std::filesystem::file_size(shots / "scope.png") > 10000u);
}

BOOST_AUTO_TEST_SUITE_END()
