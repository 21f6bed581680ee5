#!/usr/bin/python3
"""Drives a running resource-manager with zeep, a mainstream generic SOAP client.

Usage: zeep_client.py URL --agent AGENT_URL
       zeep_client.py URL --software NODE_NAME

Loads URL/wsdl exactly as served (default, strict zeep settings), calls every operation of the
ResourceManager port type and checks the typed answers and faults: the operator's operations on
URL, the node operations on the agent port AGENT_URL over mutual TLS, as an agent does (a join
token from CreateJoinToken, the CA pinned, EnrollNode with a CSR, then the node's certificate as
client certificate; made with python3-cryptography). With --software it instead
deploys the sample service InformationSystem/IS-Notifier on the (real, running) node NODE_NAME,
polls GetReport until CLOSED, reads the package states, then removes the service the same way.
Prints one line per check, "ok <name>" or "FAIL <name>: why", and exits 1 when any check failed
(2 when the WSDL could not be loaded at all).
"""
import hashlib
import os
import sys
import tempfile
import time
import traceback

import requests
import urllib3
import zeep
import zeep.exceptions
import zeep.transports
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree

SCOPE = "/gcube/devsec"
failures = []


def check(name, condition, detail=""):
    if condition:
        print("ok " + name, flush=True)
    else:
        failures.append(name)
        print("FAIL %s: %s" % (name, detail), flush=True)


def expect_fault(name, fault_element, call):
    """Runs call(); it must raise zeep.exceptions.Fault whose detail holds fault_element."""
    try:
        result = call()
    except zeep.exceptions.Fault as fault:
        detail = fault.detail
        found = detail is not None and any(
            etree.QName(child).localname == fault_element for child in detail)
        check(name, fault_element is None or found,
              "Fault without %s detail: %s" % (fault_element, fault.message))
        return fault
    except Exception as e:  # a transport or parsing problem is not a typed fault
        check(name, False, "raised %s instead of zeep Fault: %s" % (type(e).__name__, e))
        return None
    check(name, False, "no fault; returned %r" % (result,))
    return None


def agent_port(url, agent_url, cert=None, verify=None):
    """The ResourceManager binding at the agent port, over TLS: `verify` is the scope CA file,
    `cert` a (certificate, key) pair of files presented as client certificate."""
    session = requests.Session()
    # Only the scope CA: REQUESTS_CA_BUNDLE and the like would replace it (and proxies do not
    # belong on loopback).
    session.trust_env = False
    session.verify = verify if verify is not None else True
    if cert is not None:
        session.cert = cert
    client = zeep.Client(url + "/wsdl", transport=zeep.transports.Transport(session=session))
    return client.create_service("{urn:scope-rm:2026}ResourceManagerBinding", agent_url)


