//! Fault proxies for peer traffic on loopback, one in front of each peer, so that partitions,
//! bridges and delays need no root.
//!
//! Every peer is given the same `--peers` list, which points at one proxy per peer; the peer
//! itself listens on another port (`--peer-listen`). The proxy in front of peer B reads the
//! sender's header (its name is given, [`Proxies::sender_header`]) in the first request on each
//! connection to learn the sender A, and from then on applies the state of the directed link
//! A→B to that connection (requests and their answers alike). A link is:
//!
//! * `Open`, with an optional one-way delay on every chunk in both directions;
//! * `Drop`: a black hole. Bytes already on an established connection are held and delivered
//!   when the link opens again (as TCP retransmission would: late, possibly stale requests);
//!   connections opened during the cut never reach B and are closed when the link opens;
//! * `Reject`: every connection is reset at once and new ones are reset on arrival.
//!
//! Apart from the links, traffic can be lost in one direction only ([`Net::lose`]): every byte
//! peer A sends to peer B, its requests to B and its answers to B's requests alike, is held as
//! on a dropped link, while B's bytes to A still flow.
//!
//! The links are keyed by sender name rather than by address because the addresses a peer
//! dials come from the Raft membership, written by whichever peer bootstrapped the cluster.
//!
//! Over peer TLS no header can be read: the proxy then finds the sender by its socket
//! ([`Proxies::by_process`]): the connection's source port in `/proc/net/tcp` gives the
//! socket, and the process holding it (`/proc/PID/fd`) names itself with `--id`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Open,
    Drop,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    pub mode: Mode,
    /// Added to every chunk, in each direction.
    pub delay: Duration,
}

impl LinkState {
    pub const OPEN: LinkState = LinkState {
        mode: Mode::Open,
        delay: Duration::ZERO,
    };
}

struct Shared {
    names: Vec<String>,
    sender_header: String,
    by_process: bool,
    /// `links[from][to]`.
    links: Vec<Vec<watch::Sender<LinkState>>>,
    /// `lost[from][to]`: every byte `from` sends to `to` is held.
    lost: Vec<Vec<watch::Sender<bool>>>,
}

/// The proxies of a cluster and the state of every directed link.
pub struct Net {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

/// The proxies of a cluster: where each listens and forwards to, and how senders say who
/// they are.
#[derive(Debug, Clone)]
pub struct Proxies {
    /// The peers' names, as they send them in [`Proxies::sender_header`].
    pub names: Vec<String>,
    /// The request header that carries the sender's name.
    pub sender_header: String,
    /// Find the sender by the process that holds the connection's other end instead (peer
    /// TLS: headers are encrypted).
    pub by_process: bool,
    /// Where the proxy in front of peer `i` listens.
    pub listen: Vec<SocketAddr>,
    /// Where peer `i` itself listens.
    pub target: Vec<SocketAddr>,
}

impl Net {
    /// Starts one proxy per peer (inside a Tokio runtime): `listen[i]` forwards to `target[i]`.
    pub fn start(proxies: Proxies) -> std::io::Result<Net> {
        let n = proxies.names.len();
        let links = (0..n)
            .map(|_| (0..n).map(|_| watch::channel(LinkState::OPEN).0).collect())
            .collect();
        let lost = (0..n)
            .map(|_| (0..n).map(|_| watch::channel(false).0).collect())
            .collect();
        let shared = Arc::new(Shared {
            names: proxies.names,
            sender_header: proxies.sender_header,
            by_process: proxies.by_process,
            links,
            lost,
        });
        let mut tasks = Vec::new();
        for to in 0..n {
            let listener = std::net::TcpListener::bind(proxies.listen[to])?;
            listener.set_nonblocking(true)?;
            let listener = TcpListener::from_std(listener)?;
            tasks.push(tokio::spawn(accept_loop(
                listener,
                to,
                proxies.target[to],
                shared.clone(),
            )));
        }
        Ok(Net { shared, tasks })
    }

    fn len(&self) -> usize {
        self.shared.names.len()
    }

    /// Sets the directed link `from → to`.
    pub fn set(&self, from: usize, to: usize, state: LinkState) {
        self.shared.links[from][to].send_replace(state);
    }

    /// Cuts both directions between every peer of `a` and every peer of `b`.
    pub fn cut(&self, a: &[usize], b: &[usize], mode: Mode) {
        let state = LinkState {
            mode,
            delay: Duration::ZERO,
        };
        for &x in a {
            for &y in b {
                if x != y {
                    self.set(x, y, state);
                    self.set(y, x, state);
                }
            }
        }
    }

