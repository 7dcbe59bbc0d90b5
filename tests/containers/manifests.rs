//! The Kubernetes manifests in config/kubernetes/: the Kubernetes JSON schemas (strict, 1.29
//! to 1.37, kubernetes-validate pinned and installed in a venv under target/) and the
//! deployment rules of check_rules.py, both run by config/kubernetes/validate.sh. No cluster.

use std::path::Path;
use std::process::{Command, Output};

use testkit::docker::repo;

const MANIFESTS: [&str; 4] = [
    "statefulset.yaml",
    "service.yaml",
    "pdb.yaml",
    "networkpolicy.yaml",
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

fn manifest(name: &str) -> String {
    std::fs::read_to_string(repo().join("config/kubernetes").join(name)).expect("manifest")
}

/// Copies the manifests into `dir`, replacing `from` by `to` (once, in the file that has it;
/// `from` must not occur in a comment before the field it means).
fn mutated(dir: &Path, from: &str, to: &str) -> Vec<String> {
    let mut hits = 0;
    let files = MANIFESTS
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
    for file in MANIFESTS {
        assert!(text.contains(file), "{file} was not validated:\n{text}");
    }
    assert!(
        text.contains("Kubernetes 1.29.0 (strict): 4 resources passed"),
        "{text}"
    );
    assert!(
        text.contains("Kubernetes 1.37.0 (strict): 4 resources passed"),
        "{text}"
    );
    assert!(text.contains("deployment rules hold"), "{text}");
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
        let files = mutated(dir.path(), from, to);
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
        let files = mutated(dir.path(), from, to);
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
