//! The validated configuration of one peer, built once from the command line.
//!
//! Everything that can be wrong with the flags is found here, before any socket or file is
//! touched, so that a typo gives one clear line instead of a half-started peer.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::raft::{node_id, NodeId, PeerNode};

mod schedule;
pub use schedule::{parse_jobs, CatchUp, JobSpec, OnLost, ScheduleError, Schedules};

/// Default port of the peer (Raft) listener.
pub const DEFAULT_PEER_PORT: u16 = 4041;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--election must not be empty")]
    EmptyElection,
    #[error("invalid election name {0:?}: use letters, digits, '.', '_' and '-' (at most 63)")]
    BadElection(String),
    #[error("no peer id: pass --id or set HOSTNAME")]
    MissingId,
    #[error("invalid peer name {0:?}: use letters, digits, '.', '_' and '-' (at most 253)")]
    BadName(String),
    #[error("malformed peer entry {entry:?}: {why} (expected ID=HOST:PORT)")]
    BadPeerEntry { entry: String, why: &'static str },
    #[error("peer {0:?} is listed twice in --peers")]
    DuplicatePeer(String),
    #[error("peer names {0:?} and {1:?} hash to the same Raft id; rename one")]
    IdCollision(String, String),
    #[error("this peer's id {id:?} is not in the peer list ({list})")]
    IdNotInPeers { id: String, list: String },
    #[error("no peers: pass --peers ID=HOST:PORT,... or --replicas N with --peer-domain")]
    NoPeers,
    #[error("--max-voters must be odd and between 1 and 9, not {0} (an even count adds no fault tolerance)")]
    BadMaxVoters(usize),
    #[error("a witness cannot be the only peer: list the application peers it votes with in --peers/--replicas")]
    WitnessAlone,
    #[error("{0}")]
    AppHealth(String),
    #[error("--remove-unreachable-after must be at least {floor:?} (got {got:?}): shorter would remove a healthy voter during an ordinary pod restart or node drain")]
    RemoveUnreachableTooShort { got: Duration, floor: Duration },
    #[error("--replicas needs --peer-domain (the headless Service's domain)")]
    ReplicasWithoutDomain,
    #[error("--replicas must be between 1 and 99, not {0}")]
    BadReplicas(u32),
    #[error(
        "id {0:?} is not a StatefulSet pod name (NAME-ORDINAL), so --replicas cannot derive the peers"
    )]
    NotStatefulSetName(String),
    #[error("timings must satisfy heartbeat < election-timeout-min < election-timeout-max (got {heartbeat:?} < {min:?} < {max:?})")]
    BadTimings {
        heartbeat: Duration,
        min: Duration,
        max: Duration,
    },
    #[error("cannot derive the peer listen address from {0:?}; pass --peer-listen")]
    NoListenAddr(String),
    #[error("cannot read the peer secret file {path}: {error}")]
    SecretFile { path: String, error: String },
    #[error(
        "the peer secret is {0} bytes; use at least 16 (e.g. `head -c 32 /dev/urandom | base64`)"
    )]
    ShortSecret(usize),
    #[error("--peer-secret and --peer-secret-file are exclusive")]
    TwoSecrets,
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("--job-history must be between 1 and {max}, not {0}", max = crate::ledger::MAX_HISTORY)]
    BadJobHistory(u32),
    #[error("--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together; {0} missing")]
    PartialTls(String),
    #[error(
        "peer TLS carries peer streams only: drop --peer-transport http or the --peer-tls-* flags"
    )]
    TlsOverHttp,
}

/// Where the peer TLS files are (`--peer-tls-cert`, `--peer-tls-key`, `--peer-tls-ca`, PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// This peer's certificate (chain), leaf first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CA certificate(s) every peer's certificate must chain to.
    pub ca: PathBuf,
}

/// The names a peer's certificate may carry: its id and, when known, its DNS name (the host
/// of its address, or `NAME.DOMAIN` in a StatefulSet). IP addresses do not count.
pub fn names_of(name: &str, host: Option<&str>) -> Vec<String> {
    let mut names = vec![name.to_string()];
    if let Some(host) = host.filter(|h| *h != name && h.parse::<std::net::IpAddr>().is_err()) {
        names.push(host.to_string());
    }
    names
}