    /// Delays every chunk to and from `peer`.
    pub fn slow(&self, peer: usize, delay: Duration) {
        let state = LinkState {
            mode: Mode::Open,
            delay,
        };
        for other in 0..self.len() {
            if other != peer {
                self.set(peer, other, state);
                self.set(other, peer, state);
            }
        }
    }

    /// Loses (`true`) or delivers again (`false`) every byte that `from` sends to `to`: its
    /// requests to `to` and its answers to `to`'s requests. What `to` sends to `from` still
    /// flows. Lost bytes are held, as on a dropped link, and delivered when it ends.
    pub fn lose(&self, from: usize, to: usize, lost: bool) {
        self.shared.lost[from][to].send_replace(lost);
    }

    /// Opens every link with no delay and ends every one-way loss.
    pub fn heal(&self) {
        for row in &self.shared.links {
            for link in row {
                link.send_replace(LinkState::OPEN);
            }
        }
        for row in &self.shared.lost {
            for lost in row {
                lost.send_replace(false);
            }
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, to: usize, target: SocketAddr, shared: Arc<Shared>) {
    // Connection tasks live in this set: aborting the loop aborts them all.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(connection(stream, to, target, shared.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Reads until the end of the first request's headers; returns the bytes and the sender.
async fn read_sender(stream: &mut TcpStream, shared: &Shared) -> Option<(Vec<u8>, usize)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]);
            let from = head.lines().find_map(|line| {
                let (k, v) = line.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(&shared.sender_header)
                    .then(|| v.trim().to_string())
            })?;
            let index = shared.names.iter().position(|n| *n == from)?;
            return Some((buf, index));
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    }
}

/// The sender of a connection, by the process that holds its other end: the socket of the
/// source port (`/proc/net/tcp`), then the process with that socket open and an `--id` of
/// one of the peers. Tried for up to a second (the table may lag the accept a moment).
async fn sender_process(stream: &TcpStream, shared: &Shared) -> Option<usize> {
    let source = stream.peer_addr().ok()?;
    let proxy = stream.local_addr().ok()?;
    let names = shared.names.clone();
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        // Reading /proc is blocking work (and /proc/net/tcp grows long after many
        // reconnections): off the runtime's workers, or the proxies' accept loops starve.
        let names = names.clone();
        let found = tokio::task::spawn_blocking(move || {
            socket_inode(source, proxy).and_then(|inode| owner(inode, &names))
        })
        .await
        .ok()
        .flatten();
        if found.is_some() {
            return found;
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `/proc/net/tcp`'s form of an IPv4 address and port.
fn proc_addr(addr: SocketAddr) -> Option<String> {
    let SocketAddr::V4(v4) = addr else {
        return None;
    };
    Some(format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(v4.ip().octets()),
        v4.port()
    ))
}

/// The inode of the live socket from `source` to `proxy` (IPv4), from `/proc/net/tcp`. The
/// same source port may also appear in sockets of earlier connections (TIME_WAIT, inode 0)
/// or to other destinations: both ends must match.
fn socket_inode(source: SocketAddr, proxy: SocketAddr) -> Option<u64> {
    let (local, remote) = (proc_addr(source)?, proc_addr(proxy)?);
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    // One substring search over the table, then only the matching lines are split.
    let needle = format!(" {local} {remote} ");
    table.match_indices(&needle).find_map(|(at, _)| {
        let end = table[at..].find('\n').map_or(table.len(), |n| at + n);
        let fields: Vec<&str> = table[at..end].split_whitespace().collect();
        // local remote state queues timer retransmits uid timeout inode
        let inode: u64 = fields.get(8)?.parse().ok()?;
        (inode != 0).then_some(inode)
    })
}

/// The index in `names` of the process (`--id NAME`) that holds socket `inode`.
fn owner(inode: u64, names: &[String]) -> Option<usize> {
    let wanted = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = entry.path();
        let Ok(cmdline) = std::fs::read(pid.join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let Some(index) = args
            .windows(2)
            .find(|w| w[0] == b"--id")
            .and_then(|w| names.iter().position(|n| n.as_bytes() == w[1]))
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(pid.join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str())
        });
        if holds {
            return Some(index);
        }
    }
    None
}

