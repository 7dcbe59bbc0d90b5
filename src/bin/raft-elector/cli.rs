//! The command line: flags of a peer (each also read from an environment variable) and the
//! `leader` and `demo` subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use raft_elector::config::{self, Config, ConfigError, Timing};
use raft_elector::peer::tls::TlsFiles;

/// Leader election for the pods of a StatefulSet, by their own Raft consensus.
///
/// Run one peer per pod, next to the application. The application asks
/// `GET http://localhost:4040/` and gets `{"name":"<leader pod>"}`, as with the old
/// leader-elector sidecar, with no Kubernetes API access and sub-second failover.
#[derive(Debug, Parser)]
#[command(
    name = "raft-elector",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("RAFT_ELECTOR_COMMIT"), ")"),
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the current leader named by a running peer (exit 0), or say none is known (exit 1).
    Leader(LeaderArgs),
    /// Start a 3-peer cluster on loopback with temporary data and show, live, who leads.
    Demo(DemoArgs),
    /// DANGEROUS, for a cluster that lost a majority of its voters for good: rewrite a stopped
    /// peer's stored membership to the peers named (needs --force-new-membership).
    Recover(RecoverArgs),
    /// Run COMMAND only while the local peer leads (RAFT_ELECTOR_TERM, the fencing token, in
    /// its environment); stop it as soon as leadership is lost or can no longer be confirmed.
    WhileLeader(crate::while_leader::WhileLeaderArgs),
}

/// How a peer sends its requests to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PeerTransport {
    Stream,
    Http,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The peer TLS files (of a peer, and of `recover`, which asks the other peers).
#[derive(Debug, Args)]
pub struct PeerTlsArgs {
    /// This peer's TLS certificate (PEM, leaf first). With --peer-tls-key and --peer-tls-ca,
    /// peers speak only TLS 1.3 with each other, each presenting a certificate of that CA for
    /// its id or its StatefulSet DNS name. The files are read again when they change (a
    /// rotated Secret): new connections use them, no restart needed.
    #[arg(
        long = "peer-tls-cert",
        env = "RAFT_ELECTOR_PEER_TLS_CERT",
        value_name = "PATH"
    )]
    pub cert: Option<PathBuf>,

    /// The private key of --peer-tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long = "peer-tls-key",
        env = "RAFT_ELECTOR_PEER_TLS_KEY",
        value_name = "PATH"
    )]
    pub key: Option<PathBuf>,

    /// The CA certificate(s) (PEM) every peer's certificate must chain to.
    #[arg(
        long = "peer-tls-ca",
        env = "RAFT_ELECTOR_PEER_TLS_CA",
        value_name = "PATH"
    )]
    pub ca: Option<PathBuf>,
}

impl PeerTlsArgs {
    /// The files, checked as a set (all three or none; only with peer streams).
    pub fn files(&self, streams: bool) -> Result<Option<TlsFiles>, ConfigError> {
        config::validate_peer_tls(
            self.cert.as_deref(),
            self.key.as_deref(),
            self.ca.as_deref(),
            streams,
        )
    }
}

