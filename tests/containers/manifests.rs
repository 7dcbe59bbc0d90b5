//! The Kubernetes manifests in config/kubernetes/: a kustomize base and its overlays, each
//! rendered with `kubectl kustomize` and checked against the Kubernetes JSON schemas (strict,
//! 1.29 to 1.37, kubernetes-validate pinned and installed in a venv under target/) and the
//! deployment rules of check_rules.py, all run by config/kubernetes/validate.sh. No cluster.
//!
//! The base is the StatefulSet `web` with its Service, budget and network policy; the
//! overlays add an autoscaler, two replicas with a witness, and Prometheus scraping. The
//! mutation tests copy the tree, break one thing in one file, and expect the rendering of the
//! overlay that uses it to fail with the right complaint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testkit::docker::repo;

/// Every rendering validate.sh checks, with its objects and what check_rules.py reports.
/// (cert-manager's Certificates and Issuers have no Kubernetes schema: kubernetes-validate
/// warns and counts only the others; check_rules.py checks them.)
const RENDERINGS: [(&str, usize, &str); 6] = [
    ("base", 4, "(1 StatefulSet, 1 election)"),
    ("overlays/autoscaled", 5, "(1 StatefulSet, 1 election)"),
    ("overlays/prometheus", 5, "(1 StatefulSet, 1 election)"),
    ("overlays/witness", 6, "(2 StatefulSets, 1 election)"),
    ("overlays/peer-tls", 4, "(1 StatefulSet, 1 election)"),
    ("overlays/peer-tls-secret", 4, "(1 StatefulSet, 1 election)"),
];

fn validate(args: &[&str]) -> Output {
    validate_with(args, None)
}

/// Runs validate.sh, against the given Kubernetes versions only if any.
fn validate_with(args: &[&str], versions: Option<&str>) -> Output {
    let mut cmd = Command::new(repo().join("config/kubernetes/validate.sh"));
    if let Some(v) = versions {
        cmd.env("KUBERNETES_VERSIONS", v);
    }
    cmd.args(args)
        .output()
        .expect("run config/kubernetes/validate.sh")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}

/// Copies the base and the overlays into `dir`, replacing the first `from` in `file` (a path
/// below config/kubernetes/) by `to`; returns the copy of `render` (a kustomize directory)
/// to validate.
fn mutated(dir: &Path, file: &str, from: &str, to: &str, render: &str) -> PathBuf {
    let src = repo().join("config/kubernetes");
    for part in ["base", "overlays"] {
        copy_tree(&src.join(part), &dir.join(part));
    }
    let path = dir.join(file);
    let source = std::fs::read_to_string(&path).expect("manifest");
    assert!(source.contains(from), "{from:?} is not in {file}");
    std::fs::write(&path, source.replacen(from, to, 1)).expect("write");
    dir.join(render)
}

/// Validates the mutation and expects it to fail, with `complaint` in the output unless the
/// check is `--schema-only`.
fn expect_caught(file: &str, from: &str, to: &str, render: &str, complaint: Option<&str>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = mutated(dir.path(), file, from, to, render);
    let target = target.to_str().expect("utf-8 path");
    let args: Vec<&str> = match complaint {
        None => vec!["--schema-only", target],
        Some(_) => vec![target],
    };
    let out = validate_with(&args, Some("1.37.0"));
    let text = text(&out);
    assert!(
        !out.status.success(),
        "{file}: {from:?} -> {to:?} passed:\n{text}"
    );
    if let Some(complaint) = complaint {
        assert!(
            text.contains(complaint),
            "{file}: {from:?} -> {to:?}: expected a complaint about {complaint}:\n{text}"
        );
    }
}

#[test]
fn every_rendering_of_the_base_and_its_overlays_matches_the_schemas_and_the_rules() {
    let out = validate(&[]);
    let text = text(&out);
    eprintln!("{text}");
    assert!(out.status.success(), "validation failed:\n{text}");
    // validate.sh prints a "== DIR" heading per rendering, then its results.
    let sections: Vec<&str> = text.split("== ").skip(1).collect();
    assert_eq!(sections.len(), RENDERINGS.len(), "{text}");
    for (dir, objects, rules) in RENDERINGS {
        let section = sections
            .iter()
            .find(|s| s.lines().next().is_some_and(|l| l.ends_with(dir)))
            .unwrap_or_else(|| panic!("{dir} was not rendered and validated:\n{text}"));
        for version in ["1.29.0", "1.37.0"] {
            let line = format!("Kubernetes {version} (strict): {objects} resources passed");
            assert!(section.contains(&line), "{dir}: {section}");
        }
        assert!(
            section.contains(&format!("deployment rules hold {rules}")),
            "{dir}: {section}"
        );
    }
}

