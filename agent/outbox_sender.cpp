#include "agent/outbox_sender.h"

#include <algorithm>

#include "agent/soap_errors.h"
#include "common/soap_server.h"
#include "soapResourceManagerBindingProxy.h"

namespace rm::agent {

using common::Log;
using common::LogLevel;
using Clock = std::chrono::steady_clock;

SoapReportTransport::SoapReportTransport(std::string managerUrl, Credentials credentials,
                                         std::chrono::seconds timeout)
    : managerUrl_(std::move(managerUrl)), credentials_(std::move(credentials)), timeout_(timeout) {}

ResourceManagerBindingProxy& SoapReportTransport::proxyFor(const std::string& slot) {
    auto& proxy = proxies_[slot];
    if (!proxy) {
        auto made = std::make_unique<ResourceManagerBindingProxy>();
        common::ServerOptions limits;
        limits.ioTimeout = timeout_;
        limits.transferTimeout = timeout_ * 2;
        common::applyXmlLimits(made->soap, limits);
        common::configureTlsClient(made->soap, credentials_(slot));
        proxy = std::move(made);
    }
    return *proxy;
}

SoapReportTransport::~SoapReportTransport() = default;

void SoapReportTransport::send(const ReportSnapshot& report) {
    auto& proxy = proxyFor(report.slot);
    proxy.destroy();
    struct soap* soap = proxy.soap;
    _rm__SendReport request;
    request.callbackID = report.callbackId;
    request.ID = report.nodeId;
    request.sequence = report.sequence;
    request.report = soap_new_rm__NodeReport(soap);
    request.report->Status = report.status;
    request.report->Packages = soap_new_rm__PackageReportList(soap);
    for (const auto& p : report.packages) {
        auto* out = soap_new_rm__PackageReport(soap);
        out->ServiceClass = p.request.coords.serviceClass;
        out->ServiceName = p.request.coords.serviceName;
        out->ServiceVersion = p.request.coords.serviceVersion;
        out->PackageName = p.request.coords.packageName;
        out->PackageVersion = p.request.coords.packageVersion;
        out->Status = p.state;
        out->Message = p.message;
        request.report->Packages->Package.push_back(out);
    }
    _rm__SendReportResponse response;
    int rc = proxy.SendReport(managerUrl_.c_str(), nullptr, &request, response);
    if (rc != SOAP_OK) {
        std::string why = describeSoapError(soap, "SendReport to " + managerUrl_);
        bool refused =
            soap->fault && soap->fault->detail && soap->fault->detail->rm__InvalidRequestFault;
        proxy.soap_close_socket();
        if (refused) throw ReportRefused(why);
        throw std::runtime_error(why);
    }
    // Reports come in bursts; no idle connection holds one of the RM's workers in between.
    soap_force_closesock(proxy.soap);
    if (!response.ack)
        throw std::runtime_error("SendReport to " + managerUrl_ + " was answered ack=false");
}

OutboxSender::OutboxSender(AgentStore& store, ReportTransport& transport, common::Logger& logger,
                           OutboxOptions options)
    : store_(store), transport_(transport), logger_(logger), options_(options) {}

void OutboxSender::run(std::stop_token stop) {
    while (!stop.stop_requested()) {
        auto seen = store_.outbox().count();
        auto wait = sendDue(stop);
        store_.outbox().waitFor(seen, wait, stop);
    }
}

std::chrono::milliseconds OutboxSender::sendDue(std::stop_token stop) {
    auto next = options_.idlePoll;
    std::map<std::string, Retry> still;
    for (const auto& pending : store_.pendingCallbacks()) {
        if (stop.stop_requested()) break;
        std::string key = pending.slot + "\n" + pending.callbackId;
        Retry retry;
        if (auto it = retries_.find(key); it != retries_.end()) retry = it->second;
        auto now = Clock::now();
        if (retry.notBefore > now) {
            next = std::min(
                next, std::chrono::duration_cast<std::chrono::milliseconds>(retry.notBefore - now));
            still.emplace(key, retry);
            continue;
        }
        auto report = store_.snapshot(pending.slot, pending.callbackId);
        if (!report) continue;
        try {
            // drop before: the report never leaves; drop after: it arrived but the ack was lost.
            common::checkFault(options_.faults, "agent.before_send");
            transport_.send(*report);
            common::checkFault(options_.faults, "agent.after_send");
            store_.acknowledge(pending.slot, pending.callbackId, report->sequence);
            Log(logger_, LogLevel::info, "report_sent")
                .kv("node", pending.slot)
                .kv("callback", pending.callbackId)
                .kv("sequence", report->sequence)
                .kv("status", report->status)
                .kv("coalesced", pending.pendingReports - 1)
                .kv("attempts", retry.failures + 1);
        } catch (const ReportRefused& e) {
            // Final: the RM will never take this report (its deployment is closed there).
            store_.acknowledge(pending.slot, pending.callbackId, report->sequence);
            Log(logger_, LogLevel::warn, "report_refused")
                .kv("node", pending.slot)
                .kv("callback", pending.callbackId)
                .kv("sequence", report->sequence)
                .kv("error", e.what());
        } catch (const std::exception& e) {
            retry.failures++;
            auto delay = options_.initialBackoff;
            for (int i = 1; i < retry.failures && delay < options_.maxBackoff; ++i) delay *= 2;
            delay = std::min(delay, options_.maxBackoff);
            retry.notBefore = Clock::now() + delay;
            // Logged at the first failure and then only when the reason changes or rarely, so a
            // Resource Manager that is down does not flood the log.
            if (retry.failures == 1 || retry.lastError != e.what() || retry.failures % 20 == 0) {
                Log(logger_, LogLevel::warn, "report_not_acknowledged")
                    .kv("node", pending.slot)
                    .kv("callback", pending.callbackId)
                    .kv("sequence", report->sequence)
                    .kv("attempts", retry.failures)
                    .kv("retry_in_ms", delay.count())
                    .kv("error", e.what());
            }
            retry.lastError = e.what();
            next = std::min(next, delay);
            still.emplace(key, retry);
        }
    }
    retries_.swap(still);
    return next;
}

}  // namespace rm::agent