/// Flags of a peer.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Name of the election (the cluster). Peers of another election are refused.
    #[arg(long, env = "RAFT_ELECTOR_ELECTION", required = true)]
    pub election: Option<String>,

    /// This peer's name; defaults to the HOSTNAME environment variable (the pod name).
    #[arg(long, env = "RAFT_ELECTOR_ID")]
    pub id: Option<String>,

    /// The peers of the FIRST cluster with their peer addresses, this peer included:
    /// ID=HOST:PORT,ID=HOST:PORT,... They are whom to contact; once the cluster exists, its
    /// membership is what it committed (peers join and leave). This peer listens for peer
    /// traffic on the port of its own entry. With --replicas, extra peers (e.g. a witness).
    #[arg(long, env = "RAFT_ELECTOR_PEERS", value_name = "LIST")]
    pub peers: Option<String>,

    /// StatefulSet shorthand: the size of the FIRST cluster. With id NAME-i, the peers are
    /// NAME-0 .. NAME-(N-1) at NAME-j.<peer-domain>:<peer-port>. Scaling the StatefulSet needs
    /// no change: a pod NAME-k with k >= N joins the cluster.
    #[arg(
        long,
        env = "RAFT_ELECTOR_REPLICAS",
        requires = "peer_domain",
        value_name = "N"
    )]
    pub replicas: Option<u32>,

    /// StatefulSet shorthand: the domain of the headless Service, e.g.
    /// web-peers.default.svc.cluster.local.
    #[arg(long, env = "RAFT_ELECTOR_PEER_DOMAIN", value_name = "DOMAIN")]
    pub peer_domain: Option<String>,

    /// StatefulSet shorthand: the peer port of every peer.
    #[arg(long, env = "RAFT_ELECTOR_PEER_PORT", default_value_t = config::DEFAULT_PEER_PORT, value_name = "PORT")]
    pub peer_port: u16,

    /// Address the peer listener binds to; defaults to the IP of this peer's own entry, or
    /// 0.0.0.0 when that entry is a DNS name, on the entry's port.
    #[arg(long, env = "RAFT_ELECTOR_PEER_LISTEN", value_name = "ADDR")]
    pub peer_listen: Option<SocketAddr>,

    /// Directory of this peer's durable state (Raft log, vote, snapshot). One per peer.
    #[arg(
        long,
        env = "RAFT_ELECTOR_DATA_DIR",
        required = true,
        value_name = "DIR"
    )]
    pub data_dir: Option<PathBuf>,

    /// Address of the application API (localhost by default, like the old sidecar).
    #[arg(long, env = "RAFT_ELECTOR_HTTP", default_value = "127.0.0.1:4040", value_parser = config::parse_listen_addr, value_name = "ADDR")]
    pub http: SocketAddr,

    /// Heartbeat interval. The leader's heartbeats go out on openraft's tick, every 1.5 × this,
    /// which the peer puts on its 64 ms timer grid (fewer wake-ups) when the grid's period is
    /// at most 3/4 of the lease: with the default election timeouts, every 64 ms up to 42 ms,
    /// every 128 ms from 43 to 85 ms (the default, 50 ms, gives 128); otherwise exactly every
    /// 1.5 × this. That period bounds the round trip a leader tolerates without a gap in its
    /// lease: an acknowledgement must come back within the lease (3/4 of the maximum election
    /// timeout) minus one period, 180 - 128 = 52 ms with the defaults (a longer one makes the
    /// leader answer "unknown" for part of each period, up to one period).
    #[arg(long, env = "RAFT_ELECTOR_HEARTBEAT", default_value = "50ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub heartbeat: Duration,

    /// Lower bound of the randomised election timeout.
    #[arg(long, env = "RAFT_ELECTOR_ELECTION_TIMEOUT_MIN", default_value = "160ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub election_timeout_min: Duration,

    /// Upper bound of the randomised election timeout; the leader lease is 3/4 of it.
    #[arg(long, env = "RAFT_ELECTOR_ELECTION_TIMEOUT_MAX", default_value = "240ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub election_timeout_max: Duration,

    /// A second listener serving only /healthz, /readyz and /metrics, for the kubelet's probes
    /// and Prometheus, so that the application API can stay on localhost. Off when not set.
    #[arg(long, env = "RAFT_ELECTOR_PROBE_HTTP", value_parser = config::parse_listen_addr, value_name = "ADDR")]
    pub probe_http: Option<SocketAddr>,

    /// Push streams (`/sse`, `/v1/leader/events`) and blocking queries (`/v1/leader?term=`)
    /// open at once; more are answered 503.
    #[arg(
        long,
        env = "RAFT_ELECTOR_MAX_STREAMS",
        default_value_t = 1024,
        value_name = "N"
    )]
    pub max_streams: usize,

    /// Slots each job's ledger remembers (`/v1/jobs/{job}`); older slots are forgotten and
    /// never granted again (a claim of one is answered 410).
    #[arg(
        long,
        env = "RAFT_ELECTOR_JOB_HISTORY",
        default_value_t = 100,
        value_name = "N"
    )]
    pub job_history: u32,

    /// A job the leader runs on a schedule: NAME=CRON, cron with seconds (sec min hour
    /// day-of-month month day-of-week [year]), e.g. mail="0 */5 * * * *". Repeatable; in the
    /// environment, separate entries with ';'.
    #[arg(
        long = "job",
        env = "RAFT_ELECTOR_JOB",
        value_delimiter = ';',
        value_name = "NAME=CRON"
    )]
    pub jobs: Vec<String>,

    /// Where the leader POSTs each run of a job: NAME=URL on its own pod's application.
    /// Repeatable; in the environment, separate entries with ';'.
    #[arg(
        long = "job-url",
        env = "RAFT_ELECTOR_JOB_URL",
        value_delimiter = ';',
        value_name = "NAME=URL"
    )]
    pub job_urls: Vec<String>,

    /// How long a run's request may take (a 2xx within it records the slot ok); a slot
    /// claimed and not reported this long after its claim (plus 5 s) is judged lost.
    #[arg(long, env = "RAFT_ELECTOR_JOB_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub job_timeout: Duration,

    /// Slots nobody ran in time (a failover, the cluster down): run them all, only the
    /// latest, or none; the others are recorded as missed.
    #[arg(long, env = "RAFT_ELECTOR_JOB_CATCH_UP", value_enum, default_value_t = CatchUpArg::Latest)]
    pub job_catch_up: CatchUpArg,

    /// Slots older than this are never run (recorded as missed).
    #[arg(long, env = "RAFT_ELECTOR_JOB_DEADLINE", default_value = "1h", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub job_deadline: Duration,

    /// A slot whose runner died before reporting: skip it (recorded as lost; at most once)
    /// or run it again with a new token (at least once).
    #[arg(long, env = "RAFT_ELECTOR_JOB_ON_LOST", value_enum, default_value_t = OnLostArg::Skip)]
    pub job_on_lost: OnLostArg,

    /// Upper bound on a graceful shutdown (SIGTERM, SIGINT), hand-off included.
    #[arg(long, env = "RAFT_ELECTOR_SHUTDOWN_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub shutdown_timeout: Duration,

    /// File holding the secret shared by the peers of this election (e.g. a mounted Kubernetes
    /// Secret). Every peer request is then authenticated with an HMAC over it; requests without
    /// a valid one are refused. Trailing whitespace is ignored.
    #[arg(long, env = "RAFT_ELECTOR_PEER_SECRET_FILE", value_name = "PATH")]
    pub peer_secret_file: Option<PathBuf>,

    /// The peer secret itself (prefer --peer-secret-file or the environment variable: a
    /// command line is visible to every process on the machine).
    #[arg(
        long,
        env = "RAFT_ELECTOR_PEER_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub peer_secret: Option<String>,

    /// How far a peer request's timestamp may be from this peer's clock before it is refused
    /// (replays within the window are refused too).
    #[arg(long, env = "RAFT_ELECTOR_PEER_AUTH_WINDOW", default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub peer_auth_window: Duration,

    /// How this peer sends its requests to the others: `stream`, one long-lived connection per
    /// peer carrying framed messages (a peer of an earlier release is spoken to over HTTP), or
    /// `http`, one HTTP request per message as earlier releases do. Either way this peer
    /// accepts both.
    #[arg(
        long,
        env = "RAFT_ELECTOR_PEER_TRANSPORT",
        default_value = "stream",
        value_name = "TRANSPORT"
    )]
    pub peer_transport: PeerTransport,

    #[command(flatten)]
    pub peer_tls: PeerTlsArgs,

    /// Build a snapshot and purge the log every this many log entries (each election adds one),
    /// so that disk use stays flat.
    #[arg(long, env = "RAFT_ELECTOR_SNAPSHOT_LOGS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(2..), value_name = "N")]
    pub snapshot_logs: u64,

    /// Log filter, in tracing's EnvFilter syntax. openraft's own logs are off by default (they
    /// repeat at the heartbeat rate while a peer is down); "info,openraft=info" shows them.
    #[arg(
        long,
        env = "RAFT_ELECTOR_LOG",
        default_value = "info,openraft=off",
        value_name = "FILTER"
    )]
    pub log: String,

    /// Log format.
    #[arg(long, env = "RAFT_ELECTOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// At most this many voters (odd, 1 to 9); members beyond it are learners: they follow
    /// the log and name the leader, but never vote and never lead. When a voter leaves, the
    /// most up-to-date learner is promoted.
    #[arg(long, env = "RAFT_ELECTOR_MAX_VOTERS", default_value_t = config::DEFAULT_MAX_VOTERS, value_name = "N")]
    pub max_voters: usize,

    /// This peer is a witness: it votes and stores the log like any voter but never becomes
    /// leader (it never campaigns and is never handed leadership). Two application pods and
    /// one witness survive the crash of either application pod.
    #[arg(long, env = "RAFT_ELECTOR_WITNESS")]
    pub witness: bool,

    /// On SIGTERM (after handing leadership over), ask the leader to remove this peer from
    /// the membership and wait, within --shutdown-timeout, until that is committed. false
    /// keeps a fixed membership.
    #[arg(long, env = "RAFT_ELECTOR_LEAVE_ON_SHUTDOWN", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub leave_on_shutdown: bool,

    /// Leader only: remove a voter that has been unreachable this long (at least 30s). Off by
    /// default: a crash never changes the membership by itself.
    #[arg(long, env = "RAFT_ELECTOR_REMOVE_UNREACHABLE_AFTER", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub remove_unreachable_after: Option<Duration>,

    /// Leadership follows the application's health: GET this URL of the local application
    /// (e.g. http://127.0.0.1:8080/healthz); a 2xx within --app-health-timeout is healthy. A
    /// peer whose application is unhealthy does not campaign and is not handed leadership; a
    /// leader whose application turns unhealthy hands over to a peer whose application is
    /// healthy (when none is, it stays). Off by default.
    #[arg(long, env = "RAFT_ELECTOR_APP_HEALTH", value_name = "URL")]
    pub app_health: Option<String>,

    /// How often the application's health is checked.
    #[arg(long, env = "RAFT_ELECTOR_APP_HEALTH_INTERVAL", value_parser = humantime::parse_duration, default_value = "2s", value_name = "DURATION")]
    pub app_health_interval: Duration,

    /// How long one health check may take.
    #[arg(long, env = "RAFT_ELECTOR_APP_HEALTH_TIMEOUT", value_parser = humantime::parse_duration, default_value = "1s", value_name = "DURATION")]
    pub app_health_timeout: Duration,

    /// Consecutive failed checks that make the application unhealthy (one success makes it
    /// healthy again).
    #[arg(
        long,
        env = "RAFT_ELECTOR_APP_HEALTH_FAILURES",
        default_value_t = 3,
        value_name = "N"
    )]
    pub app_health_failures: u32,

    /// Accepted for compatibility with the old leader-elector sidecar; ignored (no Kubernetes
    /// API is used).
    #[arg(long, env = "RAFT_ELECTOR_ELECTION_NAMESPACE", value_name = "NS")]
    pub election_namespace: Option<String>,

    /// Accepted for compatibility with the old leader-elector sidecar; ignored (failover is
    /// governed by the election timeouts).
    #[arg(long, env = "RAFT_ELECTOR_TTL", value_name = "DURATION")]
    pub ttl: Option<String>,
}

