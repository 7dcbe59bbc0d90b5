//! The Kubernetes manifests in config/kubernetes/: the Kubernetes JSON schemas (strict, 1.29
//! to 1.37, kubernetes-validate pinned and installed in a venv under target/) and the
//! deployment rules of check_rules.py, both run by config/kubernetes/validate.sh. No cluster.
//!
//! Two examples live there: the StatefulSet `web` (statefulset.yaml, service.yaml, pdb.yaml,
//! networkpolicy.yaml, and hpa.yaml to autoscale it) and, in witness.yaml alone, two
//! application pods `pair` with a witness. Each is checked as a whole and on its own.

use std::path::Path;
use std::process::{Command, Output};

use testkit::docker::repo;

/// The StatefulSet `web` and what serves it.
const BASE: [&str; 4] = [
    "statefulset.yaml",
    "service.yaml",
    "pdb.yaml",
    "networkpolicy.yaml",
];

/// Every manifest: `web` with its autoscaler, and the two replicas with a witness.
const ALL: [&str; 6] = [
    "statefulset.yaml",
    "service.yaml",
    "pdb.yaml",
    "networkpolicy.yaml",
    "hpa.yaml",
    "witness.yaml",
];

/// The objects in ALL: 4 in the base files, the autoscaler, and the 6 of witness.yaml (two
/// StatefulSets, their two Services, a budget and a network policy).
const OBJECTS: usize = 11;

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

fn manifest(name: &str) -> String {
    std::fs::read_to_string(repo().join("config/kubernetes").join(name)).expect("manifest")
}

/// Copies the manifests `names` into `dir`, replacing `from` by `to` (once, in the file that
/// has it; `from` must not occur in a comment before the field it means).
fn mutated(dir: &Path, names: &[&str], from: &str, to: &str) -> Vec<String> {
    let mut hits = 0;
    let files = names
        .iter()
        .map(|name| {
            let source = manifest(name);
            hits += usize::from(source.contains(from));
            let path = dir.join(name);
            std::fs::write(&path, source.replacen(from, to, 1)).expect("write");
            path.to_str().expect("utf-8 path").to_string()
        })
        .collect();
    assert_eq!(hits, 1, "{from:?} must occur in exactly one manifest");
    files
}

#[test]
fn manifests_match_the_kubernetes_schemas_and_the_deployment_rules() {
    let out = validate(&[]);
    let text = text(&out);
    eprintln!("{text}");
    assert!(out.status.success(), "validation failed:\n{text}");
    for file in ALL {
        assert!(text.contains(file), "{file} was not validated:\n{text}");
    }
    for version in ["1.29.0", "1.37.0"] {
        let line = format!("Kubernetes {version} (strict): {OBJECTS} resources passed");
        assert!(text.contains(&line), "{text}");
    }
    assert!(
        text.contains("deployment rules hold (3 StatefulSets, 2 elections)"),
        "{text}"
    );
}

#[test]
fn each_example_passes_on_its_own() {
    for (names, what) in [
        (&BASE[..], "(1 StatefulSet, 1 election)"),
        (&ALL[..5], "(1 StatefulSet, 1 election)"),
        (&ALL[5..], "(2 StatefulSets, 1 election)"),
    ] {
        let files: Vec<String> = names
            .iter()
            .map(|name| {
                let path = repo().join("config/kubernetes").join(name);
                path.to_str().expect("utf-8 path").to_string()
            })
            .collect();
        let args: Vec<&str> = files.iter().map(String::as_str).collect();
        let out = validate_with(&args, Some("1.37.0"));
        let text = text(&out);
        assert!(out.status.success(), "{names:?} failed:\n{text}");
        assert!(text.contains(what), "{names:?}: expected {what}:\n{text}");
    }
}

#[test]
fn the_schema_check_catches_typos() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (from, to) in [
        ("publishNotReadyAddresses", "publishNotReadyAdresses"),
        ("podManagementPolicy", "podManagmentPolicy"),
        ("replicas: 3", "replicas: three"),
        ("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
        ("unhealthyPodEvictionPolicy", "unhealthyPodEvictionPolice"),
    ] {
        let files = mutated(dir.path(), &BASE, from, to);
        let mut args = vec!["--schema-only"];
        args.extend(files.iter().map(String::as_str));
        let out = validate_with(&args, Some("1.37.0"));
        assert!(
            !out.status.success(),
            "{from} -> {to} passed the schema check:\n{}",
            text(&out)
        );
    }
}

