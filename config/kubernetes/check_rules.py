"""Deployment rules the JSON schemas cannot see: names and labels that must match across the
manifests, the raft-elector sidecar's configuration, the first cluster every peer of an
election must agree on, the restricted security context, probes and resources on every
container, nothing relying on the `default` namespace, and peer TLS: the three files from a
volume that holds them, certificates that carry the peers' names, and cert-manager's own objects
(Certificates, Issuers), which no Kubernetes schema covers.

validate.sh runs it on each rendering of the kustomize base and of every overlay (one file of
several documents each). Every StatefulSet is checked with the objects that serve it (the
Service its serviceName names, the PodDisruptionBudget and NetworkPolicies that select its
pods, the HorizontalPodAutoscaler that scales it); every election (the StatefulSets whose
raft-elector containers share RAFT_ELECTOR_ELECTION, e.g. web and web-witness in the witness
overlay) as a whole.

Run with the venv's Python (PyYAML comes with kubernetes-validate):
    python check_rules.py RENDERED.yaml...
Exits 1 and lists every broken rule.
"""

import re
import sys

import yaml

failures = []
checked = 0

DEFAULT_PEER_PORT = 4041
DEFAULT_MAX_VOTERS = 5


def rule(ok, message):
    global checked
    checked += 1
    if not ok:
        failures.append(message)


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def duration_seconds(text):
    match = re.fullmatch(r"(\d+)(ms|s|m)", text)
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2)
    return {"ms": value / 1000, "s": value, "m": value * 60}[unit]


def name_of(doc):
    return doc.get("metadata", {}).get("name")