/// The host of a `host:port` address.
pub fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(host, _)| host)
}

/// Checks the `--peer-tls-*` flags (empty values count as not set): all three or none, and
/// only with peer streams. The files themselves are read when the peer starts.
pub fn validate_peer_tls(
    cert: Option<&std::path::Path>,
    key: Option<&std::path::Path>,
    ca: Option<&std::path::Path>,
    streams: bool,
) -> Result<Option<TlsFiles>, ConfigError> {
    fn given(p: Option<&std::path::Path>) -> Option<&std::path::Path> {
        p.filter(|p| !p.as_os_str().is_empty())
    }
    let (cert, key, ca) = (given(cert), given(key), given(ca));
    let missing: Vec<&str> = [
        (cert.is_none(), "--peer-tls-cert"),
        (key.is_none(), "--peer-tls-key"),
        (ca.is_none(), "--peer-tls-ca"),
    ]
    .iter()
    .filter(|(absent, _)| *absent)
    .map(|(_, flag)| *flag)
    .collect();
    match (cert, key, ca) {
        (None, None, None) => Ok(None),
        (Some(cert), Some(key), Some(ca)) if streams => Ok(Some(TlsFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            ca: ca.to_path_buf(),
        })),
        (Some(_), Some(_), Some(_)) => Err(ConfigError::TlsOverHttp),
        _ => Err(ConfigError::PartialTls(missing.join(" and "))),
    }
}

/// Checks `--job-history`.
pub fn validate_job_history(n: u32) -> Result<u32, ConfigError> {
    match n {
        1.. if n as usize <= crate::ledger::MAX_HISTORY => Ok(n),
        _ => Err(ConfigError::BadJobHistory(n)),
    }
}

/// Raft timings; the leader lease and the follower freshness window derive from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Interval between leader heartbeats; also the timeout of one append-entries RPC.
    pub heartbeat: Duration,
    /// Lower bound of the randomised election timeout.
    pub election_min: Duration,
    /// Upper bound of the randomised election timeout. Followers refuse to vote for anyone else
    /// for this long after they last heard from their leader (openraft's leader lease).
    pub election_max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat: Duration::from_millis(50),
            election_min: Duration::from_millis(160),
            election_max: Duration::from_millis(240),
        }
    }
}

impl Timing {
    /// Checks the order openraft requires.
    pub fn validate(self) -> Result<Self, ConfigError> {
        if self.heartbeat.is_zero()
            || self.heartbeat >= self.election_min
            || self.election_min >= self.election_max
        {
            return Err(ConfigError::BadTimings {
                heartbeat: self.heartbeat,
                min: self.election_min,
                max: self.election_max,
            });
        }
        Ok(self)
    }

    /// How long after a quorum acknowledged a heartbeat (counted from when it was SENT) the
    /// leader may still say it leads. Followers refuse votes for `election_max` after RECEIVING
    /// it, so a lease of 3/4 of that leaves a quarter as margin for clock-rate drift and for
    /// the time an answer spends on its way to the application.
    pub fn leader_lease(&self) -> Duration {
        self.election_max * 3 / 4
    }

    /// How often a leader that check-quorum silenced still sends one append-entries to each
    /// peer: seldom enough that the followers' own leases on it lapse and they can elect in
    /// between, often enough that a healed link restores its lease within about a second.
    pub fn silenced_probe_every(&self) -> Duration {
        self.election_max * 4
    }

    /// How long a peer stream may owe answers in silence before it is dropped (a ping goes
    /// out after half of it), and how long an answer may wait to be written: five maximum
    /// election timeouts (1.2 s at the defaults). A peer that is only slow, busy with a large
    /// append or throttled by a CPU limit, must not lose its connection (reconnecting costs
    /// it more); a dead connection is not what failover waits for (a crashed peer's
    /// connections close at once; a lost leader is noticed by its followers' freshness
    /// window), only what a healed or re-addressed peer waits for before it hears again.
    pub fn stream_stall(&self) -> Duration {
        self.election_max * 5
    }

