//! A private `/etc/hosts` for child processes: names that resolve only once the test publishes
//! them, as the DNS records of a StatefulSet's pods appear only after the pods do.
//!
//! Each process runs in a mount namespace of its own (`unshare`, inside a user namespace so
//! that no privilege is needed where unprivileged user namespaces are allowed), with the
//! test's file bind-mounted over `/etc/hosts`. glibc reads that file at every lookup, so a
//! name written into it resolves from the next lookup on; the rest of the machine never sees
//! it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What every hosts file starts with.
const BASE: &str = "127.0.0.1 localhost\n::1 localhost\n";

/// A hosts file that the processes started through [`Hosts::wrap`] use as their `/etc/hosts`.
#[derive(Debug)]
pub struct Hosts {
    file: PathBuf,
}

impl Hosts {
    /// A hosts file in `dir` that names nothing but `localhost`.
    pub fn new(dir: &Path) -> Hosts {
        let hosts = Hosts {
            file: dir.join("hosts"),
        };
        hosts.publish(&[]);
        hosts
    }

    /// Makes exactly these names resolve (rewriting the file in place: the processes see the
    /// same file through their bind mounts).
    pub fn publish(&self, entries: &[(IpAddr, String)]) {
        let mut text = BASE.to_string();
        for (ip, name) in entries {
            text.push_str(&format!("{ip} {name}\n"));
        }
        std::fs::write(&self.file, text).expect("write the hosts file");
    }

    /// `cmd` (program, arguments, environment and directory) run with this file as its
    /// `/etc/hosts`. The process keeps the pid of the returned command: `unshare` and the
    /// shell exec into it.
    pub fn wrap(&self, cmd: &Command) -> Command {
        let mut wrapped = Command::new("unshare");
        wrapped
            .args(["--user", "--map-root-user", "--mount", "--", "sh", "-c"])
            .arg(r#"mount --bind "$0" /etc/hosts && exec "$@""#)
            .arg(&self.file)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(v) => wrapped.env(key, v),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolves(hosts: &Hosts, name: &str) -> bool {
        let mut getent = Command::new("getent");
        getent.args(["hosts", name]);
        hosts
            .wrap(&getent)
            .output()
            .expect("run getent through unshare")
            .status
            .success()
    }

    #[test]
    fn a_name_resolves_only_once_published_and_only_inside() {
        let dir = tempfile::tempdir().expect("tmp");
        let hosts = Hosts::new(dir.path());
        let name = "web-0.raft-elector-kit.test";
        assert!(!resolves(&hosts, name));
        hosts.publish(&[("127.0.0.2".parse().expect("ip"), name.to_string())]);
        assert!(resolves(&hosts, name));
        let outside = Command::new("getent")
            .args(["hosts", name])
            .status()
            .expect("getent");
        assert!(
            !outside.success(),
            "the machine's own /etc/hosts was changed"
        );
    }
}