/// Closes with a reset (linger 0), as a refused or broken connection would.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
}

async fn connection(mut inbound: TcpStream, to: usize, target: SocketAddr, shared: Arc<Shared>) {
    let _ = inbound.set_nodelay(true);
    let sender = match shared.by_process {
        false => read_sender(&mut inbound, &shared).await,
        true => sender_process(&inbound, &shared)
            .await
            .map(|from| (Vec::new(), from)),
    };
    let Some((first, from)) = sender else {
        return;
    };
    let mut link = shared.links[from][to].subscribe();
    let state = *link.borrow_and_update();
    match state.mode {
        Mode::Reject => return reset(inbound),
        Mode::Drop => {
            // Opened during a cut: it never got through. Close it once the cut ends.
            while link.borrow_and_update().mode == Mode::Drop {
                if link.changed().await.is_err() {
                    return;
                }
            }
            return reset(inbound);
        }
        Mode::Open => {}
    }
    let outbound =
        match tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(target)).await {
            Ok(Ok(s)) => s,
            _ => return reset(inbound),
        };
    let _ = outbound.set_nodelay(true);
    let (in_rd, in_wr) = inbound.into_split();
    let (out_rd, out_wr) = outbound.into_split();
    let up = pump(
        in_rd,
        out_wr,
        first,
        link.clone(),
        shared.lost[from][to].subscribe(),
    );
    let down = pump(
        out_rd,
        in_wr,
        Vec::new(),
        link,
        shared.lost[to][from].subscribe(),
    );
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        let result = tokio::select! {
            r = &mut up, if !up_done => { up_done = true; r }
            r = &mut down, if !down_done => { down_done = true; r }
        };
        if let Err(halves) = result {
            // Rejected: reset both sides now.
            if let Some((rd, wr)) = halves {
                if let Ok(s) = rd.reunite(wr) {
                    reset(s);
                }
            }
            return;
        }
    }
}

type Halves = Option<(OwnedReadHalf, OwnedWriteHalf)>;

/// Copies `rd` to `wr` (after `first`), applying the link's delay and cut and this direction's
/// loss (`lost`). Returns `Err` when the link was set to `Reject`, with the halves when they
/// can be reset.
async fn pump(
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    first: Vec<u8>,
    mut link: watch::Receiver<LinkState>,
    mut lost: watch::Receiver<bool>,
) -> Result<(), Halves> {
    let (tx, mut queue) = mpsc::unbounded_channel::<(Instant, Option<Vec<u8>>)>();
    let delay_now = |link: &watch::Receiver<LinkState>| link.borrow().delay;
    if !first.is_empty() {
        let _ = tx.send((Instant::now() + delay_now(&link), Some(first)));
    }
    let reader_link = link.clone();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = rd.read(&mut buf).await.unwrap_or(0);
            let due = Instant::now() + delay_now(&reader_link);
            if n == 0 {
                let _ = tx.send((due, None));
                return rd;
            }
            if tx.send((due, Some(buf[..n].to_vec()))).is_err() {
                return rd;
            }
        }
    };
    tokio::pin!(reader);
    let mut rd_back: Option<OwnedReadHalf> = None;
    loop {
        let item = tokio::select! {
            rd = &mut reader, if rd_back.is_none() => { rd_back = Some(rd); continue; }
            item = queue.recv() => item,
            changed = link.changed() => {
                if changed.is_err() || link.borrow().mode == Mode::Reject {
                    return Err(rd_back.map(|rd| (rd, wr)));
                }
                continue;
            }
        };
        let Some((due, chunk)) = item else {
            return Ok(());
        };
        tokio::time::sleep_until(due).await;
        // Held while the link is cut or this direction lost; reset if the link is rejected.
        loop {
            let mode = link.borrow_and_update().mode;
            let held = *lost.borrow_and_update();
            match (mode, held) {
                (Mode::Open, false) => break,
                (Mode::Reject, _) => return Err(rd_back.map(|rd| (rd, wr))),
                _ => {
                    let changed = tokio::select! {
                        c = link.changed() => c,
                        c = lost.changed() => c,
                    };
                    if changed.is_err() {
                        return Err(None);
                    }
                }
            }
        }
        match chunk {
            Some(bytes) => {
                if wr.write_all(&bytes).await.is_err() {
                    return Ok(());
                }
            }
            None => {
                let _ = wr.shutdown().await;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests;