    /// How long a follower keeps naming a leader it has not heard from. The same as the
    /// leader's own lease: past it, the leader may have been replaced.
    pub fn follower_window(&self) -> Duration {
        self.leader_lease()
    }
}

/// The shortest `--remove-unreachable-after` accepted: a pod restart, a rescheduling or a node
/// drain takes tens of seconds, and removing a voter that is only restarting would shrink the
/// cluster's fault tolerance when it is most needed.
pub const REMOVE_UNREACHABLE_FLOOR: Duration = Duration::from_secs(30);

/// Default cap on the number of voters; members beyond it are learners.
pub const DEFAULT_MAX_VOTERS: usize = 5;

/// Checks a voter cap.
pub fn validate_max_voters(n: usize) -> Result<usize, ConfigError> {
    if (1..=9).contains(&n) && n % 2 == 1 {
        Ok(n)
    } else {
        Err(ConfigError::BadMaxVoters(n))
    }
}

/// Checks `--remove-unreachable-after`.
pub fn validate_remove_unreachable(d: Option<Duration>) -> Result<Option<Duration>, ConfigError> {
    match d {
        Some(got) if got < REMOVE_UNREACHABLE_FLOOR => {
            Err(ConfigError::RemoveUnreachableTooShort {
                got,
                floor: REMOVE_UNREACHABLE_FLOOR,
            })
        }
        other => Ok(other),
    }
}

/// How the membership follows the StatefulSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Members beyond this many voters stay learners.
    pub max_voters: usize,
    /// This peer votes but never leads.
    pub witness: bool,
    /// On a requested shutdown, ask to be removed from the membership.
    pub leave_on_shutdown: bool,
    /// The leader removes a voter unreachable this long (off when `None`).
    pub remove_unreachable_after: Option<Duration>,
    /// With `--replicas`: the StatefulSet's name (`web` for `web-3`); joins of names that are
    /// not `web-N` (nor configured peers) are refused.
    pub statefulset: Option<String>,
}

impl Default for Membership {
    fn default() -> Self {
        Membership {
            max_voters: DEFAULT_MAX_VOTERS,
            witness: false,
            leave_on_shutdown: true,
            remove_unreachable_after: None,
            statefulset: None,
        }
    }
}

/// `--app-health`: how this peer checks its own application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppHealthCheck {
    /// Checked with GET; a 2xx within `timeout` is healthy.
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures that make the application unhealthy.
    pub failures: u32,
}

/// Checks the `--app-health*` flags.
pub fn validate_app_health(
    url: Option<&str>,
    interval: Duration,
    timeout: Duration,
    failures: u32,
) -> Result<Option<AppHealthCheck>, ConfigError> {
    let Some(url) = url else { return Ok(None) };
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "http://".len()
    {
        return Err(ConfigError::AppHealth(format!(
            "--app-health must be an http:// URL of the local application, e.g. http://127.0.0.1:8080/healthz (got {url:?})"
        )));
    }
    if interval.is_zero() || timeout.is_zero() || failures == 0 {
        return Err(ConfigError::AppHealth(
            "--app-health-interval, --app-health-timeout and --app-health-failures must be above zero".into(),
        ));
    }
    Ok(Some(AppHealthCheck {
        url: url.to_string(),
        interval,
        timeout,
        failures,
    }))
}

/// One voter of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer's name, e.g. `web-0`.
    pub name: String,
    /// Raft id derived from the name.
    pub id: NodeId,
    /// `host:port` of its peer listener.
    pub addr: String,
}

impl Peer {
    pub fn new(name: String, addr: String) -> Self {
        Peer {
            id: node_id(&name),
            name,
            addr,
        }
    }

    pub fn node(&self) -> PeerNode {
        PeerNode {
            name: self.name.clone(),
            addr: self.addr.clone(),
        }
    }
}