def enroll(service, token, node_id, workdir):
    """EnrollNode with a fresh EC key; returns the (certificate, key) files of the identity."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)]))
           .sign(key, hashes.SHA256()))
    answer = service.EnrollNode(token=token,
                                csr=csr.public_bytes(serialization.Encoding.PEM).decode())
    cert_file = os.path.join(workdir, node_id + ".crt")
    key_file = os.path.join(workdir, node_id + ".key")
    with open(cert_file, "w") as out:
        out.write(answer.certificate)
    with open(key_file, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    os.chmod(key_file, 0o600)
    issued = x509.load_pem_x509_certificate(answer.certificate.encode())
    subject = issued.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return (cert_file, key_file), (subject[0].value if subject else ""), answer


def identity_and_node_operations(service, url, agent_url, workdir):
    """Join tokens on the operator port; enrollment and the node operations on the agent port."""
    made = service.CreateJoinToken(ttlSeconds=600, uses=2, description="zeep")
    check("CreateJoinToken_token_and_pin",
          isinstance(made.token, str) and "." in made.token and len(made.caSHA256) == 64 and
          made.agentURL == agent_url and made.expires, repr(made))
    token_id = made.token.split(".")[0]
    listed = [t for t in (service.ListJoinTokens() or []) if t.ID == token_id]
    check("ListJoinTokens_lists_it",
          len(listed) == 1 and listed[0].usesLeft == 2 and listed[0].description == "zeep" and
          made.token.split(".")[1] not in repr(listed), repr(listed))

    # As an agent does: the CA from GET /ca.pem, trusted only when it matches the pin.
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    ca_pem = requests.get(agent_url + "/ca.pem", verify=False, timeout=10).text
    der = x509.load_pem_x509_certificate(ca_pem.encode()).public_bytes(serialization.Encoding.DER)
    check("ca_pem_matches_pin", hashlib.sha256(der).hexdigest() == made.caSHA256.lower(), "")
    ca_file = os.path.join(workdir, "ca.pem")
    with open(ca_file, "w") as out:
        out.write(ca_pem)

    anonymous = agent_port(url, agent_url, verify=ca_file)
    node1, cn1, answer = enroll(anonymous, made.token, "zeep-node-0001", workdir)
    check("EnrollNode_issues_certificate",
          cn1 == "zeep-node-0001" and answer.caCertificate.strip() == ca_pem.strip(), repr(cn1))
    node2, cn2, _ = enroll(anonymous, made.token, "zeep-node-0002", workdir)
    check("EnrollNode_second_use", cn2 == "zeep-node-0002", repr(cn2))
    expect_fault("EnrollNode_token_used_up_AccessDeniedFault", "AccessDeniedFault",
                 lambda: enroll(anonymous, made.token, "zeep-node-0003", workdir))
    expect_fault("RegisterNode_without_certificate_AccessDeniedFault", "AccessDeniedFault",
                 lambda: anonymous.RegisterNode(
                     ID="zeep-node-0001", name="zeep-node", endpoint="https://127.0.0.1:9/",
                     capacity={"cpus": 2, "memoryMB": 2048, "diskFreeMB": 1000, "maxInstances": 4}))
    # The operator port serves no node operation.
    expect_fault("RegisterNode_on_operator_port_AccessDeniedFault", "AccessDeniedFault",
                 lambda: service.RegisterNode(
                     ID="zeep-node-0001", name="zeep-node", endpoint="https://127.0.0.1:9/",
                     capacity={"cpus": 2, "memoryMB": 2048, "diskFreeMB": 1000, "maxInstances": 4}))

    # Node operations, as an agent calls them: over mutual TLS with its node certificate.
    first = agent_port(url, agent_url, cert=node1, verify=ca_file)
    second = agent_port(url, agent_url, cert=node2, verify=ca_file)
    answer = second.Heartbeat(
        ID="zeep-node-0002", sequence=1,
        summary={"deployedPackages": 0, "runningInstances": 0, "diskFreeMB": 0, "load": 0.0})
    check("Heartbeat_unknown_node_not_registered", answer.registered is False, repr(answer))
    answer = first.RegisterNode(
        ID="zeep-node-0001", name="zeep-node", endpoint="https://127.0.0.1:9/",
        label=[{"key": "zone", "value": "test"}],
        capacity={"cpus": 2, "memoryMB": 2048, "diskFreeMB": 1000, "maxInstances": 4})
    check("RegisterNode_ack", answer.ack is True and isinstance(answer.heartbeatIntervalMs, int)
          and answer.heartbeatIntervalMs > 0, repr(answer))
    answer = first.Heartbeat(
        ID="zeep-node-0001", sequence=1,
        summary={"deployedPackages": 0, "runningInstances": 1, "diskFreeMB": 900, "load": 0.25})
    check("Heartbeat_ack", answer.ack is True and answer.registered is True, repr(answer))
    expect_fault("Heartbeat_for_another_node_AccessDeniedFault", "AccessDeniedFault",
                 lambda: first.Heartbeat(
                     ID="zeep-node-0002", sequence=2,
                     summary={"deployedPackages": 0, "runningInstances": 0, "diskFreeMB": 0,
                              "load": 0.0}))
    nodes = service.ListNodes() or []
    mine = [n for n in nodes if n.ID == "zeep-node-0001"]
    check("ListNodes_shows_node",
          len(mine) == 1 and mine[0].name == "zeep-node" and mine[0].liveness == "ALIVE" and
          mine[0].endpoint == "https://127.0.0.1:9/" and isinstance(mine[0].load, float) and
          mine[0].runningInstances == 1 and
          [(l.key, l.value) for l in (mine[0].label or [])] == [("zone", "test")], repr(nodes))

    fault = expect_fault("SendReport_unknown_callback_is_fault", None, lambda: first.SendReport(
        callbackID="no-such-callback", ID="zeep-node-0001", sequence=1,
        report={"Status": "CLOSED", "Packages": {"Package": []}}))
    if fault is not None:
        check("SendReport_fault_names_callback", "no-such-callback" in (fault.message or ""),
              repr(fault.message))
        print("SendReport answered Fault: " + (fault.message or ""), flush=True)

    # A certificate is renewed over the node's own identity.
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zeep-node-0002")]))
           .sign(key, hashes.SHA256()))
    renewed = second.RenewNodeCertificate(csr=csr.public_bytes(serialization.Encoding.PEM).decode())
    subject = x509.load_pem_x509_certificate(renewed.certificate.encode()).subject
    check("RenewNodeCertificate_same_identity",
          subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "zeep-node-0002",
          repr(subject))

    # A removed node's certificate is refused at once.
    answer = second.RegisterNode(
        ID="zeep-node-0002", name="zeep-node-2", endpoint="https://127.0.0.1:9/",
        capacity={"cpus": 1, "memoryMB": 512, "diskFreeMB": 100, "maxInstances": 1})
    check("RegisterNode_second_node_ack", answer.ack is True, repr(answer))
    check("RemoveNode_removed", service.RemoveNode(name="zeep-node-2") is True, "")
    expect_fault("RemoveNode_certificate_refused_AccessDeniedFault", "AccessDeniedFault",
                 lambda: second.Heartbeat(
                     ID="zeep-node-0002", sequence=3,
                     summary={"deployedPackages": 0, "runningInstances": 0, "diskFreeMB": 0,
                              "load": 0.0}))
    expect_fault("RemoveNode_unknown_InvalidRequestFault", "InvalidRequestFault",
                 lambda: service.RemoveNode(name="zeep-no-such-node"))

    # A revoked token enrolls nobody.
    spare = service.CreateJoinToken(ttlSeconds=600, uses=1, description="spare")
    check("RevokeJoinToken_revoked", service.RevokeJoinToken(ID=spare.token.split(".")[0]) is True, "")
    ids = [t.ID for t in (service.ListJoinTokens() or [])]
    check("ListJoinTokens_without_revoked", spare.token.split(".")[0] not in ids, repr(ids))
    expect_fault("EnrollNode_revoked_token_AccessDeniedFault", "AccessDeniedFault",
                 lambda: enroll(anonymous, spare.token, "zeep-node-0004", workdir))
    # Tokens are the operator's business: the agent port refuses them.
    expect_fault("CreateJoinToken_on_agent_port_AccessDeniedFault", "AccessDeniedFault",
                 lambda: first.CreateJoinToken(ttlSeconds=60, uses=1))


def wait_closed(service, report_id, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        report = service.GetReport(reportID=report_id)
        if report.Status == "CLOSED" or time.time() > deadline:
            return report
        time.sleep(0.05)


def resources_of(report):
    if report.Resources is None or report.Resources.Resource is None:
        return []
    return list(report.Resources.Resource)


def activity_packages(report, element):
    """{PackageName: Status} over every GHN of the DeploymentActivity or UndeploymentActivity."""
    activity = getattr(report, element, None)
    states = {}
    if activity is None or activity.GHN is None:
        return states, []
    for ghn in activity.GHN:
        node_report = ghn.LastReportReceived
        if node_report is not None and node_report.Packages is not None:
            for package in node_report.Packages.Package or []:
                states[package.PackageName] = package.Status
    return states, list(activity.GHN)


def software(service, node_name):
    """Adds IS-Notifier on node_name, waits for CLOSED, reads package states, removes it."""
    nodes = [n for n in (service.ListNodes() or []) if n.name == node_name]
    check("software_node_listed", len(nodes) == 1 and nodes[0].liveness == "ALIVE", repr(nodes))
    if not nodes:
        return
    node_id = nodes[0].ID
    item = {"ServiceClass": "InformationSystem", "ServiceName": "IS-Notifier", "TargetGHNName": node_name}
    rid = service.AddResources(software={"software": [item]}, targetScope=SCOPE)
    check("software_AddResources_returns_report_id", isinstance(rid, str) and len(rid) > 0, repr(rid))
    report = wait_closed(service, rid, timeout=60.0)
    check("software_GetReport_closed", report.Status == "CLOSED", repr(report.Status))
    check("software_GetReport_success", report.SessionExitStatus == "SUCCESS", repr(report))
    services = report.Services.Service if report.Services is not None else []
    check("software_service_deployed_on_node",
          len(services) == 1 and services[0].Name == "IS-Notifier" and services[0].DeployedOn == node_id and
          services[0].DependenciesResolutionStatus == "SUCCESS" and services[0].ErrorDescription == "-",
          repr(services))
    resolved = []
    if services and services[0].DependenciesResolution is not None:
        resolved = [d.PackageName for d in
                    services[0].DependenciesResolution.ResolvedDependencies.Dependency or []]
    check("software_dependencies_resolved", sorted(resolved) == ["Notifier-service", "Notifier-stubs"],
          repr(resolved))
    states, ghns = activity_packages(report, "DeploymentActivity")
    print("package states: %r" % (states,), flush=True)
    check("software_package_states",
          states == {"Notifier-stubs": "ACTIVATED", "Notifier-service": "RUNNING"}, repr(states))
    check("software_ghn_closed",
          len(ghns) == 1 and ghns[0].ID == node_id and ghns[0].LastReportReceived.Status == "CLOSED" and
          ghns[0].LastReportReceivedOn not in (None, ""), repr(ghns))
    instances = [(r.ID, r.Status, r.Node) for r in (service.ListResources(type="RunningInstance") or [])]
    check("software_running_instance_listed",
          instances == [(node_id + ":IS-Notifier.Notifier-service", "PUBLISHED", node_id)], repr(instances))

    rid = service.RemoveResources(
        software={"software": [{"ServiceClass": "InformationSystem", "ServiceName": "IS-Notifier"}]},
        targetScope=SCOPE)
    report = wait_closed(service, rid, timeout=60.0)
    check("software_RemoveResources_success",
          report.Status == "CLOSED" and report.SessionExitStatus == "SUCCESS" and
          report.Operation == "RemoveResources", repr(report))
    states, _ = activity_packages(report, "UndeploymentActivity")
    print("undeployed states: %r" % (states,), flush=True)
    check("software_packages_undeployed",
          states == {"Notifier-stubs": "UNDEPLOYED", "Notifier-service": "UNDEPLOYED"}, repr(states))
    check("software_running_instance_gone", not service.ListResources(type="RunningInstance"), "")


def main():
    software_node = None
    agent_url = None
    if len(sys.argv) == 4 and sys.argv[2] == "--software":
        software_node = sys.argv[3]
    elif len(sys.argv) == 4 and sys.argv[2] == "--agent":
        agent_url = sys.argv[3].rstrip("/")
    else:
        print("usage: zeep_client.py URL --agent AGENT_URL | URL --software NODE_NAME",
              file=sys.stderr)
        return 2
    url = sys.argv[1].rstrip("/")
    try:
        client = zeep.Client(url + "/wsdl")
        service = client.bind("ResourceManagerService", "ResourceManagerPort")
    except Exception:
        print("FAIL load_wsdl: zeep could not consume %s/wsdl" % url)
        traceback.print_exc()
        return 2
    check("load_wsdl", True)
    if software_node is not None:
        software(service, software_node)
        print("%d failure(s)" % len(failures), flush=True)
        return 1 if failures else 0
    address = service._binding_options.get("address")
    check("soap_address_is_this_rm", address in (url, url + "/"), "address %r" % address)

    # AddResources with resources, then GetReport until CLOSED with typed fields.
    wanted = [("GenericResource", "zeep-gr-1"), ("Collection", "zeep-col-1"),
              ("RuntimeResource", "zeep-rr-1")]
    rid = service.AddResources(
        resources={"resource": [{"ID": i, "Type": t} for t, i in wanted]}, targetScope=SCOPE)
    check("AddResources_returns_report_id", isinstance(rid, str) and len(rid) > 0, repr(rid))
    report = wait_closed(service, rid)
    check("GetReport_typed_ID", report.ID == rid, repr(report.ID))
    check("GetReport_closed", report.Status == "CLOSED", repr(report.Status))
    check("GetReport_success", report.SessionExitStatus == "SUCCESS", repr(report.SessionExitStatus))
    check("GetReport_operation", report.Operation == "AddResources", repr(report.Operation))
    check("GetReport_scope", report.TargetScope == SCOPE, repr(report.TargetScope))
    got = sorted((r.Type, r.ID, r.Status, r.ErrorDescription) for r in resources_of(report))
    check("GetReport_resources_added",
          got == sorted((t, i, "ADDED", "-") for t, i in wanted), repr(got))

    listed = service.ListResources()
    rows = {(r.Type, r.ID): r.Status for r in (listed or [])}
    check("ListResources_published",
          all(rows.get(k) == "PUBLISHED" for k in wanted) and len(rows) == len(wanted), repr(rows))
    only = service.ListResources(type="Collection")
    check("ListResources_filter_type",
          [(r.Type, r.ID) for r in (only or [])] == [("Collection", "zeep-col-1")], repr(only))

    rid = service.RemoveResources(
        resources={"resource": [{"ID": "zeep-gr-1", "Type": "GenericResource"}]}, targetScope=SCOPE)
    report = wait_closed(service, rid)
    check("RemoveResources_success",
          report.Status == "CLOSED" and report.SessionExitStatus == "SUCCESS" and
          [r.Status for r in resources_of(report)] == ["REMOVED"], repr(report))
    rows = {(r.Type, r.ID) for r in (service.ListResources() or [])}
    check("RemoveResources_gone", ("GenericResource", "zeep-gr-1") not in rows, repr(rows))

    rid = service.DisposeScope(targetScope=SCOPE)
    report = wait_closed(service, rid)
    check("DisposeScope_success",
          report.Operation == "DisposeScope" and report.SessionExitStatus == "SUCCESS" and
          sorted(r.ID for r in resources_of(report)) == ["zeep-col-1", "zeep-rr-1"], repr(report))
    check("DisposeScope_empties_scope", not service.ListResources(), "")

    with tempfile.TemporaryDirectory(prefix="zeep-pki-") as workdir:
        identity_and_node_operations(service, url, agent_url, workdir)

    # Typed faults.
    fault = expect_fault("wrong_scope_InvalidScopeFault", "InvalidScopeFault",
                         lambda: service.AddResources(
                             resources={"resource": [{"ID": "x", "Type": "GenericResource"}]},
                             targetScope="/other/scope"))
    expect_fault("DisposeScope_wrong_scope_InvalidScopeFault", "InvalidScopeFault",
                 lambda: service.DisposeScope(targetScope="/other/scope"))
    expect_fault("unknown_type_InvalidRequestFault", "InvalidRequestFault",
                 lambda: service.AddResources(
                     resources={"resource": [{"ID": "x", "Type": "NoSuchType"}]}, targetScope=SCOPE))
    expect_fault("unknown_report_NoSuchReportFault", "NoSuchReportFault",
                 lambda: service.GetReport(reportID="00000000-0000-0000-0000-000000000000"))
    check("no_state_change_after_faults", not service.ListResources(), "")

    print("%d failure(s)" % len(failures), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
