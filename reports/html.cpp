#include "reports/html.h"

#include "reports/markup_text.h"

namespace rm::reports {
namespace {

constexpr std::string_view kStyle = R"css(
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#f6f8fa}
nav{display:flex;gap:18px;align-items:center;padding:10px 24px;background:#24292f}
nav a{color:#f0f3f6;text-decoration:none;font-weight:600}
nav a:hover{text-decoration:underline}
nav .brand{color:#9ea7b3;font-weight:400;margin-right:12px}
main{max-width:1200px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:22px;margin:0 0 12px;word-break:break-all}
h2{font-size:17px;margin:28px 0 10px}
h3{font-size:15px;margin:0 0 8px;word-break:break-all}
h4{font-size:13px;margin:12px 0 4px;color:#57606a}
a{color:#0969da}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 12px}
th,td{border:1px solid #d0d7de;padding:5px 8px;text-align:left;vertical-align:top;word-break:break-word}
th{background:#f0f3f6;font-weight:600}
table.kv th{width:220px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:14px 16px;margin:0 0 14px}
.meta{color:#57606a}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;white-space:nowrap}
.badge.good{background:#1a7f37}.badge.bad{background:#cf222e}.badge.warn{background:#bf8700}
.badge.pending{background:#0969da}.badge.neutral{background:#6e7781}
.progress{height:14px;background:#d0d7de;border-radius:7px;overflow:hidden;margin:6px 0}
.progress>div{height:100%;background:#1a7f37}
.progress.failed>div{background:#cf222e}.progress.open>div{background:#0969da}
.empty{color:#57606a;font-style:italic}
tr.missing td{background:#ffebe9}
)css";

void appendNav(std::string& out) {
    out +=
        "<nav><span class=\"brand\">Scope Resource Manager</span><a href=\"/\">Scope</a>"
        "<a href=\"/resources\">Resources</a><a href=\"/nodes\">Nodes</a>"
        "<a href=\"/wsdl\">WSDL</a></nav>\n";
}

std::string_view toneClass(Tone tone) {
    switch (tone) {
        case Tone::Good:
            return "good";
        case Tone::Bad:
            return "bad";
        case Tone::Warn:
            return "warn";
        case Tone::Pending:
            return "pending";
        case Tone::Neutral:
            break;
    }
    return "neutral";
}

bool isUnreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

}  // namespace

void appendEscapedHtml(std::string& out, std::string_view text) {
    appendEscapedMarkup(out, text);
}

std::string escapeHtml(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 16);
    appendEscapedHtml(out, text);
    return out;
}

std::string encodePathSegment(std::string_view segment) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(segment.size());
    for (const char c : segment) {
        const auto byte = static_cast<unsigned char>(c);
        if (isUnreserved(byte)) {
            out += c;
        } else {
            out += '%';
            out += kHex[byte >> 4];
            out += kHex[byte & 0x0F];
        }
    }
    return out;
}

std::string badge(std::string_view label, Tone tone) {
    std::string out = "<span class=\"badge ";
    out += toneClass(tone);
    out += "\">";
    appendEscapedHtml(out, label);
    out += "</span>";
    return out;
}

std::string pageLayout(std::string_view title, std::string_view bodyHtml, int refreshSeconds) {
    std::string out;
    out.reserve(bodyHtml.size() + kStyle.size() + 1024);
    out +=
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">\n";
    if (refreshSeconds > 0) {
        out += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(refreshSeconds) + "\">\n";
    }
    out += "<title>";
    appendEscapedHtml(out, title);
    out += "</title>\n<style>";
    out += kStyle;
    out += "</style>\n</head>\n<body>\n";
    appendNav(out);
    out += "<main>\n";
    out += bodyHtml;
    out += "</main>\n</body>\n</html>\n";
    return out;
}

}  // namespace rm::reports