/// The validated configuration of a peer.
#[derive(Debug, Clone)]
pub struct Config {
    /// Election (cluster) name; peers of another election are refused.
    pub election: String,
    /// This peer.
    pub me: Peer,
    /// The configured peers, sorted by name: the members of the FIRST cluster (bootstrap) and
    /// whom to contact to join. Once a cluster exists, its membership is what Raft committed.
    /// This peer is among them, unless it is a StatefulSet pod beyond the first `--replicas`.
    pub peers: Vec<Peer>,
    /// How the membership follows the StatefulSet.
    pub membership: Membership,
    /// Where the peer (Raft) listener binds.
    pub peer_listen: SocketAddr,
    /// Where the application API binds.
    pub http: SocketAddr,
    /// Where the probe listener (health, readiness, metrics) binds, if anywhere.
    pub probe_http: Option<SocketAddr>,
    /// Directory of the sled database.
    pub data_dir: PathBuf,
    /// Raft timings.
    pub timing: Timing,
    /// Upper bound on the whole graceful shutdown, hand-off included.
    pub shutdown_timeout: Duration,
    /// Log entries between snapshots; the log is purged behind each snapshot.
    pub snapshot_logs: u64,
    /// Secret shared by the peers of the election; authenticates peer traffic when set.
    pub peer_secret: Option<Vec<u8>>,
    /// How far a peer request's timestamp may be from this peer's clock.
    pub peer_auth_window: Duration,
    /// Peer requests travel over one long-lived connection per peer (`--peer-transport
    /// stream`, the default); `false`: one HTTP request each, as releases before streams.
    pub peer_streams: bool,
    /// `--peer-tls-*`: peers speak only TLS 1.3 with certificates of this CA (off when `None`).
    pub peer_tls: Option<TlsFiles>,
    /// `--app-health`: leadership follows the application's health (off when `None`).
    pub app_health: Option<AppHealthCheck>,
    /// Push streams (SSE) and blocking queries open at once on the application API; more are
    /// answered 503.
    pub max_streams: usize,
    /// Slots each job's ledger remembers (`--job-history`); older ones are forgotten and
    /// never granted again.
    pub job_history: u32,
    /// The schedule mode: jobs the leader runs by itself (empty: off).
    pub schedules: Schedules,
}

impl Config {
    /// The first cluster's voters as openraft's membership map.
    pub fn members(&self) -> BTreeMap<NodeId, PeerNode> {
        self.peers.iter().map(|p| (p.id, p.node())).collect()
    }

    /// Whether this peer is one of the first cluster's members (it may bootstrap).
    pub fn bootstraps(&self) -> bool {
        self.peers.iter().any(|p| p.id == self.me.id)
    }

    /// Whether `name` may speak to this peer: any valid peer name, or with `--replicas`, a
    /// sibling pod of the StatefulSet or a configured peer.
    pub fn may_speak(&self, name: &str) -> bool {
        if !valid_name(name, 253) {
            return false;
        }
        match &self.membership.statefulset {
            None => true,
            Some(base) => {
                self.peers.iter().any(|p| p.name == name)
                    || name
                        .strip_prefix(base.as_str())
                        .and_then(|rest| rest.strip_prefix('-'))
                        .is_some_and(|ord| canonical_ordinal(ord).is_some())
            }
        }
    }

    /// The names a certificate of peer `name` may carry under `--peer-tls-*`: its id and its
    /// DNS name (a configured peer's host, or with `--replicas` the StatefulSet's
    /// `NAME.DOMAIN`, the domain this peer's own address has).
    pub fn tls_names(&self, name: &str) -> Vec<String> {
        let host = match self.peers.iter().find(|p| p.name == name) {
            Some(p) => Some(host_of(&p.addr).to_string()),
            None => self.membership.statefulset.as_ref().and_then(|_| {
                let own = host_of(&self.me.addr);
                let domain = own.strip_prefix(self.me.name.as_str())?.strip_prefix('.')?;
                Some(format!("{name}.{domain}"))
            }),
        };
        names_of(name, host.as_deref())
    }

    /// The other configured peers.
    pub fn others(&self) -> Vec<PeerNode> {
        self.peers
            .iter()
            .filter(|p| p.id != self.me.id)
            .map(Peer::node)
            .collect()
    }

