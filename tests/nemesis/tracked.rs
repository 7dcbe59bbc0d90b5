//! A [`Target`] that records every start and end of a peer process in the run's
//! [`Recorder`], whatever fault (or repair) made it: the membership rules need to know which
//! process answered and whether it ended with everything written (SIGTERM, exit 0) or not
//! (kill -9).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::{Exit, FaultResult, Mode, Target};

use crate::client::Recorder;
use crate::history::Life;

pub struct Tracked<C> {
    pub inner: C,
    pub rec: Arc<Recorder>,
}

/// How a process asked to stop ended, for the record.
fn ended(exit: &Exit) -> Life {
    if exit.code == Some(0) {
        Life::Terminated
    } else {
        Life::Killed
    }
}

impl<C: Target> Target for Tracked<C> {
    fn len(&self) -> usize {
        self.inner.len()
    }

    fn names(&self) -> Vec<String> {
        self.inner.names()
    }

    fn http(&self) -> Vec<SocketAddr> {
        self.inner.http()
    }

    fn can_slow(&self) -> bool {
        self.inner.can_slow()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn start(&mut self, i: usize) {
        self.rec.life(i, self.rec.clock.now(), Life::Started);
        self.inner.start(i).await
    }

    async fn kill(&mut self, i: usize) -> FaultResult<()> {
        self.rec.life(i, self.rec.clock.now(), Life::Killed);
        self.inner.kill(i).await
    }

    async fn pause(&mut self, i: usize) {
        self.inner.pause(i).await
    }

    async fn resume(&mut self, i: usize) {
        self.inner.resume(i).await
    }

    async fn terminate(&mut self, i: usize, timeout: Duration) -> Exit {
        let at = self.rec.clock.now();
        let exit = self.inner.terminate(i, timeout).await;
        self.rec.life(i, at, ended(&exit));
        exit
    }

    async fn terminate_all(&mut self, timeout: Duration) -> Vec<Exit> {
        let at = self.rec.clock.now();
        let exits = self.inner.terminate_all(timeout).await;
        for exit in &exits {
            self.rec.life(exit.peer, at, ended(exit));
        }
        exits
    }

    async fn signal_stop(&mut self, i: usize) -> FaultResult<()> {
        self.inner.signal_stop(i).await
    }

    async fn wait_stopped(&mut self, i: usize, since: Instant, timeout: Duration) -> Exit {
        let exit = self.inner.wait_stopped(i, since, timeout).await;
        self.rec.life(i, self.rec.clock.at(since), ended(&exit));
        exit
    }

    async fn cut(&mut self, a: &[usize], b: &[usize], mode: Mode) -> FaultResult<String> {
        self.inner.cut(a, b, mode).await
    }

    async fn isolate(&mut self, i: usize, mode: Mode) -> FaultResult<String> {
        self.inner.isolate(i, mode).await
    }

    async fn slow(&mut self, i: usize, delay: Duration) -> FaultResult<()> {
        self.inner.slow(i, delay).await
    }

    async fn heal(&mut self) -> FaultResult<()> {
        self.inner.heal().await
    }

    async fn log_tails(&mut self, lines: usize) -> String {
        self.inner.log_tails(lines).await
    }

    async fn keep(&mut self) -> Option<PathBuf> {
        self.inner.keep().await
    }

    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}