impl RunArgs {
    /// Validates the flags into a configuration.
    pub fn to_config(&self) -> Result<Config, ConfigError> {
        let election = self.election.clone().unwrap_or_default();
        config::validate_election(&election)?;
        let id = match &self.id {
            Some(id) if !id.is_empty() => id.clone(),
            _ => std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .ok_or(ConfigError::MissingId)?,
        };
        let listed = self.peers.as_deref().map(config::parse_peers).transpose()?;
        let (peers, me, statefulset) = match self.replicas {
            Some(n) => {
                let domain = self
                    .peer_domain
                    .as_deref()
                    .ok_or(ConfigError::ReplicasWithoutDomain)?;
                let mut peers = config::statefulset_peers(&id, n, domain, self.peer_port)?;
                peers.extend(listed.unwrap_or_default());
                let peers = config::merge_peers(peers)?;
                let me = match config::find_me(&peers, &id) {
                    Ok(me) => me,
                    Err(_) => config::statefulset_peer(&id, domain, self.peer_port)?,
                };
                let (base, _) = config::statefulset_name(&id)?;
                (peers, me, Some(base.to_string()))
            }
            None => {
                let peers = listed.ok_or(ConfigError::NoPeers)?;
                let me = config::find_me(&peers, &id)?;
                (peers, me, None)
            }
        };
        let membership = config::Membership {
            max_voters: config::validate_max_voters(self.max_voters)?,
            witness: self.witness,
            leave_on_shutdown: self.leave_on_shutdown,
            remove_unreachable_after: config::validate_remove_unreachable(
                self.remove_unreachable_after,
            )?,
            statefulset,
        };
        if self.witness && peers.iter().all(|p| p.id == me.id) {
            return Err(ConfigError::WitnessAlone);
        }
        let peer_listen = match self.peer_listen {
            Some(addr) => addr,
            None => config::default_peer_listen(&me)?,
        };
        let timing = Timing {
            heartbeat: self.heartbeat,
            election_min: self.election_timeout_min,
            election_max: self.election_timeout_max,
        }
        .validate()?;
        Ok(Config {
            election,
            me,
            peers,
            membership,
            peer_listen,
            http: self.http,
            probe_http: self.probe_http,
            data_dir: self.data_dir.clone().unwrap_or_default(),
            timing,
            shutdown_timeout: self.shutdown_timeout,
            snapshot_logs: self.snapshot_logs,
            peer_secret: self.secret()?,
            peer_auth_window: self.peer_auth_window,
            peer_streams: self.peer_transport == PeerTransport::Stream,
            peer_tls: self
                .peer_tls
                .files(self.peer_transport == PeerTransport::Stream)?,
            // An empty value means "not set", as for the secret.
            app_health: config::validate_app_health(
                self.app_health.as_deref().filter(|u| !u.trim().is_empty()),
                self.app_health_interval,
                self.app_health_timeout,
                self.app_health_failures,
            )?,
            max_streams: self.max_streams,
            job_history: config::validate_job_history(self.job_history)?,
            schedules: self.schedules()?,
        })
    }