#[test]
fn the_schema_check_catches_typos() {
    for (file, from, to, render) in [
        (
            "base/service.yaml",
            "publishNotReadyAddresses",
            "publishNotReadyAdresses",
            "base",
        ),
        (
            "base/statefulset.yaml",
            "podManagementPolicy",
            "podManagmentPolicy",
            "base",
        ),
        (
            "base/statefulset.yaml",
            "replicas: 3",
            "replicas: three",
            "base",
        ),
        (
            "base/statefulset.yaml",
            "readOnlyRootFilesystem",
            "readOnlyRootFileSystem",
            "base",
        ),
        (
            "base/pdb.yaml",
            "unhealthyPodEvictionPolicy",
            "unhealthyPodEvictionPolice",
            "base",
        ),
        (
            "overlays/autoscaled/hpa.yaml",
            "scaleTargetRef",
            "scaleTargetReference",
            "overlays/autoscaled",
        ),
        (
            "overlays/autoscaled/hpa.yaml",
            "averageUtilization",
            "averageUtilisation",
            "overlays/autoscaled",
        ),
        (
            "overlays/witness/witness.yaml",
            "  replicas: 1\n",
            "  replicas: one\n",
            "overlays/witness",
        ),
        (
            "overlays/prometheus/networkpolicy-metrics.yaml",
            "namespaceSelector",
            "namespaceSelecter",
            "overlays/prometheus",
        ),
    ] {
        expect_caught(file, from, to, render, None);
    }
}

#[test]
fn the_rules_catch_what_the_schemas_allow() {
    for (file, from, to, complaint) in [
        ("base/service.yaml", "publishNotReadyAddresses: true", "publishNotReadyAddresses: false", "publishNotReadyAddresses"),
        ("base/statefulset.yaml", "podManagementPolicy: Parallel", "podManagementPolicy: OrderedReady", "Parallel"),
        ("base/statefulset.yaml", "value: \"3\"", "value: \"5\"", "RAFT_ELECTOR_REPLICAS"),
        ("base/pdb.yaml", "\n  maxUnavailable: 1\n", "\n  maxUnavailable: 2\n", "quorum"),
        ("base/statefulset.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation"),
        ("base/statefulset.yaml", "serviceName: web-peers", "serviceName: web", "serviceName"),
        ("base/statefulset.yaml", "value: 0.0.0.0:4042", "value: 127.0.0.1:4042", "pod's addresses"),
        ("base/statefulset.yaml", "port: probe", "port: 4040", "probe port"),
        // Every container, the example application's too, has probes and cpu/memory limits.
        (
            "base/statefulset.yaml",
            "          readinessProbe:\n            exec:\n              command: [\"test\", \"-e\", \"/tmp/alive\"]\n            periodSeconds: 5\n            timeoutSeconds: 2\n",
            "",
            "liveness and readiness probes",
        ),
        ("base/statefulset.yaml", "              cpu: 50m\n", "", "cpu requests and limits"),
        // Nothing relies on the default namespace.
        ("base/kustomization.yaml", "kind: Kustomization\n", "kind: Kustomization\nnamespace: default\n", "namespace 'default'"),
        ("base/statefulset.yaml", "web-peers.$(POD_NAMESPACE).svc", "web-peers.default.svc", "namespace 'default'"),
    ] {
        expect_caught(file, from, to, "base", Some(complaint));
    }
}

