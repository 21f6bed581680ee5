// Hostile input on the SOAP endpoint (SPEC section 10): every request below must get an HTTP
// error carrying a SOAP Fault (a closed connection is acceptable only for an oversized body),
// change nothing a caller can see, and leave the daemon serving.
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <random>

#include "rm_test_helpers.h"

using namespace rm::testing;

namespace {

// A scope with one finished session in it, so "nothing changed" compares real content.
struct HostileFixture {
    RmInstance rm{{"--max-message-bytes", "1048576", "--io-timeout-ms", "2000"}};
    ScopeSnapshot before;
    HostileFixture() {
        auto client = rm.client();
        waitClosed(*client,
                   client->addResources(plainRequest({{"GenericResource", "baseline-1"}})));
        before = snapshot(rm);
        BOOST_REQUIRE(before.reportIds.size() == 1u);
        BOOST_REQUIRE(before.resources.size() == 1u);
    }

    // The daemon is alive, still answers SOAP and nothing changed.
    void expectUnchanged() {
        BOOST_TEST(rm.daemon().running());
        BOOST_TEST(snapshot(rm) == before);
    }

    RawResult expectFault(const std::string& request, bool closeAllowed = false) {
        auto started = std::chrono::steady_clock::now();
        auto result = rawExchange(rm.url(), request);
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started);
        BOOST_TEST_MESSAGE("answer " << result.status << " after " << took.count() << " ms, "
                                     << result.response.size() << " bytes");
        if (closeAllowed && result.status == 0) {
            BOOST_TEST(result.response.empty());
        } else {
            BOOST_TEST(result.status >= 400);
            BOOST_TEST(result.status < 600);
            BOOST_TEST(result.body().find(":Fault>") != std::string::npos,
                       "no SOAP Fault in: " << result.body().substr(0, 300));
            BOOST_TEST(result.body().find("<faultstring>") != std::string::npos);
        }
        expectUnchanged();
        return result;
    }
};