    fn schedules(&self) -> Result<config::Schedules, ConfigError> {
        if self.job_deadline < Duration::from_secs(1) {
            return Err(config::ScheduleError::ShortDeadline(self.job_deadline).into());
        }
        Ok(config::Schedules {
            jobs: config::parse_jobs(&self.jobs, &self.job_urls)?,
            timeout: self.job_timeout,
            catch_up: match self.job_catch_up {
                CatchUpArg::All => config::CatchUp::All,
                CatchUpArg::Latest => config::CatchUp::Latest,
                CatchUpArg::None => config::CatchUp::None,
            },
            deadline: self.job_deadline,
            on_lost: match self.job_on_lost {
                OnLostArg::Skip => config::OnLost::Skip,
                OnLostArg::Retry => config::OnLost::Retry,
            },
        })
    }

    fn secret(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        // An empty value means "not set", so that a deployment can pass an optional secret.
        let given = self.peer_secret.as_ref().filter(|s| !s.trim().is_empty());
        let file = self
            .peer_secret_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty());
        let secret = match (given, file) {
            (Some(_), Some(_)) => return Err(ConfigError::TwoSecrets),
            (Some(s), None) => s.trim_end().as_bytes().to_vec(),
            (None, Some(path)) => {
                let bytes = std::fs::read(path).map_err(|e| ConfigError::SecretFile {
                    path: path.display().to_string(),
                    error: e.to_string(),
                })?;
                let end = bytes
                    .iter()
                    .rposition(|b| !b.is_ascii_whitespace())
                    .map_or(0, |i| i + 1);
                bytes[..end].to_vec()
            }
            (None, None) => return Ok(None),
        };
        if secret.len() < raft_elector::peer::auth::MIN_SECRET {
            return Err(ConfigError::ShortSecret(secret.len()));
        }
        Ok(Some(secret))
    }
}