#[test]
fn the_rules_hold_the_autoscaler_the_budget_the_witness_and_the_metrics_policy_to_the_election() {
    let (auto, witness, prom) = (
        "overlays/autoscaled",
        "overlays/witness",
        "overlays/prometheus",
    );
    for (file, from, to, render, complaint) in [
        // A budget by count while the HPA moves the count.
        ("base/pdb.yaml", "\n  maxUnavailable: 1\n", "\n  minAvailable: 2\n", auto, "minAvailable by count"),
        // An autoscaler allowed below the first cluster's size, or scaling nothing.
        ("overlays/autoscaled/hpa.yaml", "minReplicas: 3", "minReplicas: 1", auto, "minReplicas"),
        ("overlays/autoscaled/hpa.yaml", "    name: web\n  minReplicas", "    name: webb\n  minReplicas", auto, "scaleTargetRef"),
        // The witness not a witness: a peer with no application that may lead.
        ("overlays/witness/witness.yaml", "value: \"true\"", "value: \"false\"", witness, "make it a witness"),
        ("overlays/witness/witness.yaml", "  replicas: 1\n", "  replicas: 2\n", witness, "one pod"),
        // The witness and the application pods disagree on the first cluster.
        (
            "overlays/witness/witness.yaml",
            "web-1=web-1.web-peers.$(POD_NAMESPACE).svc.cluster.local:4041,",
            "",
            witness,
            "different first clusters",
        ),
        // The witness's address under the wrong Service.
        (
            "overlays/witness/kustomization.yaml",
            "value: web-witness-0=web-witness-0.web-witness.",
            "value: web-witness-0=web-witness-0.web-peers.",
            witness,
            "stable name",
        ),
        // Fewer application pods than the first cluster names.
        (
            "overlays/witness/kustomization.yaml",
            "path: /spec/replicas\n        value: 2",
            "path: /spec/replicas\n        value: 1",
            witness,
            "never create",
        ),
        // A budget that leaves the witness out.
        ("base/pdb.yaml", "      app.kubernetes.io/part-of: web\n", "      app.kubernetes.io/name: web\n", witness, "PodDisruptionBudgets select"),
        // A network policy that cuts the witness off.
        (
            "base/networkpolicy.yaml",
            "        - podSelector:\n            matchLabels:\n              app.kubernetes.io/part-of: web",
            "        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: web",
            witness,
            "not admitted",
        ),
        // The metrics policy admitting the peer port to the monitoring namespace.
        ("overlays/prometheus/networkpolicy-metrics.yaml", "        - port: probe", "        - port: peer", prom, "admits more than the election's pods"),
    ] {
        expect_caught(file, from, to, render, Some(complaint));
    }
}

#[test]
fn the_rules_hold_peer_tls_to_its_files_names_and_issuer() {
    let (csi, secret) = ("overlays/peer-tls", "overlays/peer-tls-secret");
    for (file, from, to, render, complaint) in [
        // All three files or none.
        (
            "overlays/peer-tls/kustomization.yaml",
            "name: RAFT_ELECTOR_PEER_TLS_KEY",
            "name: RAFT_ELECTOR_PEER_TLS_KEY_UNUSED",
            csi,
            "go together",
        ),
        // A file the csi-driver does not write.
        (
            "overlays/peer-tls/kustomization.yaml",
            "/etc/raft-elector-tls/ca.crt",
            "/etc/raft-elector-tls/ca.pem",
            csi,
            "does not write",
        ),
        // A certificate without the pod's names: every peer would refuse it.
        (
            "overlays/peer-tls/kustomization.yaml",
            "dns-names: ${POD_NAME},${POD_NAME}.web-peers.",
            "dns-names: web.",
            csi,
            "dns-names must carry the peer's id",
        ),
        (
            "overlays/peer-tls/kustomization.yaml",
            "digital signature,server auth,client auth",
            "digital signature,server auth",
            csi,
            "key-usages",
        ),
        (
            "overlays/peer-tls/kustomization.yaml",
            "issuer-name: web-peer-ca",
            "issuer-name: web-peer-cb",
            csi,
            "not in these manifests",
        ),
        // Files that no volume of the sidecar holds.
        (
            "overlays/peer-tls/kustomization.yaml",
            "mountPath: /etc/raft-elector-tls",
            "mountPath: /etc/tls",
            csi,
            "must be a file of a mounted Secret",
        ),
        // cert-manager's objects: fields, one kind of issuer, references.
        (
            "overlays/peer-tls/ca/issuer.yaml",
            "  isCA: true",
            "  isCA: true\n  renewBfore: 24h",
            csi,
            "unknown fields",
        ),
        (
            "overlays/peer-tls/ca/issuer.yaml",
            "  isCA: true",
            "  isCA: false",
            csi,
            "no CA Certificate",
        ),
        (
            "overlays/peer-tls/ca/issuer.yaml",
            "  selfSigned: {}",
            "  selfSigned: {}\n  ca:\n    secretName: x",
            csi,
            "exactly one of",
        ),
        (
            "overlays/peer-tls-secret/certificate.yaml",
            "    - client auth\n",
            "",
            secret,
            "server auth and client auth",
        ),
        (
            "overlays/peer-tls-secret/certificate.yaml",
            "*.web-peers.jobs.svc",
            "*.web-peers.other.svc",
            secret,
            "must carry the peers' names",
        ),
        (
            "overlays/peer-tls-secret/certificate.yaml",
            "    name: web-peer-ca",
            "    name: nowhere",
            secret,
            "not in these manifests",
        ),
    ] {
        expect_caught(file, from, to, render, Some(complaint));
    }
}
