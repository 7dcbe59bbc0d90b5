"""Deployment rules the JSON schemas cannot see: names and labels that must match across the
manifests, the raft-elector sidecar's configuration, and the restricted security context.

Run by validate.sh with the venv's Python (PyYAML comes with kubernetes-validate):
    python check_rules.py config/kubernetes/*.yaml
Exits 1 and lists every broken rule.
"""

import re
import sys

import yaml

failures = []
checked = 0


def rule(ok, message):
    global checked
    checked += 1
    if not ok:
        failures.append(message)


def one(docs, kind):
    found = [d for d in docs if d.get("kind") == kind]
    rule(len(found) == 1, f"expected exactly one {kind}, found {len(found)}")
    return found[0] if found else {}


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def duration_seconds(text):
    match = re.fullmatch(r"(\d+)(ms|s|m)", text)
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2)
    return {"ms": value / 1000, "s": value, "m": value * 60}[unit]


def main(paths):
    docs = []
    for path in paths:
        with open(path) as f:
            docs.extend(d for d in yaml.safe_load_all(f) if d)

    sts = one(docs, "StatefulSet")
    svc = one(docs, "Service")
    pdb = one(docs, "PodDisruptionBudget")
    netpol = one(docs, "NetworkPolicy")
    spec = sts.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    replicas = spec.get("replicas", 1)

    # The StatefulSet and what ties the other objects to its pods.
    rule(spec.get("podManagementPolicy") == "Parallel", "podManagementPolicy must be Parallel")
    rule(selects(spec.get("selector", {}).get("matchLabels"), labels), "StatefulSet selector does not match its pods")
    rule(spec.get("serviceName") == svc.get("metadata", {}).get("name"), "serviceName is not the headless Service")
    rule(replicas >= 3 and replicas % 2 == 1, "use an odd number of peers, 3 or more")
    claims = [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])]

    # The headless Service.
    sspec = svc.get("spec", {})
    rule(sspec.get("clusterIP") == "None", "the peer Service must be headless (clusterIP: None)")
    rule(sspec.get("publishNotReadyAddresses") is True, "the peer Service needs publishNotReadyAddresses: true")
    rule(selects(sspec.get("selector"), labels), "the peer Service does not select the pods")

    # The disruption budget keeps a quorum.
    pspec = pdb.get("spec", {})
    rule(selects(pspec.get("selector", {}).get("matchLabels"), labels), "the PDB does not select the pods")
    quorum = replicas // 2 + 1
    if "maxUnavailable" in pspec:
        rule(isinstance(pspec["maxUnavailable"], int) and replicas - pspec["maxUnavailable"] >= quorum,
             "the PDB's maxUnavailable would allow losing the quorum")
    else:
        rule(isinstance(pspec.get("minAvailable"), int) and pspec["minAvailable"] >= quorum,
             "the PDB's minAvailable is below a quorum")

    # The NetworkPolicy admits peer traffic from the same pods only.
    nspec = netpol.get("spec", {})
    rule(selects(nspec.get("podSelector", {}).get("matchLabels"), labels), "the NetworkPolicy does not select the pods")
    rule("Ingress" in nspec.get("policyTypes", []), "the NetworkPolicy must restrict ingress")
    for rule_ in nspec.get("ingress", []):
        for peer in rule_.get("from", []):
            rule(set(peer) == {"podSelector"} and selects(peer["podSelector"].get("matchLabels"), labels),
                 f"NetworkPolicy admits more than the StatefulSet's pods: {peer}")
        rule(rule_.get("from"), "a NetworkPolicy ingress rule without 'from' admits everyone")

    # Pod-level settings.
    psc = pod.get("securityContext", {})
    rule(pod.get("automountServiceAccountToken") is False, "no service account token is needed")
    rule(pod.get("enableServiceLinks") is False, "enableServiceLinks must be false (RAFT_ELECTOR_* collisions)")
    rule(not pod.get("hostNetwork") and not pod.get("hostPID"), "no host namespaces")
    rule(psc.get("fsGroup") is not None, "fsGroup is needed for the non-root peer to write its volume")

    # Every container: the restricted Pod Security Standard, and resources.
    containers = pod.get("containers", []) + pod.get("initContainers", [])
    for c in containers:
        name = c.get("name")
        sc = c.get("securityContext", {})
        rule(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation must be false")
        rule(sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem must be true")
        rule(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: drop ALL capabilities")
        rule(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{name}: runAsNonRoot")
        rule(sc.get("runAsUser", psc.get("runAsUser", 1)) != 0, f"{name}: must not run as uid 0")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        rule(seccomp in ("RuntimeDefault", "Localhost"), f"{name}: seccompProfile RuntimeDefault")
        res = c.get("resources", {})
        rule("memory" in res.get("requests", {}) and "memory" in res.get("limits", {}),
             f"{name}: memory requests and limits")
        rule("cpu" in res.get("requests", {}), f"{name}: cpu request")

    # The raft-elector sidecar.
    sidecars = [c for c in containers if c.get("name") == "raft-elector"]
    rule(len(sidecars) == 1, "exactly one container named raft-elector")
    side = sidecars[0] if sidecars else {}
    env = {e["name"]: e for e in side.get("env", [])}
    value = lambda k: env.get(k, {}).get("value")
    rule(value("RAFT_ELECTOR_REPLICAS") == str(replicas), "RAFT_ELECTOR_REPLICAS must equal spec.replicas")
    rule((value("RAFT_ELECTOR_PEER_DOMAIN") or "").startswith(f"{spec.get('serviceName')}."),
         "RAFT_ELECTOR_PEER_DOMAIN must be the headless Service's domain")
    id_source = value("RAFT_ELECTOR_ID")
    downward = env.get((id_source or "").strip("$()"), {}).get("valueFrom", {}).get("fieldRef", {})
    rule(downward.get("fieldPath") == "metadata.name", "the peer id must be the pod name (downward API)")
    ports = {p.get("name"): p.get("containerPort") for p in side.get("ports", [])}
    peer_port = int(value("RAFT_ELECTOR_PEER_PORT") or 4041)
    rule(ports.get("peer") == peer_port, "container port 'peer' must be the peer port")
    for p in sspec.get("ports", []):
        rule(p.get("port") == peer_port and p.get("targetPort") in ("peer", peer_port),
             "the Service must carry the peer port")
    for rule_ in nspec.get("ingress", []):
        for p in rule_.get("ports", []):
            rule(p.get("port") in ("peer", peer_port), f"NetworkPolicy admits a port other than the peer port: {p}")
    http = value("RAFT_ELECTOR_HTTP") or "127.0.0.1:4040"
    rule(http.startswith("127.") or http.startswith("localhost:"),
         "the application API must stay on localhost (use the probe listener for probes)")
    probe_http = value("RAFT_ELECTOR_PROBE_HTTP") or ""
    probe_port = int(probe_http.rsplit(":", 1)[1]) if ":" in probe_http else None
    rule(probe_port is not None and not probe_http.startswith("127."),
         "RAFT_ELECTOR_PROBE_HTTP must listen on the pod's addresses, where the kubelet probes")
    rule(ports.get("probe") == probe_port, "container port 'probe' must be the probe listener's port")
    for probe in ("livenessProbe", "readinessProbe"):
        get = side.get(probe, {}).get("httpGet", {})
        rule(get.get("path") in ("/healthz", "/readyz") and get.get("port") in ("probe", probe_port),
             f"raft-elector {probe} must GET /healthz or /readyz on the probe port (the kubelet cannot reach localhost)")
    mounts = {m["name"]: m["mountPath"] for m in side.get("volumeMounts", [])}
    data_dir = value("RAFT_ELECTOR_DATA_DIR") or "/data"
    rule(any(mounts.get(c) == data_dir for c in claims), "the data dir must be a volumeClaimTemplate's mount")
    secret_file = value("RAFT_ELECTOR_PEER_SECRET_FILE")
    secret_volumes = {v["name"] for v in pod.get("volumes", []) if "secret" in v}
    rule(secret_file is not None and any(
        secret_file.startswith(mounts.get(v, "//") + "/") for v in secret_volumes),
        "the peer secret must be a file of a mounted Secret")
    shutdown = duration_seconds(value("RAFT_ELECTOR_SHUTDOWN_TIMEOUT") or "5s") or 5
    rule(pod.get("terminationGracePeriodSeconds", 30) >= shutdown + 5,
         "terminationGracePeriodSeconds must cover the shutdown timeout with margin")

    if failures:
        print(f"check_rules.py: {len(failures)} of {checked} rules broken:")
        for f in failures:
            print(f"  - {f}")
        return 1
    print(f"check_rules.py: all {checked} deployment rules hold")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
