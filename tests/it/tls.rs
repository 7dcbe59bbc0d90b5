//! Peer TLS against real peers, with a CA and certificates made by the test: peers with
//! certificates of their CA elect and talk over TLS streams only; a peer whose certificate is
//! of another CA, expired, or for another name is refused and counted, and takes no part;
//! rotated files (a new CA included) are picked up without a restart; with a peer secret as
//! well, both must hold; flags and files that cannot work stop the peer at start with what to
//! fix.

use std::process::Command;
use std::time::{Duration, Instant};

use testkit::tls::{write_files, TestCa, TlsPaths, Validity};
use testkit::{metric, raw, Ask, Cluster};

use crate::{secret_file, spec, EXE};

fn tls_spec(n: usize) -> testkit::Spec {
    let mut spec = spec(n);
    spec.tls = true;
    spec
}

/// The count of peer requests peer `i` refused for `reason`.
async fn refused(c: &Cluster, i: usize, reason: &str) -> f64 {
    let Some((_, text)) = c.get(i, "/metrics").await else {
        return 0.0;
    };
    let name = format!("raft_elector_peer_requests_refused_total{{reason=\"{reason}\"}}");
    metric(&text, &name).unwrap_or(0.0)
}

/// Waits until one of `among` counts more refusals for `reason` than `before` says.
async fn refusals_grow(c: &Cluster, among: &[usize], reason: &str, before: &[f64]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for (k, &i) in among.iter().enumerate() {
            if refused(c, i, reason).await > before[k] {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no refusal counted as {reason:?} by {among:?} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn counts(c: &Cluster, among: &[usize], reason: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for &i in among {
        out.push(refused(c, i, reason).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_with_certificates_of_their_ca_elect_over_tls_streams_and_refuse_plain_connections() {
    let c = Cluster::start(tls_spec(3));
    let (leader, term) = c
        .settled_leader(
            &c.all(),
            Duration::from_millis(500),
            Duration::from_secs(15),
        )
        .await;
    // Every follower serves the leader's stream (opened over TLS).
    for i in c.all_but(leader) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.metric(i, "raft_elector_peer_streams").await < Some(1.0) {
            assert!(Instant::now() < deadline, "peer {i} serves no stream");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // A plain HTTP request to a peer port gets no HTTP answer, and is counted.
    let before = refused(&c, leader, "tls").await;
    assert_no_plain_answer(&c, leader);
    refusals_grow(&c, &[leader], "tls", &[before]).await;
    // Nothing moved.
    assert_eq!(
        c.agreed_leader(&c.all(), Duration::from_secs(5)).await,
        (leader, term)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_a_certificate_of_another_ca_an_expired_one_or_another_name_is_refused() {
    let mut c = Cluster::new(tls_spec(3));
    let outsider = 2;
    let paths = c.tls_paths(outsider);
    let name = c.peers[outsider].name.clone();
    // Another CA: a certificate for the right name, and that CA as the only one it trusts.
    let other = TestCa::new("another CA");
    other.write(&paths, &[&name], Validity::Now, None);
    c.spawn_all();
    let insiders = [0, 1];
    let (leader, term) = c.agreed_leader(&insiders, Duration::from_secs(15)).await;
    refusals_grow(&c, &insiders, "tls", &[0.0, 0.0]).await;
    assert_outside(&c, outsider).await;

    // An expired certificate of the right CA.
    let ca = c.ca.as_ref().expect("the cluster's CA");
    let before = counts(&c, &insiders, "tls").await;
    ca.write(&paths, &[&name], Validity::Expired, None);
    refusals_grow(&c, &insiders, "tls", &before).await;
    assert_outside(&c, outsider).await;

    // A valid certificate of the right CA, for another peer's name: the TLS handshake
    // passes, the request's sender does not match it.
    let before = counts(&c, &insiders, "tls-name").await;
    ca.write(&paths, &["peer-9"], Validity::Now, None);
    refusals_grow(&c, &insiders, "tls-name", &before).await;
    assert_outside(&c, outsider).await;

    // Through all of it the insiders kept their leader and term.
    assert_eq!(
        c.agreed_leader(&insiders, Duration::from_secs(5)).await,
        (leader, term)
    );
    // Given its own certificate, the peer takes part, without a restart.
    ca.write(&paths, &[&name], Validity::Now, None);
    assert_eq!(
        c.agreed_leader(&c.all(), Duration::from_secs(30)).await,
        (leader, term)
    );
    assert!(c.alive(outsider), "the outsider was restarted or died");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tls_and_a_peer_secret_a_peer_with_a_valid_certificate_but_another_secret_is_refused()
{
    let mut c = Cluster::new(tls_spec(3));
    let good = secret_file(&c, "good-secret", "correct horse battery staple");
    let bad = secret_file(&c, "bad-secret", "a different secret altogether");
    let outsider = 2;
    for i in 0..outsider {
        c.peers[i].extra = vec!["--peer-secret-file".into(), good.clone()];
    }
    c.peers[outsider].extra = vec!["--peer-secret-file".into(), bad];
    c.spawn_all();
    let insiders = [0, 1];
    let (leader, term) = c.agreed_leader(&insiders, Duration::from_secs(15)).await;
    // Its certificate passes the TLS handshake; its secret fails the peer protocol's MAC.
    refusals_grow(&c, &insiders, "auth", &[0.0, 0.0]).await;
    assert_eq!(
        counts(&c, &insiders, "tls").await,
        [0.0, 0.0],
        "the outsider's TLS handshakes were refused: the test would not show the secret's check"
    );
    assert_outside(&c, outsider).await;

    // With the election's secret (read at start) it takes part, over TLS.
    c.kill(outsider);
    c.peers[outsider].extra = vec!["--peer-secret-file".into(), good];
    c.spawn(outsider);
    assert_eq!(
        c.agreed_leader(&c.all(), Duration::from_secs(30)).await,
        (leader, term)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.metric(outsider, "raft_elector_peer_streams").await < Some(1.0) {
        assert!(Instant::now() < deadline, "the outsider serves no stream");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The outsider neither leads nor names a leader.
async fn assert_outside(c: &Cluster, outsider: usize) {
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        let a = c.ask(outsider).await.expect("an answer from the outsider");
        assert!(a.name.is_empty() && !a.is_leader, "outsider: {a:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotated_to_a_new_ca_are_picked_up_without_a_restart_and_the_cluster_stays_up()
{
    let mut c = Cluster::start(tls_spec(3));
    let (leader, term) = c
        .settled_leader(
            &c.all(),
            Duration::from_millis(500),
            Duration::from_secs(15),
        )
        .await;
    let old = c.ca.take().expect("the cluster's CA");
    let new = TestCa::new("the next CA");
    let both = format!("{}{}", old.pem(), new.pem());
    let names: Vec<String> = c.peers.iter().map(|p| p.name.clone()).collect();
    let paths: Vec<TlsPaths> = (0..3).map(|i| c.tls_paths(i)).collect();
    // As cert-manager and an operator would: trust both CAs, then certificates of the new
    // one, then trust the new CA only. Each step waits for the peers to read the files
    // (they do within 5 s of a connection; the leader connects at every heartbeat).
    let steps: Vec<Box<dyn Fn(usize)>> = vec![
        Box::new(|i| old.write(&paths[i], &[&names[i]], Validity::Now, Some(&both))),
        Box::new(|i| new.write(&paths[i], &[&names[i]], Validity::Now, Some(&both))),
        Box::new(|i| {
            let issued = new.issue(&[&names[i]], Validity::Now);
            write_files(&paths[i], &issued, &new.pem());
        }),
    ];
    for (step, write) in steps.iter().enumerate() {
        for i in 0..3 {
            write(i);
        }
        // The leader notices within 5 s and reconnects with the new files.
        let deadline = Instant::now() + Duration::from_secs(20);
        let line = "the peer TLS files changed";
        while c.log_text(leader).matches(line).count() < step + 1 {
            assert!(
                Instant::now() < deadline,
                "step {step}: the leader did not read its files again"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            c.agreed_leader(&c.all(), Duration::from_secs(10)).await,
            (leader, term),
            "step {step}: the leadership moved"
        );
    }
    // New connections between the two others now need the new files on both ends: with
    // the leader gone, they elect over connections made after the rotation.
    c.kill(leader);
    let rest = c.all_but(leader);
    let (next, _) = c.new_leader(&rest, Duration::from_secs(20), term).await;
    assert!(next != leader);
    // Restarted, the old leader joins in with its new files.
    c.spawn(leader);
    let (again, _) = c.agreed_leader(&c.all(), Duration::from_secs(20)).await;
    assert_eq!(again, next);
}

/// Runs the binary with `args` and returns its exit code and stderr.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(EXE)
        .args([
            "--election",
            "test",
            "--id",
            "a",
            "--peers",
            "a=127.0.0.1:1",
        ])
        .args(["--http", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("HOSTNAME")
        .output()
        .expect("run the binary");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tls_flags_or_files_that_cannot_work_stop_the_peer_at_start_with_what_to_fix() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new("start CA");
    let good = TlsPaths::under(dir.path(), "a");
    ca.write(&good, &["a"], Validity::Now, None);
    let (cert, key, cafile) = (
        good.cert.to_str().expect("utf-8"),
        good.key.to_str().expect("utf-8"),
        good.ca.to_str().expect("utf-8"),
    );
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");

    let (code, err) = run(&["--data-dir", data, "--peer-tls-cert", cert]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--peer-tls-key and --peer-tls-ca missing"),
        "{err}"
    );

    let (code, err) = run(&[
        "--data-dir",
        data,
        "--peer-tls-cert",
        cert,
        "--peer-tls-key",
        key,
        "--peer-tls-ca",
        cafile,
        "--peer-transport",
        "http",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("drop --peer-transport http"), "{err}");

    // A key file that holds a certificate, a CA file that is not PEM, a missing file.
    let cases = [
        (["--peer-tls-key", cert], "no usable PEM private key"),
        (["--peer-tls-ca", key], "holds no PEM certificate"),
        (
            ["--peer-tls-cert", "/nonexistent/cert.pem"],
            "cannot read --peer-tls-cert /nonexistent/cert.pem",
        ),
    ];
    for ([flag, value], expected) in cases {
        let mut args = vec!["--data-dir", data];
        for (f, v) in [
            ("--peer-tls-cert", cert),
            ("--peer-tls-key", key),
            ("--peer-tls-ca", cafile),
        ] {
            args.extend([f, if f == flag { value } else { v }]);
        }
        let (code, err) = run(&args);
        assert_ne!(code, Some(0), "{flag} {value}: {err}");
        assert!(
            err.contains(expected),
            "{flag} {value}: expected {expected:?} in: {err}"
        );
        // Nothing was written: the data directory was not even opened.
        assert!(
            !std::path::Path::new(data).exists(),
            "{flag} {value}: the data directory was made"
        );
    }

    // A certificate and a key that do not go together.
    let other = TlsPaths::under(dir.path(), "b");
    ca.write(&other, &["a"], Validity::Now, None);
    let other_key = other.key.to_str().expect("utf-8");
    let (code, err) = run(&[
        "--data-dir",
        data,
        "--peer-tls-cert",
        cert,
        "--peer-tls-key",
        other_key,
        "--peer-tls-ca",
        cafile,
    ]);
    assert_ne!(code, Some(0), "{err}");
    assert!(err.contains("do not make a usable certificate"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_restarted_with_tls_keeps_its_state_and_elects_again() {
    // Certificates are written, but the first run speaks plain peer traffic.
    let mut c = Cluster::new(tls_spec(3));
    c.spec.tls = false;
    c.spawn_all();
    let (_, term) = c
        .settled_leader(
            &c.all(),
            Duration::from_millis(300),
            Duration::from_secs(15),
        )
        .await;
    for i in c.all() {
        let stopped = c.terminate(i, Duration::from_secs(10)).await;
        assert!(stopped.is_some(), "peer {i} did not stop");
    }
    // All restarted together with TLS, on the same data.
    c.spec.tls = true;
    c.spawn_all();
    // (The term may stay: the last peer to stop could not leave, and alone in the
    // membership it leads again on its own.)
    let (_, again) = c.agreed_leader(&c.all(), Duration::from_secs(20)).await;
    assert!(
        again >= term,
        "term {again} after a restart from term {term}"
    );
    // The membership comes back to all three (peers that left on SIGTERM join again).
    let all = c.all();
    c.members_converge(&all, &all, &[], Duration::from_secs(30))
        .await;
    // And the peer ports now speak TLS only: a plain request gets no HTTP answer.
    for i in c.all() {
        assert_no_plain_answer(&c, i);
    }
}

/// A plain HTTP peer request to peer `i`'s peer port gets no HTTP answer.
fn assert_no_plain_answer(c: &Cluster, i: usize) {
    let request = raw::get_request(
        "/raft/v1/status",
        "x-raft-elector-election: test\r\nx-raft-elector-from: peer-9\r\nx-raft-elector-protocol: 1\r\n",
    );
    let answer = raw::exchange(
        c.peers[i].peer_addr,
        request.as_bytes(),
        Duration::from_secs(2),
    );
    assert!(
        !answer.starts_with("HTTP/"),
        "peer {i} answered a plain request over HTTP: {answer:?}"
    );
}