/// Flags of `raft-elector leader`.
#[derive(Debug, Args)]
pub struct LeaderArgs {
    /// Application API address of the peer to ask.
    #[arg(long, env = "RAFT_ELECTOR_HTTP", default_value = "127.0.0.1:4040", value_parser = config::parse_listen_addr, value_name = "ADDR")]
    pub http: SocketAddr,

    /// Print the whole answer as JSON instead of the leader's name.
    #[arg(long, env = "RAFT_ELECTOR_LEADER_JSON")]
    pub json: bool,

    /// How long to wait for the answer.
    #[arg(long, env = "RAFT_ELECTOR_LEADER_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

/// Flags of `raft-elector demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of peers.
    #[arg(long, env = "RAFT_ELECTOR_DEMO_PEERS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub peers: u32,

    /// Stop by itself after this long (e.g. "30s"); runs until Ctrl-C or `quit` otherwise.
    #[arg(long, env = "RAFT_ELECTOR_DEMO_DURATION", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
}

/// Flags of `raft-elector recover`. The new membership is taken from the command line only
/// (never from the environment), so that it is always spelled out by whoever forces it.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Directory of the STOPPED peer's durable state.
    #[arg(long, env = "RAFT_ELECTOR_DATA_DIR", value_name = "DIR")]
    pub data_dir: PathBuf,

    /// Name of the election (the cluster).
    #[arg(long, env = "RAFT_ELECTOR_ELECTION")]
    pub election: String,

    /// This peer's name; defaults to the HOSTNAME environment variable (the pod name).
    #[arg(long, env = "RAFT_ELECTOR_ID")]
    pub id: Option<String>,

    /// The new membership, every member a voter, this peer included: ID=HOST:PORT,...
    #[arg(long, conflicts_with = "replicas", value_name = "LIST")]
    pub peers: Option<String>,

    /// The new membership as StatefulSet pods NAME-0 .. NAME-(N-1) (with --peer-domain).
    #[arg(long, requires = "peer_domain", value_name = "N")]
    pub replicas: Option<u32>,

    /// The domain of the headless Service, with --replicas.
    #[arg(long, value_name = "DOMAIN")]
    pub peer_domain: Option<String>,

    /// The peer port of every peer, with --replicas.
    #[arg(long, default_value_t = config::DEFAULT_PEER_PORT, value_name = "PORT")]
    pub peer_port: u16,

    /// Confirms that the stored membership is to be replaced: without it, nothing is done.
    #[arg(long)]
    pub force_new_membership: bool,

    /// File holding the peer secret, to ask the other peers whether they are still there.
    #[arg(long, env = "RAFT_ELECTOR_PEER_SECRET_FILE", value_name = "PATH")]
    pub peer_secret_file: Option<PathBuf>,

    /// The peer secret itself (prefer --peer-secret-file).
    #[arg(
        long,
        env = "RAFT_ELECTOR_PEER_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub peer_secret: Option<String>,

    /// How long to wait for each other peer's answer.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// The peer TLS files, to ask the other peers of an election that speaks TLS.
    #[command(flatten)]
    pub peer_tls: PeerTlsArgs,
}

