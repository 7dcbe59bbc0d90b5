//! Per-link TCP proxies that the bench can cut and heal, to partition one peer away from the
//! others on loopback.
//!
//! Every ordered pair of peers (i → j) gets its own proxy: peer i's `--peers` list names the
//! proxy as j's address (only the names must match between peers). A cut link behaves like a
//! network that drops packets: bytes are neither read nor forwarded, new connections are
//! accepted but not connected onwards, so requests hang until the sender's timeout. When the
//! link heals, held bytes and connections go through.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One directed link.
pub struct Link {
    pub listen: SocketAddr,
    up: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Link {
    /// Starts a proxy forwarding `listen` to `upstream`.
    pub async fn start(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<Link> {
        let listener = TcpListener::bind(listen).await?;
        let (up, rx) = watch::channel(true);
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                tokio::spawn(forward(conn, upstream, rx.clone()));
            }
        });
        Ok(Link { listen, up, task })
    }

    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn wait_up(rx: &mut watch::Receiver<bool>) -> bool {
    rx.wait_for(|up| *up).await.is_ok()
}

async fn forward(client: TcpStream, upstream: SocketAddr, mut rx: watch::Receiver<bool>) {
    if !wait_up(&mut rx).await {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let a = tokio::spawn(pump(cr, sw, rx.clone()));
    let b = tokio::spawn(pump(sr, cw, rx));
    let _ = tokio::join!(a, b);
}

/// Copies one direction while the link is up; holds the bytes while it is down.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut rx: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !wait_up(&mut rx).await {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        if !wait_up(&mut rx).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server behind a link: bytes pass while it is up, are held while it is cut,
    /// and arrive once it heals.
    #[tokio::test]
    async fn cut_holds_bytes_and_heal_releases_them() {
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = echo.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = conn.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let listen = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("addr");
        let link = Link::start(listen, upstream).await.expect("link");
        let mut conn = TcpStream::connect(listen).await.expect("connect");
        let mut buf = [0u8; 4];
        conn.write_all(b"ping").await.expect("write");
        conn.read_exact(&mut buf).await.expect("echo");
        assert_eq!(&buf, b"ping");

        link.set_up(false);
        conn.write_all(b"pong").await.expect("write");
        let held =
            tokio::time::timeout(Duration::from_millis(200), conn.read_exact(&mut buf)).await;
        assert!(held.is_err(), "bytes crossed a cut link");

        link.set_up(true);
        tokio::time::timeout(Duration::from_secs(2), conn.read_exact(&mut buf))
            .await
            .expect("bytes released after the heal")
            .expect("read");
        assert_eq!(&buf, b"pong");
    }
}
