//! Free loopback ports that no other test or benchmark process hands out at the same time.
//!
//! Ports come from 20000-32767, below Linux's default ephemeral range (32768-60999), so that
//! outgoing connections never take them. Test processes run concurrently (nextest), so each
//! port handed out is claimed with an exclusive `flock` on a file named after it, held for the
//! life of the process: the kernel drops it when the process ends, however it ends.
//!
//! A process that goes once round the whole range (the benchmark starts hundreds of clusters)
//! hands out its own earlier ports again, but only those nothing listens on any more.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Mutex;

use nix::fcntl::{Flock, FlockArg};

const FIRST: u16 = 20000;
const COUNT: u16 = 12768;

/// A port that is free now and that no other process using this kit will hand out while this
/// one runs.
pub fn free_port() -> u16 {
    static CLAIMED: Mutex<Option<HashMap<u16, Flock<std::fs::File>>>> = Mutex::new(None);
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let dir = std::env::temp_dir().join("raft-elector-test-ports");
    std::fs::create_dir_all(&dir).expect("port lock directory");
    let start = FIRST + (std::process::id() % 1280) as u16 * 10;
    let _ = NEXT.compare_exchange(0, start, Ordering::SeqCst, Ordering::SeqCst);
    let bindable = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
    for _ in 0..COUNT {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = FIRST + (port.wrapping_sub(FIRST)) % COUNT;
        let mut claimed = CLAIMED.lock().unwrap_or_else(|p| p.into_inner());
        let claimed = claimed.get_or_insert_with(HashMap::new);
        if claimed.contains_key(&port) {
            // Ours already, from the previous round.
            if bindable(port) {
                return port;
            }
            continue;
        }
        let Ok(file) = std::fs::File::create(dir.join(port.to_string())) else {
            continue;
        };
        let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        if bindable(port) {
            claimed.insert(port, lock);
            return port;
        }
    }
    panic!("no free port in {FIRST}-{}", FIRST + COUNT - 1);
}

/// `127.0.0.1` on a [`free_port`].
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_in_range() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
        for p in ports {
            assert!((FIRST..FIRST + COUNT).contains(&p), "{p}");
            TcpListener::bind(("127.0.0.1", p)).expect("free");
        }
    }
}