std::string firstLineOf(const std::string& file) {
    std::string text = readText(file);
    return text.substr(0, text.find('\n'));
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(rm_hostile_input, HostileFixture)

BOOST_AUTO_TEST_CASE(garbage_bytes) {
    std::mt19937 rng(20261124);
    std::string garbage(4096, '\0');
    for (auto& c : garbage) c = static_cast<char>(rng() & 0xff);
    expectFault(httpPost(rm.url(), garbage));
    expectFault(httpPost(rm.url(), "this is not XML at all"));
    expectFault(httpPost(rm.url(), "<a><b></a></b>"));
    expectFault(httpPost(rm.url(), ""));
}

BOOST_AUTO_TEST_CASE(wrong_namespace) {
    std::string body = envelope(addResourcesBody({{"GenericResource", "wrong-ns"}}));
    std::string wrong = body;
    wrong.replace(wrong.find("urn:scope-rm:2026"), 17, "urn:scope-rm:1999");
    auto r = expectFault(httpPost(rm.url(), wrong));
    BOOST_TEST(r.body().find("SOAP-ENV:Client") != std::string::npos);
    // Unqualified operation element.
    std::string unqualified = envelope(
        "<AddResources><resources><resource><ID>u1</ID><Type>GenericResource</Type>"
        "</resource></resources><targetScope>" +
        kScope + "</targetScope></AddResources>");
    expectFault(httpPost(rm.url(), unqualified));
    // Wrong SOAP envelope namespace.
    std::string badEnvelope = body;
    badEnvelope.replace(badEnvelope.find("http://schemas.xmlsoap.org/soap/envelope/"), 41,
                        "http://example.org/not/a/soap/envelope/");
    expectFault(httpPost(rm.url(), badEnvelope));
    // The same request in the right namespace is accepted (the test above is not vacuous).
    auto ok = rawExchange(rm.url(), httpPost(rm.url(), body));
    BOOST_TEST(ok.status == 200);
    BOOST_TEST(ok.body().find("<reportID>") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(malformed_request_with_connection_close_gets_a_fault) {
    // HTTP/1.0-style clients and many scripts send "Connection: close"; a malformed request
    // from them deserves the same fault, not a silently closed connection.
    const std::string close = "Connection: close\r\n";
    expectFault(httpPost(rm.url(), envelope(addResourcesBody({{"GenericResource", "x"}}, "/wrong")),
                         "text/xml", close));
    expectFault(httpPost(rm.url(), "<a><b></a></b>", "text/xml", close));
    std::string badEnvelope = envelope("<rm:ListNodes/>");
    badEnvelope.replace(badEnvelope.find("http://schemas.xmlsoap.org/soap/envelope/"), 41,
                        "http://example.org/not/a/soap/envelope/");
    expectFault(httpPost(rm.url(), badEnvelope, "text/xml", close));
}

BOOST_AUTO_TEST_CASE(missing_target_scope) {
    std::string body =
        "<rm:AddResources><resources><resource><ID>no-scope</ID><Type>GenericResource</Type>"
        "</resource></resources></rm:AddResources>";
    expectFault(httpPost(rm.url(), envelope(body)));
    expectFault(httpPost(rm.url(), envelope("<rm:DisposeScope/>")));
    auto r =
        expectFault(httpPost(rm.url(), envelope(addResourcesBody({{"GenericResource", "x"}}, ""))));
    BOOST_TEST(r.body().find("InvalidScopeFault") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(oversized_body) {
    // 2 MiB against --max-message-bytes 1 MiB: refused or cut off, never processed.
    std::string id(2u << 20, 'a');
    expectFault(httpPost(rm.url(), envelope(addResourcesBody({{"GenericResource", id}}))), true);
    // Chunked, so no Content-Length announces the size up front.
    std::string body = envelope(addResourcesBody({{"GenericResource", id}}));
    Poco::URI uri(rm.url());
    std::string chunked = "POST / HTTP/1.1\r\nHost: " + uri.getHost() +
                          "\r\nContent-Type: text/xml\r\n"
                          "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    for (size_t at = 0; at < body.size(); at += 65536) {
        std::string part = body.substr(at, 65536);
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", part.size());
        chunked += size + part + "\r\n";
    }
    chunked += "0\r\n\r\n";
    expectFault(chunked, true);
}

BOOST_AUTO_TEST_CASE(deep_nesting) {
    std::string deep;
    for (int i = 0; i < 10000; ++i) deep += "<resources>";
    for (int i = 0; i < 10000; ++i) deep += "</resources>";
    expectFault(httpPost(rm.url(), envelope("<rm:AddResources>" + deep + "<targetScope>" + kScope +
                                            "</targetScope></rm:AddResources>")));
    std::string unknown;
    for (int i = 0; i < 10000; ++i) unknown += "<x>";
    expectFault(httpPost(rm.url(), envelope(unknown)));  // never closed, too
}

BOOST_AUTO_TEST_CASE(billion_laughs_is_not_expanded) {
    std::string dtd =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE SOAP-ENV:Envelope [\n<!ENTITY lol \"lol\">\n";
    dtd += "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n";
    for (int i = 2; i <= 9; ++i) {
        dtd += "<!ENTITY lol" + std::to_string(i) + " \"";
        for (int j = 0; j < 10; ++j) dtd += "&lol" + std::to_string(i - 1) + ";";
        dtd += "\">\n";
    }
    dtd += "]>\n";
    auto started = std::chrono::steady_clock::now();
    auto r = expectFault(
        httpPost(rm.url(), envelope(addResourcesBody({{"GenericResource", "&lol9;"}}), dtd)));
    BOOST_TEST(elapsedMs(started) < 5000);
    BOOST_TEST(r.response.size() < 8192u);
    BOOST_TEST(r.response.find("lollol") == std::string::npos);
    // Also where a string is not otherwise validated: the scope.
    auto s = expectFault(httpPost(
        rm.url(), envelope(addResourcesBody({{"GenericResource", "ok-id"}}, "&lol9;"), dtd)));
    BOOST_TEST(s.response.find("lollol") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(external_entity_is_not_resolved) {
    const std::string secret = firstLineOf("/etc/passwd");
    BOOST_REQUIRE(!secret.empty());
    const std::string marker = secret.substr(0, secret.find(':') + 3);  // e.g. "root:x:"
    std::string dtd =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE SOAP-ENV:Envelope [<!ENTITY xxe SYSTEM "
        "\"file:///etc/passwd\">]>\n";
    std::vector<RawResult> answers;
    answers.push_back(expectFault(
        httpPost(rm.url(), envelope(addResourcesBody({{"GenericResource", "&xxe;"}}), dtd))));
    answers.push_back(expectFault(
        httpPost(rm.url(), envelope(addResourcesBody({{"GenericResource", "x"}}, "&xxe;"), dtd))));
    answers.push_back(expectFault(httpPost(
        rm.url(), envelope("<rm:GetReport><reportID>&xxe;</reportID></rm:GetReport>", dtd))));
    for (const auto& a : answers) {
        BOOST_TEST(a.response.find(marker) == std::string::npos);
        BOOST_TEST(a.response.find(secret) == std::string::npos);
    }
    for (const std::string path : {"/", "/resources", "/metrics"}) {
        BOOST_TEST(httpRequest(rm.url(), "GET", path).body.find(marker) == std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(document_type_declaration_is_refused) {
    // SOAP 1.1 section 3 and WS-I BP R1008: a SOAP message MUST NOT contain a DTD. A request that
    // is otherwise valid and references no entity must still be refused, not processed.
    std::string dtd =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE SOAP-ENV:Envelope [<!ENTITY unused \"x\">]>\n";
    expectFault(
        httpPost(rm.url(), envelope(addResourcesBody({{"GenericResource", "with-dtd"}}), dtd)));
}

BOOST_AUTO_TEST_CASE(truncated_body) {
    std::string body = envelope(addResourcesBody({{"GenericResource", "truncated"}}));
    std::string cut = body.substr(0, body.size() / 2);
    auto started = std::chrono::steady_clock::now();
    // The declared length matches what is sent: the XML itself ends early.
    expectFault(httpPost(rm.url(), cut));
    auto took = elapsedMs(started);
    BOOST_TEST(took < 1500, "the server waited for bytes the request said would not come");
}

BOOST_AUTO_TEST_CASE(huge_header_line) {
    std::string body = envelope(addResourcesBody({{"GenericResource", "big-header"}}));
    expectFault(
        httpPost(rm.url(), body, "text/xml", "X-Padding: " + std::string(200000, 'h') + "\r\n"),
        true);
    expectFault(httpPost(rm.url(), body, "text/xml",
                         "SOAPAction: \"" + std::string(100000, 's') + "\"\r\n"),
                true);
}

BOOST_AUTO_TEST_CASE(stalled_connections_are_dropped_and_others_served) {
    // Half a request, then silence: each must be dropped after the io timeout (2 s), and other
    // clients must be served meanwhile.
    std::string body = envelope(addResourcesBody({{"GenericResource", "stalled"}}));
    std::string half = httpPost(rm.url(), body).substr(0, 150);
    Poco::URI uri(rm.url());
    std::vector<std::unique_ptr<Poco::Net::StreamSocket>> stalled;
    for (int i = 0; i < 8; ++i) {
        auto s = std::make_unique<Poco::Net::StreamSocket>(
            Poco::Net::SocketAddress(uri.getHost(), uri.getPort()));
        s->sendBytes(half.data(), static_cast<int>(half.size()));
        stalled.push_back(std::move(s));
    }
    auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        BOOST_TEST(httpRequest(rm.url(), "GET", "/healthz").status == 200);
        auto client = rm.client();
        BOOST_TEST(client->listResources().size() == 1u);
        BOOST_TEST(elapsedMs(t0) < 1000);
    }
    for (auto& s : stalled) {
        s->setReceiveTimeout(Poco::Timespan(8, 0));
        char buf[4096];
        int n = -1;
        try {
            n = s->receiveBytes(buf, sizeof buf);
            while (n > 0)
                n = s->receiveBytes(buf, sizeof buf);  // an error answer is fine; then EOF
        } catch (const Poco::TimeoutException&) {
            BOOST_ERROR("a stalled connection was still open 8 s later");
        } catch (const Poco::Exception&) {
            n = 0;  // reset: dropped
        }
        BOOST_TEST(n == 0);
    }
    auto took = elapsedMs(started);
    BOOST_TEST(took < 6000);
    BOOST_TEST(took > 1500, "dropped before the io timeout");
    expectUnchanged();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rm_hostile_input_default_limits)

BOOST_AUTO_TEST_CASE(hundred_thousand_resources) {
    RmInstance rm;  // default limits: 8 MiB, maxItems 10000, maxoccurs 100000
    auto client = rm.client();
    waitClosed(*client, client->addResources(plainRequest({{"GenericResource", "baseline-1"}})));
    auto before = snapshot(rm);
    std::vector<std::pair<std::string, std::string>> many;
    for (int i = 0; i < 100000; ++i) many.emplace_back("GenericResource", "r" + std::to_string(i));
    auto r = rawExchange(rm.url(), httpPost(rm.url(), envelope(addResourcesBody(many))));
    BOOST_TEST(r.status >= 400);
    BOOST_TEST(r.status < 600);
    BOOST_TEST(r.body().find(":Fault>") != std::string::npos);
    BOOST_TEST_MESSAGE(
        "10^5 resources: " << r.body().substr(r.body().find("<faultstring>")).substr(0, 120));
    // Just over maxItems: a typed InvalidRequestFault saying so.
    many.resize(10001);
    BOOST_TEST(faultOf([&] { client->addResources(plainRequest(many)); }) == "InvalidRequestFault");
    BOOST_TEST(rm.daemon().running());
    BOOST_TEST(snapshot(rm) == before);
}

BOOST_AUTO_TEST_SUITE_END()
