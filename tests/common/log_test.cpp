// Log lines (SPEC section 10): every value has its control characters escaped, so one event is
// always exactly one line that splits unambiguously into key=value pairs.
#include "common/log.h"

#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>

using rm::common::escapeLogValue;

namespace {

// Reads the pairs of a log line back as a strict reader would; throws on anything ambiguous.
std::multimap<std::string, std::string> parseLine(const std::string& line) {
    std::multimap<std::string, std::string> out;
    size_t i = 0;
    auto fail = [&](const char* why) {
        throw std::runtime_error(std::string(why) + " at " + std::to_string(i) + " in: " + line);
    };
    while (i < line.size()) {
        if (line[i] == ' ') {
            ++i;
            continue;
        }
        auto eq = line.find('=', i);
        if (eq == std::string::npos) fail("no '='");
        std::string key = line.substr(i, eq - i);
        if (key.find(' ') != std::string::npos || key.empty()) fail("bad key");
        i = eq + 1;
        std::string value;
        if (i < line.size() && line[i] == '"') {
            ++i;
            for (;;) {
                if (i >= line.size()) fail("unterminated quote");
                char c = line[i++];
                if (c == '"') break;
                if (c != '\\') {
                    value += c;
                    continue;
                }
                if (i >= line.size()) fail("dangling backslash");
                char e = line[i++];
                if (e == 'n') value += '\n';
                else if (e == 'r') value += '\r';
                else if (e == 't') value += '\t';
                else if (e == '"' || e == '\\') value += e;
                else if (e == 'x' && i + 2 <= line.size()) {
                    value += static_cast<char>(std::stoi(line.substr(i, 2), nullptr, 16));
                    i += 2;
                } else fail("unknown escape");
            }
            if (i < line.size() && line[i] != ' ') fail("junk after quote");
        } else {
            auto end = line.find(' ', i);
            value = line.substr(i, end == std::string::npos ? std::string::npos : end - i);
            if (value.find_first_of("\"\\=") != std::string::npos) fail("unquoted special");
            i = end == std::string::npos ? line.size() : end;
        }
        out.emplace(key, value);
    }
    return out;
}

bool hasControl(const std::string& text) {
    for (char c : text) {
        auto b = static_cast<unsigned char>(c);
        if (b < 0x20 || b == 0x7f) return true;
    }
    return false;
}

// Runs `body` in a child whose stderr goes to `file`; returns what the child logged.
template <class Body>
std::string loggedBy(Body&& body) {
    auto file = std::filesystem::temp_directory_path() /
                ("log-test-" + std::to_string(::getpid()) + ".log");
    pid_t pid = ::fork();
    if (pid == 0) {
        if (!std::freopen(file.c_str(), "w", stderr)) ::_exit(4);
        body();
        std::fflush(stderr);
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    std::ifstream in(file, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::filesystem::remove(file);
    return text;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(log_lines)

BOOST_AUTO_TEST_CASE(plain_values_stay_as_they_are) {
    BOOST_TEST(escapeLogValue("session_opened") == "session_opened");
    BOOST_TEST(escapeLogValue("/gcube/devsec") == "/gcube/devsec");
    BOOST_TEST(escapeLogValue("127.0.0.1:8080") == "127.0.0.1:8080");
    BOOST_TEST(escapeLogValue("node-é-ü") == "node-é-ü");  // UTF-8 text is not a control
}

BOOST_AUTO_TEST_CASE(spaces_quotes_and_equals_are_quoted) {
    BOOST_TEST(escapeLogValue("") == "\"\"");
    BOOST_TEST(escapeLogValue("two words") == "\"two words\"");
    BOOST_TEST(escapeLogValue("a=b") == "\"a=b\"");
    BOOST_TEST(escapeLogValue("say \"hi\"") == "\"say \\\"hi\\\"\"");
    BOOST_TEST(escapeLogValue("C:\\dir") == "\"C:\\\\dir\"");
}

BOOST_AUTO_TEST_CASE(control_characters_are_escaped) {
    BOOST_TEST(escapeLogValue("a\nb") == "\"a\\nb\"");
    BOOST_TEST(escapeLogValue("a\r\nevent=forged") == "\"a\\r\\nevent=forged\"");
    BOOST_TEST(escapeLogValue("tab\there") == "\"tab\\there\"");
    BOOST_TEST(escapeLogValue("\x1b[31mred") == "\"\\x1b[31mred\"");
    BOOST_TEST(escapeLogValue(std::string("nul\0x", 5)) == "\"nul\\x00x\"");
    BOOST_TEST(escapeLogValue("del\x7f") == "\"del\\x7f\"");
    // C1 controls (U+009B is a CSI on many terminals) and bytes that are not UTF-8.
    BOOST_TEST(escapeLogValue("\xc2\x9b" "2J") == "\"\\xc2\\x9b2J\"");
    BOOST_TEST(escapeLogValue("\x9b" "2J") == "\"\\x9b2J\"");
    BOOST_TEST(escapeLogValue("\xff\xfe") == "\"\\xff\\xfe\"");
    BOOST_TEST(escapeLogValue("cut\xc3") == "\"cut\\xc3\"");
}

BOOST_AUTO_TEST_CASE(any_value_reads_back_from_one_line) {
    std::mt19937 rng(1124);
    for (int round = 0; round < 2000; ++round) {
        std::string value(rng() % 40, '\0');
        for (auto& c : value) {
            // Mostly the interesting bytes: controls, quotes, backslashes, spaces, '=', high bytes.
            static const std::string special = "\n\r\t\x1b\x7f\"\\= \x9b\xc2\xe2\x80";
            c = (rng() % 2) ? special[rng() % special.size()] : static_cast<char>(rng() & 0xff);
        }
        std::string escaped = escapeLogValue(value);
        BOOST_TEST(!hasControl(escaped));
        auto pairs = parseLine("k=" + escaped + " next=1");
        BOOST_TEST(pairs.size() == 2u);
        BOOST_TEST((pairs.find("k") != pairs.end() && pairs.find("k")->second == value));
    }
}

BOOST_AUTO_TEST_CASE(one_event_is_one_line) {
    std::string log = loggedBy([] {
        rm::common::Logger logger("test");
        rm::common::Log(logger, rm::common::LogLevel::info, "request_refused")
            .kv("peer", "127.0.0.1")
            .kv("reason", "bad\nts=2026 level=error component=rm event=forged\x1b[2J")
            .kv("bad key\n", "v")
            .kv("count", 3);
        // A body formatted elsewhere (the engine's messages) is kept to one line as well.
        logger.write(rm::common::LogLevel::warn, "event=engine message=\"x\ny\"");
    });
    BOOST_TEST(std::count(log.begin(), log.end(), '\n') == 2);
    BOOST_TEST(!hasControl(log.substr(0, log.size() - 1).erase(log.find('\n'), 1)));
    auto first = log.substr(0, log.find('\n'));
    auto pairs = parseLine(first);
    BOOST_TEST(pairs.find("event")->second == "request_refused");
    BOOST_TEST(pairs.find("peer")->second == "127.0.0.1");
    BOOST_TEST(pairs.find("reason")->second ==
               "bad\nts=2026 level=error component=rm event=forged\x1b[2J");
    BOOST_TEST(pairs.count("event") == 1u);
    BOOST_TEST(pairs.find("count")->second == "3");
    BOOST_TEST(first.find(" bad_key_=v") != std::string::npos);
    BOOST_TEST(log.find("event=engine message=\"x\\ny\"") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