impl RecoverArgs {
    /// The peer secret, read and checked as a peer reads it.
    pub fn secret(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        read_secret(
            self.peer_secret.as_deref(),
            self.peer_secret_file.as_deref(),
        )
    }
}

/// The secret from `--peer-secret` or `--peer-secret-file` (an empty value means not set;
/// trailing whitespace is ignored), at least [`raft_elector::peer::auth::MIN_SECRET`] bytes.
fn read_secret(
    given: Option<&str>,
    file: Option<&std::path::Path>,
) -> Result<Option<Vec<u8>>, ConfigError> {
    let given = given.filter(|s| !s.trim().is_empty());
    let file = file.filter(|p| !p.as_os_str().is_empty());
    let secret = match (given, file) {
        (Some(_), Some(_)) => return Err(ConfigError::TwoSecrets),
        (Some(s), None) => s.trim_end().as_bytes().to_vec(),
        (None, Some(path)) => {
            let bytes = std::fs::read(path).map_err(|e| ConfigError::SecretFile {
                path: path.display().to_string(),
                error: e.to_string(),
            })?;
            let end = bytes
                .iter()
                .rposition(|b| !b.is_ascii_whitespace())
                .map_or(0, |i| i + 1);
            bytes[..end].to_vec()
        }
        (None, None) => return Ok(None),
    };
    if secret.len() < raft_elector::peer::auth::MIN_SECRET {
        return Err(ConfigError::ShortSecret(secret.len()));
    }
    Ok(Some(secret))
}

/// `--job-catch-up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CatchUpArg {
    All,
    Latest,
    None,
}

/// `--job-on-lost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnLostArg {
    Skip,
    Retry,
}