    /// Name of a voter by its Raft id.
    pub fn name_of(&self, id: NodeId) -> Option<&str> {
        self.peers
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.as_str())
    }

    /// A fingerprint of the member names, compared between peers at bootstrap so that peers
    /// started with different peer lists never form a cluster together.
    pub fn members_digest(&self) -> u64 {
        members_digest(self.peers.iter().map(|p| p.name.as_str()))
    }
}

/// Fingerprint of a set of member names (order-independent: the caller's list is sorted).
pub fn members_digest<'a>(names: impl Iterator<Item = &'a str>) -> u64 {
    let mut sorted: Vec<&str> = names.collect();
    sorted.sort_unstable();
    xxhash_rust::xxh3::xxh3_64(sorted.join("\n").as_bytes())
}

fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks an election name.
pub fn validate_election(name: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::EmptyElection);
    }
    if !valid_name(name, 63) {
        return Err(ConfigError::BadElection(name.to_string()));
    }
    Ok(())
}

/// Parses `ID=HOST:PORT,ID=HOST:PORT,...`. Whitespace around entries is ignored; an empty
/// entry (a trailing comma) is an error, as it usually hides a typo.
pub fn parse_peers(list: &str) -> Result<Vec<Peer>, ConfigError> {
    let mut peers: Vec<Peer> = Vec::new();
    for raw in list.split(',') {
        let entry = raw.trim();
        let bad = |why| ConfigError::BadPeerEntry {
            entry: entry.to_string(),
            why,
        };
        if entry.is_empty() {
            return Err(bad("empty entry"));
        }
        let (name, addr) = entry.split_once('=').ok_or_else(|| bad("missing '='"))?;
        let (name, addr) = (name.trim(), addr.trim());
        if !valid_name(name, 253) {
            return Err(ConfigError::BadName(name.to_string()));
        }
        validate_host_port(addr).map_err(bad)?;
        if peers.iter().any(|p| p.name == name) {
            return Err(ConfigError::DuplicatePeer(name.to_string()));
        }
        peers.push(Peer::new(name.to_string(), addr.to_string()));
    }
    sort_and_check_ids(peers)
}

/// The derived peers and the listed ones together: a name listed twice must have the same
/// address.
pub fn merge_peers(peers: Vec<Peer>) -> Result<Vec<Peer>, ConfigError> {
    let mut merged: Vec<Peer> = Vec::new();
    for p in peers {
        match merged.iter().find(|m| m.name == p.name) {
            Some(m) if m.addr == p.addr => {}
            Some(_) => return Err(ConfigError::DuplicatePeer(p.name)),
            None => merged.push(p),
        }
    }
    sort_and_check_ids(merged)
}

fn sort_and_check_ids(mut peers: Vec<Peer>) -> Result<Vec<Peer>, ConfigError> {
    peers.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, a) in peers.iter().enumerate() {
        if let Some(b) = peers[i + 1..].iter().find(|b| b.id == a.id) {
            return Err(ConfigError::IdCollision(a.name.clone(), b.name.clone()));
        }
    }
    Ok(peers)
}

/// Checks `HOST:PORT` where HOST is a DNS name, an IPv4 address or a bracketed IPv6 address.
fn validate_host_port(addr: &str) -> Result<(), &'static str> {
    let (host, port) = addr.rsplit_once(':').ok_or("missing ':PORT'")?;
    let port: u16 = port
        .parse()
        .map_err(|_| "port is not a number from 1 to 65535")?;
    if port == 0 {
        return Err("port is not a number from 1 to 65535");
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| "bad IPv6 address");
    }
    let dns_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if dns_ok {
        Ok(())
    } else {
        Err("host is not a DNS name or an IP address")
    }
}

/// The ordinal of a StatefulSet pod name's suffix, when it is one (`0`, `7`, never `07`).
fn canonical_ordinal(ord: &str) -> Option<u32> {
    let plain = !ord.is_empty() && ord.bytes().all(|b| b.is_ascii_digit());
    let canonical = ord == "0" || !ord.starts_with('0');
    (plain && canonical)
        .then(|| ord.parse::<u32>().ok())
        .flatten()
}