#[test]
fn the_rules_catch_what_the_schemas_allow() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (from, to, complaint) in [
        (
            "publishNotReadyAddresses: true",
            "publishNotReadyAddresses: false",
            "publishNotReadyAddresses",
        ),
        (
            "podManagementPolicy: Parallel",
            "podManagementPolicy: OrderedReady",
            "Parallel",
        ),
        ("value: \"3\"", "value: \"5\"", "RAFT_ELECTOR_REPLICAS"),
        (
            "\n  maxUnavailable: 1\n",
            "\n  maxUnavailable: 2\n",
            "quorum",
        ),
        (
            "allowPrivilegeEscalation: false",
            "allowPrivilegeEscalation: true",
            "allowPrivilegeEscalation",
        ),
        ("serviceName: web-peers", "serviceName: web", "serviceName"),
        (
            "value: 0.0.0.0:4042",
            "value: 127.0.0.1:4042",
            "pod's addresses",
        ),
        ("port: probe", "port: 4040", "probe port"),
    ] {
        let files = mutated(dir.path(), &BASE, from, to);
        let args: Vec<&str> = files.iter().map(String::as_str).collect();
        let out = validate_with(&args, Some("1.37.0"));
        let text = text(&out);
        assert!(!out.status.success(), "{from} -> {to} passed:\n{text}");
        assert!(
            text.contains(complaint),
            "{from} -> {to}: expected a complaint about {complaint}:\n{text}"
        );
    }
}

#[test]
fn the_schema_check_catches_typos_in_the_autoscaler_and_the_witness() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (names, from, to) in [
        (&ALL[4..5], "scaleTargetRef", "scaleTargetReference"),
        (&ALL[4..5], "averageUtilization", "averageUtilisation"),
        (
            &ALL[4..5],
            "stabilizationWindowSeconds",
            "stabilisationWindowSeconds",
        ),
        (
            &ALL[5..],
            "unhealthyPodEvictionPolicy",
            "unhealthyPodEvictionPolice",
        ),
        (&ALL[5..], "  replicas: 1\n", "  replicas: one\n"),
    ] {
        let files = mutated(dir.path(), names, from, to);
        let mut args = vec!["--schema-only"];
        args.extend(files.iter().map(String::as_str));
        let out = validate_with(&args, Some("1.37.0"));
        assert!(
            !out.status.success(),
            "{from} -> {to} passed the schema check:\n{}",
            text(&out)
        );
    }
}

#[test]
fn the_rules_hold_the_autoscaler_the_budget_and_the_witness_to_the_election() {
    let dir = tempfile::tempdir().expect("temp dir");
    let web_autoscaled = &ALL[..5];
    let pair = &ALL[5..];
    for (names, from, to, complaint) in [
        // A budget by count while the HPA moves the count.
        (
            web_autoscaled,
            "\n  maxUnavailable: 1\n",
            "\n  minAvailable: 2\n",
            "minAvailable by count",
        ),
        // An autoscaler allowed below the first cluster's size.
        (web_autoscaled, "minReplicas: 3", "minReplicas: 1", "minReplicas"),
        (
            web_autoscaled,
            "    name: web\n  minReplicas",
            "    name: webb\n  minReplicas",
            "scaleTargetRef",
        ),
        // The witness not a witness: a peer with no application that may lead.
        (pair, "value: \"true\"", "value: \"false\"", "make it a witness"),
        (pair, "  replicas: 1\n", "  replicas: 2\n", "one pod"),
        // The witness and the application pods disagree on the first cluster.
        (
            pair,
            "pair-1=pair-1.pair-peers.$(POD_NAMESPACE).svc.cluster.local:4041,",
            "",
            "different first clusters",
        ),
        // The witness's address under the wrong Service.
        (
            pair,
            "value: pair-witness-0=pair-witness-0.pair-witness.",
            "value: pair-witness-0=pair-witness-0.pair-peers.",
            "stable name",
        ),
        // Fewer application pods than the first cluster names.
        (pair, "  replicas: 2\n", "  replicas: 1\n", "never create"),
        // A budget that leaves the witness out.
        (
            pair,
            "      app.kubernetes.io/part-of: pair\n  unhealthy",
            "      app.kubernetes.io/name: pair\n  unhealthy",
            "PodDisruptionBudgets select",
        ),
        // A network policy that cuts the witness off.
        (
            pair,
            "        - podSelector:\n            matchLabels:\n              app.kubernetes.io/part-of: pair",
            "        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: pair",
            "not admitted",
        ),
    ] {
        let files = mutated(dir.path(), names, from, to);
        let args: Vec<&str> = files.iter().map(String::as_str).collect();
        let out = validate_with(&args, Some("1.37.0"));
        let text = text(&out);
        assert!(!out.status.success(), "{from} -> {to} passed:\n{text}");
        assert!(
            text.contains(complaint),
            "{from} -> {to}: expected a complaint about {complaint}:\n{text}"
        );
    }
}
