// Pushes the reports waiting in the durable outbox to the Resource Manager with SendReport, in
// order, retrying each operation's report with exponential backoff until acknowledged. Each
// report carries the operation's full current state, so only the newest pending one per
// callbackID is sent; acknowledging it retires the older ones (the CLOSED report is always the
// newest, so it is never skipped).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>

#include "agent/agent_store.h"
#include "common/fault_points.h"
#include "common/log.h"
#include "common/tls.h"

class ResourceManagerBindingProxy;

namespace rm::agent {

// Delivers one report; throws std::runtime_error saying why it was not acknowledged.
class ReportTransport {
  public:
    virtual ~ReportTransport() = default;
    virtual void send(const ReportSnapshot& report) = 0;
};

// The RM refused a report for good (its deployment is closed or unknown there): resending it
// cannot help, so the outbox drops it.
class ReportRefused : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// SendReport to the RM this node enrolled with, whatever callback endpoint an operation named:
// reports go nowhere else. Each slot (node) calls as itself, with its own certificate. A SOAP
// fault is "not acknowledged", an InvalidRequestFault ReportRefused.
// Only the outbox thread calls send().
class SoapReportTransport final : public ReportTransport {
  public:
    using Credentials = std::function<common::TlsClientOptions(const std::string& slot)>;
    SoapReportTransport(std::string managerUrl, Credentials credentials,
                        std::chrono::seconds timeout = std::chrono::seconds(10));
    ~SoapReportTransport() override;
    void send(const ReportSnapshot& report) override;

  private:
    ResourceManagerBindingProxy& proxyFor(const std::string& slot);
    std::string managerUrl_;
    Credentials credentials_;
    std::chrono::seconds timeout_;
    std::map<std::string, std::unique_ptr<ResourceManagerBindingProxy>> proxies_;  // by slot
};

struct OutboxOptions {
    std::chrono::milliseconds initialBackoff{250};
    std::chrono::milliseconds maxBackoff{10000};
    std::chrono::milliseconds idlePoll{5000};
    common::FaultPoints* faults = nullptr;  // agent.before_send / agent.after_send; nullptr: none
};

class OutboxSender {
  public:
    OutboxSender(AgentStore& store, ReportTransport& transport, common::Logger& logger,
                 OutboxOptions options = {});

    void run(std::stop_token stop);

    // One pass: sends the newest report of every operation whose retry time has come, oldest
    // operation first. Returns how long until the next retry is due (idlePoll when none is).
    std::chrono::milliseconds sendDue(std::stop_token stop = {});

  private:
    struct Retry {
        int failures = 0;
        std::chrono::steady_clock::time_point notBefore{};
        std::string lastError;
    };

    AgentStore& store_;
    ReportTransport& transport_;
    common::Logger& logger_;
    OutboxOptions options_;
    std::map<std::string, Retry> retries_;  // by slot + callbackID; only this thread touches it
};

}  // namespace rm::agent