/// Splits a StatefulSet pod name `NAME-ORDINAL`.
pub fn statefulset_name(id: &str) -> Result<(&str, u32), ConfigError> {
    id.rsplit_once('-')
        .and_then(|(base, ord)| Some((base, canonical_ordinal(ord)?)))
        .filter(|(base, _)| !base.is_empty())
        .ok_or_else(|| ConfigError::NotStatefulSetName(id.to_string()))
}

/// A StatefulSet pod's own entry: `ID.DOMAIN:PORT`.
pub fn statefulset_peer(id: &str, domain: &str, port: u16) -> Result<Peer, ConfigError> {
    statefulset_name(id)?;
    let addr = format!("{id}.{}:{port}", domain.trim_matches('.'));
    validate_host_port(&addr).map_err(|why| ConfigError::BadPeerEntry {
        entry: addr.clone(),
        why,
    })?;
    Ok(Peer::new(id.to_string(), addr))
}

/// Derives the first cluster of a StatefulSet: `id` is `NAME-ORDINAL`, the peers are `NAME-0`
/// .. `NAME-(replicas-1)` at `NAME-i.DOMAIN:PORT` (the stable names a headless Service gives).
/// A pod of a higher ordinal (the StatefulSet was scaled up) is not among them: it joins.
pub fn statefulset_peers(
    id: &str,
    replicas: u32,
    domain: &str,
    port: u16,
) -> Result<Vec<Peer>, ConfigError> {
    if !(1..=99).contains(&replicas) {
        return Err(ConfigError::BadReplicas(replicas));
    }
    let (base, _ordinal) = statefulset_name(id)?;
    let domain = domain.trim_matches('.');
    let peers = (0..replicas)
        .map(|i| {
            let name = format!("{base}-{i}");
            let addr = format!("{name}.{domain}:{port}");
            validate_host_port(&addr).map_err(|why| ConfigError::BadPeerEntry {
                entry: addr.clone(),
                why,
            })?;
            Ok(Peer::new(name, addr))
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    sort_and_check_ids(peers)
}

/// Where the peer listener binds when no address is given: the IP of this peer's own entry
/// when it is an IP literal (tests on loopback), otherwise every interface (a pod).
pub fn default_peer_listen(me: &Peer) -> Result<SocketAddr, ConfigError> {
    let (host, port) = me
        .addr
        .rsplit_once(':')
        .ok_or_else(|| ConfigError::NoListenAddr(me.addr.clone()))?;
    let port: u16 = port
        .parse()
        .map_err(|_| ConfigError::NoListenAddr(me.addr.clone()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = host.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    Ok(SocketAddr::new(ip, port))
}

/// Picks this peer out of the list.
pub fn find_me(peers: &[Peer], id: &str) -> Result<Peer, ConfigError> {
    peers
        .iter()
        .find(|p| p.name == id)
        .cloned()
        .ok_or_else(|| ConfigError::IdNotInPeers {
            id: id.to_string(),
            list: peers
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_peer_list() {
        let peers = parse_peers("b=127.0.0.1:2, a=host.example:1,c=[::1]:3").unwrap();
        let names: Vec<_> = peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(peers[0].addr, "host.example:1");
        assert_eq!(peers[0].id, node_id("a"));
    }

    #[test]
    fn refuses_malformed_lists() {
        for bad in [
            "",
            "a",
            "a=",
            "a=host",
            "a=host:0",
            "a=host:x",
            "a=1.2.3.4:5,",
            "=h:1",
            "a=h_h:1",
            "a=[zz]:1",
        ] {
            assert!(parse_peers(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            parse_peers("a=h:1,a=h:2"),
            Err(ConfigError::DuplicatePeer("a".into()))
        );
    }

    #[test]
    fn derives_statefulset_peers() {
        let peers = statefulset_peers("web-1", 3, "web.ns.svc.cluster.local.", 4041).unwrap();
        let addrs: Vec<_> = peers.iter().map(|p| p.addr.as_str()).collect();
        assert_eq!(
            addrs,
            [
                "web-0.web.ns.svc.cluster.local:4041",
                "web-1.web.ns.svc.cluster.local:4041",
                "web-2.web.ns.svc.cluster.local:4041"
            ]
        );
        assert_eq!(
            statefulset_peers("web-7", 3, "d", 1).map(|p| p.len()),
            Ok(3),
            "a pod beyond the first cluster derives it too"
        );
        assert!(matches!(
            statefulset_peers("web", 3, "d", 1),
            Err(ConfigError::NotStatefulSetName(_))
        ));
        assert!(matches!(
            statefulset_peers("web-01", 3, "d", 1),
            Err(ConfigError::NotStatefulSetName(_))
        ));
        assert!(matches!(
            statefulset_peers("web-0", 0, "d", 1),
            Err(ConfigError::BadReplicas(0))
        ));
    }

    #[test]
    fn listen_address_follows_own_entry() {
        let ip = Peer::new("a".into(), "127.0.0.7:9000".into());
        assert_eq!(
            default_peer_listen(&ip).unwrap(),
            "127.0.0.7:9000".parse().unwrap()
        );
        let dns = Peer::new("a".into(), "a.svc:9000".into());
        assert_eq!(
            default_peer_listen(&dns).unwrap(),
            "0.0.0.0:9000".parse().unwrap()
        );
    }

    #[test]
    fn timings_are_ordered() {
        assert!(Timing::default().validate().is_ok());
        let t = Timing {
            heartbeat: Duration::from_millis(200),
            ..Timing::default()
        };
        assert!(t.validate().is_err());
        assert!(Timing::default().leader_lease() < Timing::default().election_max);
    }

    #[test]
    fn digest_ignores_order() {
        assert_eq!(
            members_digest(["a", "b"].into_iter()),
            members_digest(["b", "a"].into_iter())
        );
        assert_ne!(
            members_digest(["a", "b"].into_iter()),
            members_digest(["a", "c"].into_iter())
        );
    }
}

/// Parses a listen address: `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT` (as the old sidecar's
/// `--http=localhost:4040`) or `:PORT` (every interface).
pub fn parse_listen_addr(s: &str) -> Result<SocketAddr, String> {
    let bad = || format!("{s:?} is not a listen address (IP:PORT, localhost:PORT or :PORT)");
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    match host {
        "localhost" => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
        "" => Ok(SocketAddr::from(([0, 0, 0, 0], port))),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod listen_tests {
    use super::parse_listen_addr;

    #[test]
    fn accepts_the_old_sidecar_forms() {
        assert_eq!(
            parse_listen_addr("localhost:4040").unwrap().to_string(),
            "127.0.0.1:4040"
        );
        assert_eq!(
            parse_listen_addr(":4040").unwrap().to_string(),
            "0.0.0.0:4040"
        );
        assert_eq!(
            parse_listen_addr("[::1]:80").unwrap().to_string(),
            "[::1]:80"
        );
        assert!(parse_listen_addr("example.com:80").is_err());
        assert!(parse_listen_addr("localhost").is_err());
    }
}

#[cfg(test)]
mod membership_tests {
    use super::*;

    #[test]
    fn the_voter_cap_is_odd_and_small() {
        assert_eq!(validate_max_voters(5), Ok(5));
        assert_eq!(validate_max_voters(1), Ok(1));
        for bad in [0, 2, 4, 11] {
            assert_eq!(
                validate_max_voters(bad),
                Err(ConfigError::BadMaxVoters(bad))
            );
        }
    }

    #[test]
    fn unreachable_removal_has_a_floor() {
        assert!(validate_remove_unreachable(Some(Duration::from_secs(29))).is_err());
        assert!(validate_remove_unreachable(Some(Duration::from_secs(30))).is_ok());
        assert_eq!(validate_remove_unreachable(None), Ok(None));
    }

    #[test]
    fn pods_beyond_the_first_cluster_have_their_own_entry() {
        let me = statefulset_peer("web-7", "web.ns.svc.", 4041).unwrap();
        assert_eq!(me.addr, "web-7.web.ns.svc:4041");
        assert!(statefulset_peer("web", "d", 1).is_err());
    }
}
