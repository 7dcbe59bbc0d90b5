//! A throwaway PostgreSQL server for the claims section: `initdb` into a temporary directory,
//! `pg_ctl start` on a free loopback port with fsync on (the defaults, stated explicitly), and
//! `pg_ctl stop -m fast` when the [`Server`] is dropped, also when the measurement failed.
//!
//! PostgreSQL refuses to run as root: when the bench runs as root, `initdb` and `pg_ctl` run
//! through `runuser -u postgres --` (the user the Debian package creates) and the temporary
//! directory is handed to that user.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;
use testkit::free_port;

/// The user PostgreSQL's tools run as when the bench runs as root.
const SERVICE_USER: &str = "postgres";

/// The settings the claims are measured with: every commit waits for its WAL record on disk.
pub const DURABILITY: &[(&str, &str)] = &[
    ("fsync", "on"),
    ("synchronous_commit", "on"),
    ("full_page_writes", "on"),
];

/// The program and arguments that run PostgreSQL's tool `bin` with `args`, through `runuser`
/// as `run_as` when given.
pub fn tool_command(bin: &Path, args: &[String], run_as: Option<&str>) -> (PathBuf, Vec<String>) {
    match run_as {
        None => (bin.to_path_buf(), args.to_vec()),
        Some(user) => {
            let mut all = vec![
                "-u".to_string(),
                user.to_string(),
                "--".to_string(),
                bin.display().to_string(),
            ];
            all.extend(args.iter().cloned());
            (PathBuf::from("runuser"), all)
        }
    }
}

/// The `-o` options of `pg_ctl start`: the port, the socket directory, loopback only, and the
/// durability settings.
pub fn server_options(port: u16, socket_dir: &Path) -> String {
    let mut o = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1",
        socket_dir.display()
    );
    for (name, value) in DURABILITY {
        o.push_str(&format!(" -c {name}={value}"));
    }
    o
}

/// The directory that holds `initdb` and `pg_ctl`: the first on `PATH` that has both, else
/// the newest `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(d) = std::env::split_paths(&path).find(|d| has_tools(d)) {
            return Some(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_tools(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A running PostgreSQL server in a temporary directory; stopped and removed on drop.
pub struct Server {
    pub port: u16,
    /// `postgres --version`.
    pub version: String,
    bin: PathBuf,
    run_as: Option<&'static str>,
    data: PathBuf,
    running: bool,
    /// Removed after the server stopped (fields drop after [`Drop::drop`] ran).
    dir: TempDir,
}

impl Server {
    /// Creates a cluster with `initdb` (superuser `bench`, trust authentication) and starts it.
    pub fn start() -> Result<Server, String> {
        let bin = bin_dir().ok_or(
            "PostgreSQL's initdb and pg_ctl were not found (on PATH or in /usr/lib/postgresql/*/bin): \
             install the Debian package postgresql (scripts/bench.sh does)",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("raft-elector-bench-pg-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let run_as = if is_root() {
            let user = nix::unistd::User::from_name(SERVICE_USER)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!(
                        "running as root, and PostgreSQL refuses root: user {SERVICE_USER:?} is \
                         missing (the Debian package postgresql creates it)"
                    )
                })?;
            std::os::unix::fs::chown(dir.path(), Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .map_err(|e| format!("chown {} to {SERVICE_USER}: {e}", dir.path().display()))?;
            Some(SERVICE_USER)
        } else {
            None
        };
        let version = Command::new(bin.join("postgres"))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let data = dir.path().join("data");
        let mut server = Server {
            port: free_port(),
            version,
            bin,
            run_as,
            data,
            running: false,
            dir,
        };
        let data = server.data.display().to_string();
        server.tool(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "bench",
                "-E",
                "UTF8",
                "--no-locale",
            ],
        )?;
        let options = server_options(server.port, server.dir.path());
        let log = server.log_path().display().to_string();
        // -l: the server's output goes to a file; otherwise it would hold pg_ctl's pipe open.
        server.running = true;
        if let Err(e) = server.tool(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &options, "-w", "start"],
        ) {
            return Err(format!("{e}\nserver log:\n{}", server.log_tail(20)));
        }
        Ok(server)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The data directory (for its size).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The connection string of the superuser `bench` over loopback TCP.
    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=bench dbname=postgres",
            self.port
        )
    }

    /// Runs PostgreSQL's tool `name` with `args` (as the service user when root) to its end.
    fn tool(&self, name: &str, args: &[&str]) -> Result<(), String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (program, args) = tool_command(&self.bin.join(name), &args, self.run_as);
        let out = Command::new(&program)
            .args(&args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{name} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Stops the server (`pg_ctl stop -m fast`), once.
    pub fn stop(&mut self) -> Result<(), String> {
        if !std::mem::replace(&mut self.running, false) {
            return Ok(());
        }
        let data = self.data.display().to_string();
        self.tool("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("bench: stopping PostgreSQL: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_root_the_tools_run_through_runuser_as_the_service_user() {
        let args = vec!["-D".to_string(), "/tmp/x".to_string()];
        let (program, all) = tool_command(Path::new("/pg/bin/initdb"), &args, Some("postgres"));
        assert_eq!(program, PathBuf::from("runuser"));
        assert_eq!(
            all,
            ["-u", "postgres", "--", "/pg/bin/initdb", "-D", "/tmp/x"]
        );
    }

    #[test]
    fn as_another_user_the_tools_run_directly() {
        let args = vec!["start".to_string()];
        let (program, all) = tool_command(Path::new("/pg/bin/pg_ctl"), &args, None);
        assert_eq!(program, PathBuf::from("/pg/bin/pg_ctl"));
        assert_eq!(all, ["start"]);
    }

    #[test]
    fn the_server_listens_on_loopback_only_with_every_commit_synced() {
        let o = server_options(5433, Path::new("/tmp/s"));
        assert!(
            o.starts_with("-p 5433 -k /tmp/s -c listen_addresses=127.0.0.1"),
            "{o}"
        );
        for setting in ["fsync=on", "synchronous_commit=on", "full_page_writes=on"] {
            assert!(o.contains(&format!("-c {setting}")), "{o}");
        }
    }
}