def parse_peers(text):
    """RAFT_ELECTOR_PEERS: "name=host:port,..." -> {name: (host, port)}; None if malformed."""
    peers = {}
    for entry in (text or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, addr = entry.partition("=")
        host, colon, port = addr.rpartition(":")
        if not sep or not colon or not port.isdigit() or name.strip() in peers:
            return None
        peers[name.strip()] = (host.strip(), int(port))
    return peers


class Peers:
    """One StatefulSet of peers: its pods, its raft-elector container and what it derives."""

    def __init__(self, sts, hpas):
        self.sts = sts
        self.name = name_of(sts)
        self.spec = sts.get("spec", {})
        self.pod = self.spec.get("template", {}).get("spec", {})
        self.labels = self.spec.get("template", {}).get("metadata", {}).get("labels", {})
        self.containers = self.pod.get("containers", []) + self.pod.get("initContainers", [])
        sidecars = [c for c in self.containers if c.get("name") == "raft-elector"]
        self.sidecar_count = len(sidecars)
        self.side = sidecars[0] if sidecars else {}
        self.env = {e["name"]: e for e in self.side.get("env", [])}
        self.hpa = next((h for h in hpas if h.get("spec", {}).get("scaleTargetRef", {}).get("name") == self.name
                         and h["spec"]["scaleTargetRef"].get("kind") == "StatefulSet"), None)
        self.replicas = self.spec.get("replicas")
        hpa_min = self.hpa.get("spec", {}).get("minReplicas", 1) if self.hpa else None
        # The pods a fresh apply runs (the HPA raises a count below its minReplicas), and the
        # fewest it may run for long (what a disruption budget must keep a quorum of).
        start = self.replicas if self.replicas is not None else 1
        self.created = max(start, hpa_min) if hpa_min is not None else start
        self.fewest = hpa_min if hpa_min is not None else start
        ports = {p.get("name"): p.get("containerPort") for p in self.side.get("ports", [])}
        self.container_peer_port = ports.get("peer")
        self.container_probe_port = ports.get("probe")
        self.witness = (self.value("RAFT_ELECTOR_WITNESS") or "").lower() in ("true", "1", "yes", "on")
        self.election = self.value("RAFT_ELECTOR_ELECTION")
        self.max_voters = int(self.value("RAFT_ELECTOR_MAX_VOTERS") or DEFAULT_MAX_VOTERS)
        self.secret = next((v["secret"].get("secretName") for v in self.pod.get("volumes", [])
                            if "secret" in v and any(m.get("name") == v.get("name")
                                                     for m in self.side.get("volumeMounts", []))), None)

    def value(self, key):
        return self.env.get(key, {}).get("value")

    def peer_port(self):
        return int(self.value("RAFT_ELECTOR_PEER_PORT") or DEFAULT_PEER_PORT)

    def first_cluster(self):
        """The first cluster's members as this StatefulSet's peers derive them:
        {name: (host, port)}, or None when RAFT_ELECTOR_PEERS cannot be read."""
        members = {}
        replicas = self.value("RAFT_ELECTOR_REPLICAS")
        if replicas is not None and replicas.isdigit():
            domain = (self.value("RAFT_ELECTOR_PEER_DOMAIN") or "").strip(".")
            for i in range(int(replicas)):
                members[f"{self.name}-{i}"] = (f"{self.name}-{i}.{domain}", self.peer_port())
        listed = parse_peers(self.value("RAFT_ELECTOR_PEERS"))
        if listed is None:
            return None
        for name, addr in listed.items():
            if members.get(name, addr) != addr:
                return None
            members[name] = addr
        return members


def check_pod(p):
    """Pod-level settings and every container: the restricted Pod Security Standard, resources."""
    pod, n = p.pod, p.name
    psc = pod.get("securityContext", {})
    rule(pod.get("automountServiceAccountToken") is False, f"{n}: no service account token is needed")
    rule(pod.get("enableServiceLinks") is False, f"{n}: enableServiceLinks must be false (RAFT_ELECTOR_* collisions)")
    rule(not pod.get("hostNetwork") and not pod.get("hostPID"), f"{n}: no host namespaces")
    rule(psc.get("fsGroup") is not None, f"{n}: fsGroup is needed for the non-root peer to write its volume")
    for c in p.containers:
        name = f"{n}/{c.get('name')}"
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
        rule("cpu" in res.get("requests", {}) and "cpu" in res.get("limits", {}),
             f"{name}: cpu requests and limits")
        rule(bool(c.get("livenessProbe")) and bool(c.get("readinessProbe")),
             f"{name}: liveness and readiness probes")


def check_sidecar(p, svc):
    """The raft-elector container of one StatefulSet."""
    n, side, value = p.name, p.side, p.value
    rule(p.sidecar_count == 1, f"{n}: exactly one container named raft-elector")
    rule(bool(p.election), f"{n}: RAFT_ELECTOR_ELECTION must name the election")
    if p.witness:
        rule(len(p.containers) == 1,
             f"{n}: a witness runs no application (it is never named leader): raft-elector must be its only container")
        rule(value("RAFT_ELECTOR_REPLICAS") is None and value("RAFT_ELECTOR_PEERS"),
             f"{n}: a witness lists the election's peers in RAFT_ELECTOR_PEERS (RAFT_ELECTOR_REPLICAS "
             "would derive them from the witness's own name)")
        rule(p.replicas == 1 and p.hpa is None, f"{n}: a witness StatefulSet has one pod, not autoscaled")
    else:
        rule(len(p.containers) > 1,
             f"{n}: runs no application next to raft-elector: make it a witness (RAFT_ELECTOR_WITNESS=true), "
             "or a leader may be elected where no job runs")
    if value("RAFT_ELECTOR_REPLICAS") is not None:
        rule((value("RAFT_ELECTOR_PEER_DOMAIN") or "").startswith(f"{p.spec.get('serviceName')}."),
             f"{n}: RAFT_ELECTOR_PEER_DOMAIN must be the headless Service's domain")
        rule(p.container_peer_port == p.peer_port(), f"{n}: container port 'peer' must be the peer port")
    id_source = value("RAFT_ELECTOR_ID")
    downward = p.env.get((id_source or "").strip("$()"), {}).get("valueFrom", {}).get("fieldRef", {})
    rule(downward.get("fieldPath") == "metadata.name", f"{n}: the peer id must be the pod name (downward API)")
    rule(p.max_voters % 2 == 1 and 1 <= p.max_voters <= 9, f"{n}: RAFT_ELECTOR_MAX_VOTERS must be odd, 1 to 9")
    for port in svc.get("spec", {}).get("ports", []):
        rule(port.get("port") == p.container_peer_port and port.get("targetPort") in ("peer", p.container_peer_port),
             f"{n}: the Service must carry the peer port")
    http = value("RAFT_ELECTOR_HTTP") or "127.0.0.1:4040"
    rule(http.startswith("127.") or http.startswith("localhost:"),
         f"{n}: the application API must stay on localhost (use the probe listener for probes)")
    probe_http = value("RAFT_ELECTOR_PROBE_HTTP") or ""
    probe_port = int(probe_http.rsplit(":", 1)[1]) if ":" in probe_http else None
    rule(probe_port is not None and not probe_http.startswith("127."),
         f"{n}: RAFT_ELECTOR_PROBE_HTTP must listen on the pod's addresses, where the kubelet probes")
    rule(p.container_probe_port == probe_port, f"{n}: container port 'probe' must be the probe listener's port")
    for probe in ("livenessProbe", "readinessProbe"):
        get = side.get(probe, {}).get("httpGet", {})
        rule(get.get("path") in ("/healthz", "/readyz") and get.get("port") in ("probe", probe_port),
             f"{n}: raft-elector {probe} must GET /healthz or /readyz on the probe port "
             "(the kubelet cannot reach localhost)")
    claims = [t["metadata"]["name"] for t in p.spec.get("volumeClaimTemplates", [])]
    mounts = {m["name"]: m["mountPath"] for m in side.get("volumeMounts", [])}
    data_dir = value("RAFT_ELECTOR_DATA_DIR") or "/data"
    rule(any(mounts.get(c) == data_dir for c in claims), f"{n}: the data dir must be a volumeClaimTemplate's mount")
    secret_file = value("RAFT_ELECTOR_PEER_SECRET_FILE")
    secret_volumes = {v["name"] for v in p.pod.get("volumes", []) if "secret" in v}
    rule(secret_file is not None and any(
        secret_file.startswith(mounts.get(v, "//") + "/") for v in secret_volumes),
        f"{n}: the peer secret must be a file of a mounted Secret")
    shutdown = duration_seconds(value("RAFT_ELECTOR_SHUTDOWN_TIMEOUT") or "5s") or 5
    rule(p.pod.get("terminationGracePeriodSeconds", 30) >= shutdown + 5,
         f"{n}: terminationGracePeriodSeconds must cover the shutdown timeout (hand-off and leave) with margin")


TLS_FLAGS = ("RAFT_ELECTOR_PEER_TLS_CERT", "RAFT_ELECTOR_PEER_TLS_KEY", "RAFT_ELECTOR_PEER_TLS_CA")
CSI_DRIVER = "csi.cert-manager.io"
# The files the csi-driver writes unless its *-file attributes rename them.
CSI_FILES = {"RAFT_ELECTOR_PEER_TLS_CERT": ("certificate-file", "tls.crt"),
             "RAFT_ELECTOR_PEER_TLS_KEY": ("privatekey-file", "tls.key"),
             "RAFT_ELECTOR_PEER_TLS_CA": ("ca-file", "ca.crt")}
ISSUER_TYPES = ("selfSigned", "ca", "acme", "vault", "venafi")
CERTIFICATE_FIELDS = {
    "secretName", "commonName", "dnsNames", "ipAddresses", "uris", "emailAddresses", "duration",
    "renewBefore", "usages", "privateKey", "issuerRef", "isCA", "subject", "secretTemplate",
    "keystores", "revisionHistoryLimit", "additionalOutputFormats", "literalSubject",
    "encodeUsagesInRequest", "nameConstraints", "otherNames", "renewBeforePercentage",
    "signatureAlgorithm",
}


def both_auth_usages(usages):
    """Peers are servers and clients both: usages, when given, must allow either."""
    return not usages or {"server auth", "client auth"} <= {u.strip() for u in usages}


def check_cert_manager(docs):
    """cert-manager's own objects, which no Kubernetes schema covers: the fields of a
    Certificate, one kind of Issuer, and references that resolve within these manifests."""
    issuers = {name_of(d): d for d in docs if d.get("kind") in ("Issuer", "ClusterIssuer")}
    certificates = [d for d in docs if d.get("kind") == "Certificate"]
    for d in docs:
        if d.get("kind") in ("Issuer", "ClusterIssuer", "Certificate"):
            rule(d.get("apiVersion") == "cert-manager.io/v1", f"{d.get('kind')} {name_of(d)}: apiVersion must be cert-manager.io/v1")
    for name, d in issuers.items():
        types = [t for t in ISSUER_TYPES if t in d.get("spec", {})]
        rule(len(types) == 1, f"Issuer {name}: exactly one of {', '.join(ISSUER_TYPES)}")
        ca = d.get("spec", {}).get("ca")
        if ca is not None:
            secret = ca.get("secretName")
            rule(any(c.get("spec", {}).get("secretName") == secret and c["spec"].get("isCA") for c in certificates)
                 or not certificates,
                 f"Issuer {name}: its CA secret {secret!r} is no CA Certificate's (isCA) secretName")
    for c in certificates:
        spec, name = c.get("spec", {}), name_of(c)
        unknown = sorted(set(spec) - CERTIFICATE_FIELDS)
        rule(not unknown, f"Certificate {name}: unknown fields {unknown}")
        rule(bool(spec.get("secretName")), f"Certificate {name}: secretName is required")
        ref = spec.get("issuerRef", {}).get("name")
        rule(ref in issuers, f"Certificate {name}: its issuer {ref!r} is not in these manifests")
        rule(both_auth_usages(spec.get("usages")), f"Certificate {name}: usages must include server auth and client auth")


def check_peer_tls(p, docs):
    """--peer-tls-*: all three files or none, each a file of a volume that holds them (a Secret
    or cert-manager's csi-driver), with names the peers' certificates must carry."""
    n, value = p.name, p.value
    given = [f for f in TLS_FLAGS if value(f)]
    rule(len(given) in (0, 3), f"{n}: {', '.join(TLS_FLAGS)} go together (given: {given})")
    if len(given) != 3:
        return
    rule((value("RAFT_ELECTOR_PEER_TRANSPORT") or "stream") == "stream",
         f"{n}: peer TLS carries peer streams only (RAFT_ELECTOR_PEER_TRANSPORT must stay stream)")
    mounts = {m["name"]: m["mountPath"].rstrip("/") for m in p.side.get("volumeMounts", [])}
    volumes = {v.get("name"): v for v in p.pod.get("volumes", [])}
    service = p.spec.get("serviceName")
    secrets = set()
    for flag in TLS_FLAGS:
        path = value(flag)
        holder = next((v for v, m in mounts.items() if path.startswith(m + "/")), None)
        volume = volumes.get(holder, {})
        rule("secret" in volume or volume.get("csi", {}).get("driver") == CSI_DRIVER,
             f"{n}: {flag} must be a file of a mounted Secret or {CSI_DRIVER} volume")
        file = path[len(mounts.get(holder, "")) + 1:]
        if "csi" in volume:
            attrs = volume["csi"].get("volumeAttributes", {})
            attr, default = CSI_FILES[flag]
            rule(file == attrs.get(f"{CSI_DRIVER}/{attr}", default),
                 f"{n}: {flag} names {file!r}, which the csi-driver does not write")
            issuer = attrs.get(f"{CSI_DRIVER}/issuer-name")
            kind = attrs.get(f"{CSI_DRIVER}/issuer-kind", "Issuer")
            rule(any(d.get("kind") == kind and name_of(d) == issuer for d in docs),
                 f"{n}: the csi-driver's issuer {kind} {issuer!r} is not in these manifests")
            names = [x.strip() for x in attrs.get(f"{CSI_DRIVER}/dns-names", "").split(",")]
            rule("${POD_NAME}" in names or any(x.startswith(f"${{POD_NAME}}.{service}.") for x in names),
                 f"{n}: the csi-driver's dns-names must carry the peer's id (${{POD_NAME}}) or its "
                 f"StatefulSet DNS name (${{POD_NAME}}.{service}...)")
            usages = attrs.get(f"{CSI_DRIVER}/key-usages")
            rule(both_auth_usages(usages.split(",") if usages else None),
                 f"{n}: the csi-driver's key-usages must include server auth and client auth")
        elif "secret" in volume:
            secret = volume["secret"].get("secretName")
            items = volume["secret"].get("items")
            rule(items is None or any(i.get("path") == file for i in items),
                 f"{n}: {flag} names {file!r}, which the Secret volume does not project")
            secrets.add(secret)
    namespace = p.sts.get("metadata", {}).get("namespace")
    domain = (value("RAFT_ELECTOR_PEER_DOMAIN") or "").replace("$(POD_NAMESPACE)", namespace or "$(POD_NAMESPACE)")
    for c in [d for d in docs if d.get("kind") == "Certificate" and d.get("spec", {}).get("secretName") in secrets]:
        names = c["spec"].get("dnsNames", [])
        rule(f"*.{domain}" in names or any(x.startswith(f"{p.name}-") for x in names),
             f"{n}: Certificate {name_of(c)} must carry the peers' names (*.{domain} or "
             f"{p.name}-N), or every peer refuses it")


def check_statefulset(p, services):
    n, spec = p.name, p.spec
    rule(spec.get("podManagementPolicy") == "Parallel", f"{n}: podManagementPolicy must be Parallel")
    rule(selects(spec.get("selector", {}).get("matchLabels"), p.labels), f"{n}: StatefulSet selector does not match its pods")
    svc = services.get(spec.get("serviceName"), {})
    rule(bool(svc), f"{n}: serviceName {spec.get('serviceName')!r} is not a Service of these manifests")
    sspec = svc.get("spec", {})
    rule(sspec.get("clusterIP") == "None", f"{n}: the peer Service must be headless (clusterIP: None)")
    rule(sspec.get("publishNotReadyAddresses") is True, f"{n}: the peer Service needs publishNotReadyAddresses: true")
    rule(selects(sspec.get("selector"), p.labels), f"{n}: the peer Service does not select the pods")
    check_pod(p)
    check_sidecar(p, svc)
    return svc


def check_election(election, group):
    """The StatefulSets of one election: one first cluster, which a fresh apply creates."""
    e = f"election {election!r}"
    clusters = {p.name: p.first_cluster() for p in group}
    for name, members in clusters.items():
        rule(members is not None, f"{name}: RAFT_ELECTOR_PEERS is not a list of NAME=HOST:PORT "
                                  "agreeing with the names RAFT_ELECTOR_REPLICAS derives")
    names = {name: frozenset(m or {}) for name, m in clusters.items()}
    rule(len(set(names.values())) == 1,
         f"{e}: its StatefulSets start with different first clusters "
         f"({'; '.join(f'{k}: {sorted(v)}' for k, v in sorted(names.items()))}): peers with different "
         "RAFT_ELECTOR_REPLICAS/RAFT_ELECTOR_PEERS never bootstrap together")
    first = next((m for m in clusters.values() if m), {})
    pods = {f"{p.name}-{i}": p for p in group for i in range(p.created)}
    missing = sorted(set(first) - set(pods))
    rule(not missing,
         f"{e}: the first cluster (RAFT_ELECTOR_REPLICAS, RAFT_ELECTOR_PEERS) names {', '.join(missing)}, "
         "which these manifests never create: it could never form")
    for member, (host, port) in sorted(first.items()):
        owner = pods.get(member)
        if owner is None:
            continue
        svc = owner.spec.get("serviceName")
        rule(host.startswith(f"{member}.{svc}.") and port == owner.container_peer_port,
             f"{e}: {member} is reached at {host}:{port}, not at its stable name under the headless "
             f"Service {svc} and its 'peer' port ({owner.container_peer_port})")
    witnesses = [m for m in first if m in pods and pods[m].witness]
    rule(len(first) >= 3 and len(first) % 2 == 1,
         f"{e}: the first cluster has {len(first)} voters: use an odd number, 3 or more "
         "(two application pods need a witness)")
    rule(len(first) - len(witnesses) > len(witnesses),
         f"{e}: more witnesses than application peers: the witnesses never lead")
    max_voters = {p.max_voters for p in group}
    rule(len(max_voters) == 1, f"{e}: every peer needs the same RAFT_ELECTOR_MAX_VOTERS")
    rule(len(first) <= min(max_voters), f"{e}: the first cluster has more voters than RAFT_ELECTOR_MAX_VOTERS")
    rule(len({p.secret for p in group}) == 1, f"{e}: every peer must mount the same peer Secret")


def check_budget(pdb, covered):
    """A PodDisruptionBudget over the pods of `covered` StatefulSets."""
    n = f"PodDisruptionBudget {name_of(pdb)}"
    pspec = pdb.get("spec", {})
    # The voters among the fewest pods the StatefulSets run (learners beyond the cap).
    cap = min((p.max_voters for p in covered), default=DEFAULT_MAX_VOTERS)
    voters = min(sum(p.fewest for p in covered), cap)
    quorum = voters // 2 + 1
    moving = [p.name for p in covered if p.hpa is not None]
    if "maxUnavailable" in pspec:
        rule(isinstance(pspec["maxUnavailable"], int) and voters - pspec["maxUnavailable"] >= quorum,
             f"{n}: maxUnavailable would allow losing the quorum of {voters} voters")
    else:
        min_available = pspec.get("minAvailable")
        rule(not moving,
             f"{n}: minAvailable by count is wrong when the replica count moves ({', '.join(moving)} has a "
             "HorizontalPodAutoscaler): it blocks drains at the lowest count and lets many voters go at "
             "the highest; use maxUnavailable: 1")
        rule(isinstance(min_available, int) and min_available >= quorum,
             f"{n}: minAvailable is below a quorum of {voters} voters")
        rule(isinstance(min_available, int) and min_available < sum(p.fewest for p in covered),
             f"{n}: minAvailable equals the pod count: it blocks every drain")


def check_network_policy(netpol, p, elections):
    """Ingress rules for the peer port admit exactly the election's pods; a rule that admits
    only the probe port (/metrics, /healthz, /readyz) may admit others, e.g. Prometheus."""
    n = f"NetworkPolicy {name_of(netpol)}"
    nspec = netpol.get("spec", {})
    rule("Ingress" in nspec.get("policyTypes", []), f"{n}: the NetworkPolicy must restrict ingress")
    same = elections.get(p.election, [p])
    probe_ports = ("probe", p.container_probe_port)
    for rule_ in nspec.get("ingress", []):
        rule(rule_.get("from"), f"{n}: a NetworkPolicy ingress rule without 'from' admits everyone")
        ports = rule_.get("ports", [])
        if ports and all(port.get("port") in probe_ports for port in ports):
            continue
        for peer in rule_.get("from", []):
            only_pods = set(peer) == {"podSelector"}
            selector = peer.get("podSelector", {}).get("matchLabels")
            others = [o.name for group in elections.values() for o in group
                      if o.election != p.election and selects(selector, o.labels)]
            rule(only_pods and selector and not others,
                 f"{n}: NetworkPolicy admits more than the election's pods: {peer}")
            cut = [o.name for o in same if not selects(selector, o.labels)]
            rule(not cut, f"{n}: peer traffic from {', '.join(cut)} (same election) is not admitted")
        for port in ports:
            rule(port.get("port") in ("peer", p.container_peer_port),
                 f"{n}: NetworkPolicy admits a port other than the peer port: {port}")


def strings(value):
    """Every string in a document, recursively."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def check_namespaces(docs):
    """Nothing relies on the `default` namespace: no object names it, no address is in it."""
    for d in docs:
        n = f"{d.get('kind')} {name_of(d)}"
        rule(d.get("metadata", {}).get("namespace") != "default", f"{n}: names the namespace 'default'")
        rule(not any(".default.svc" in s for s in strings(d)),
             f"{n}: an address in the namespace 'default' (use $(POD_NAMESPACE))")


def check_autoscaler(hpa, sets):
    n = f"HorizontalPodAutoscaler {name_of(hpa)}"
    spec = hpa.get("spec", {})
    ref = spec.get("scaleTargetRef", {})
    target = sets.get(ref.get("name")) if ref.get("kind") == "StatefulSet" else None
    rule(target is not None and ref.get("apiVersion") == "apps/v1",
         f"{n}: scaleTargetRef names no StatefulSet (apps/v1) of these manifests")
    if target is None:
        return
    minimum = spec.get("minReplicas", 1)
    first = int(target.value("RAFT_ELECTOR_REPLICAS") or 0)
    rule(minimum >= 3 and minimum >= first,
         f"{n}: minReplicas must be at least 3 (one voter may crash) and at least RAFT_ELECTOR_REPLICAS "
         f"({first}: the first cluster must be able to form)")
    rule(spec.get("maxReplicas", 0) >= minimum, f"{n}: maxReplicas is below minReplicas")


def main(paths):
    docs = []
    for path in paths:
        with open(path) as f:
            docs.extend(d for d in yaml.safe_load_all(f) if d)
    kind = lambda k: [d for d in docs if d.get("kind") == k]
    hpas = kind("HorizontalPodAutoscaler")
    sets = {name_of(d): Peers(d, hpas) for d in kind("StatefulSet")}
    services = {name_of(d): d for d in kind("Service")}
    pdbs, netpols = kind("PodDisruptionBudget"), kind("NetworkPolicy")
    rule(bool(sets), "no StatefulSet of peers")
    check_namespaces(docs)

    elections = {}
    for p in sets.values():
        elections.setdefault(p.election, []).append(p)
    served = set()
    check_cert_manager(docs)
    for p in sets.values():
        check_peer_tls(p, docs)
        served.add(id(check_statefulset(p, services)))
        budgets = [d for d in pdbs if selects(d.get("spec", {}).get("selector", {}).get("matchLabels"), p.labels)]
        rule(len(budgets) == 1, f"{p.name}: {len(budgets)} PodDisruptionBudgets select the pods, not one "
                                "(the PDB does not select the pods?)")
        policies = [d for d in netpols if selects(d.get("spec", {}).get("podSelector", {}).get("matchLabels"), p.labels)]
        rule(bool(policies), f"{p.name}: the NetworkPolicy does not select the pods")
        for d in policies:
            check_network_policy(d, p, elections)
    for election, group in sorted(elections.items(), key=lambda kv: str(kv[0])):
        check_election(election, group)
    for d in pdbs:
        selector = d.get("spec", {}).get("selector", {}).get("matchLabels")
        covered = [p for p in sets.values() if selects(selector, p.labels)]
        rule(bool(covered), f"PodDisruptionBudget {name_of(d)} selects no pod of these manifests")
        check_budget(d, covered)
    for d in netpols:
        selector = d.get("spec", {}).get("podSelector", {}).get("matchLabels")
        rule(any(selects(selector, p.labels) for p in sets.values()),
             f"NetworkPolicy {name_of(d)} selects no pod of these manifests")
    for d in services.values():
        rule(id(d) in served, f"Service {name_of(d)} is no StatefulSet's serviceName")
    targets = [h.get("spec", {}).get("scaleTargetRef", {}).get("name") for h in hpas]
    rule(len(targets) == len(set(targets)), "two HorizontalPodAutoscalers scale the same StatefulSet")
    for h in hpas:
        check_autoscaler(h, sets)

    if failures:
        print(f"check_rules.py: {len(failures)} of {checked} rules broken:")
        for f in failures:
            print(f"  - {f}")
        return 1
    plural = lambda k, word: f"{k} {word}" + ("" if k == 1 else "s")
    print(f"check_rules.py: all {checked} deployment rules hold "
          f"({plural(len(sets), 'StatefulSet')}, {plural(len(elections), 'election')})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
