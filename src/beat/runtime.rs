//! openraft's async runtime: tokio's, with openraft's timers on the beat and its tick held
//! while it has nothing to do.
//!
//! openraft 0.9's tick task wakes every 1.5 × `heartbeat_interval` on every peer, switched off
//! or not (`tick_loop` sleeps, then checks its switch). A tick has work only where openraft
//! leads (heartbeats), campaigns, or may start an election (its election timer, switched on
//! by pre-vote): on a follower of a fresh leader it finds nothing, and its wake-up came on top
//! of the heartbeat's own, at another moment (each peer's grid counts from its own start).
//! So the tick's sleep, the only `sleep_until` openraft makes, waits while neither holds
//! ([`raft_leads_or_campaigns`], [`raft_elections`]) until one does, or for [`IDLE_TICK`]
//! at most.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use openraft::async_runtime::{AsyncRuntime, TokioOneShotSender};
use openraft::{OptionalSend, TokioInstant, TokioRuntime};
use tokio::sync::Notify;

use super::{next, raft_deadline};

/// The longest a held tick waits: a safety net, should a switch be missed.
pub const IDLE_TICK: Duration = Duration::from_millis(1024);

/// openraft's state on this peer is leader or candidate (true until the node first says).
static LEADS_OR_CAMPAIGNS: AtomicBool = AtomicBool::new(true);
/// openraft's elections are switched on (true until the node first says).
static ELECTIONS: AtomicBool = AtomicBool::new(true);
/// Wakes held ticks when either of the above turns on.
static TICK_NEEDED: Notify = Notify::const_new();

/// openraft's state is now leader or candidate (`true`), or neither. The node calls this at
/// each change of openraft's server state. The switches are process-wide, as openraft's
/// runtime is a type: one peer per process, as the binary runs it.
pub fn raft_leads_or_campaigns(on: bool) {
    switch(&LEADS_OR_CAMPAIGNS, on);
}

/// openraft's elections were switched on or off (`Raft::runtime_config().elect`).
pub fn raft_elections(on: bool) {
    switch(&ELECTIONS, on);
}

fn switch(flag: &AtomicBool, on: bool) {
    if !flag.swap(on, Ordering::SeqCst) && on {
        TICK_NEEDED.notify_waiters();
    }
}

fn tick_has_work() -> bool {
    LEADS_OR_CAMPAIGNS.load(Ordering::SeqCst) || ELECTIONS.load(Ordering::SeqCst)
}

/// openraft's sleep: tokio's, boxed so that the tick's can also end when it has work again.
pub struct RaftSleep(Pin<Box<dyn Future<Output = ()> + Send + Sync>>);

impl Future for RaftSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

/// How often openraft's tick comes while its elections are on. openraft checks its randomised
/// election timeout only at a tick: on the grid, every 128 ms at the default timings, the whole
/// random range (160-240 ms) fell on one or two ticks, so two candidates of processes started
/// together (grids aligned) whose votes changed at the same moment campaigned again at the same
/// tick, term after term, and neither won (a CI run of
/// `auth::only_peers_with_the_secret_take_part`: both still candidates in term 39 after 10 s,
/// terms 39 and 40 each started by both). Ticking this often while elections are on keeps the
/// randomness openraft draws; elections are on only while no leader is fresh, so an idle peer
/// never ticks this fast.
pub const ELECTION_TICK: Duration = Duration::from_millis(5);

/// The tick's sleep. While openraft's elections are on: until `deadline`, or [`ELECTION_TICK`]
/// from now if that comes first, off the grid. Else while the tick has work: until `deadline`
/// put on the grid. Else until it has work again (or [`IDLE_TICK`]). A sleep also ends when
/// a switch turns on, so that the next one follows the new state.
fn tick_sleep(deadline: tokio::time::Instant) -> RaftSleep {
    RaftSleep(Box::pin(async move {
        let needed = TICK_NEEDED.notified();
        tokio::pin!(needed);
        // Registered before the switches are read: a switch turned on in between still wakes it.
        needed.as_mut().enable();
        let until = if ELECTIONS.load(Ordering::SeqCst) {
            deadline.min(tokio::time::Instant::now() + ELECTION_TICK)
        } else if tick_has_work() {
            raft_deadline(deadline)
        } else {
            next(IDLE_TICK)
        };
        tokio::select! {
            _ = needed => {}
            _ = tokio::time::sleep_until(until) => {}
        }
    }))
}

/// openraft's tokio runtime with its timers on the beat, once [`super::put_raft_on_grid`]
/// said so: `sleep_until`, which openraft uses for its tick alone, ends at the first grid
/// point at or after the deadline (a tick every 1.5 × `heartbeat_interval` becomes one every
/// [`super::grid_period`]: 45 ms → 64 ms), and so do its timeouts (an append-entries given up
/// after one heartbeat interval, 30 ms, is given up at the next grid point instead, 30 to 94
/// ms later: a timer due before the thread's next wake-up costs a write to tokio's wake-up
/// descriptor, and another wake-up, each time it is armed). The network adapter keeps waiting
/// for an answer after openraft gave up anyway (`leadership::network`). The tick is held
/// while it has nothing to do (the module's doc). Everything else is tokio's, unchanged.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GridRuntime;

impl AsyncRuntime for GridRuntime {
    type JoinError = <TokioRuntime as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::JoinHandle<T>;
    type Sleep = RaftSleep;
    type Instant = TokioInstant;
    type TimeoutError = <TokioRuntime as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> =
        <TokioRuntime as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = <TokioRuntime as AsyncRuntime>::ThreadLocalRng;
    type OneshotSender<T: OptionalSend> = TokioOneShotSender<T>;
    type OneshotReceiver<T: OptionalSend> = <TokioRuntime as AsyncRuntime>::OneshotReceiver<T>;
    type OneshotReceiverError = <TokioRuntime as AsyncRuntime>::OneshotReceiverError;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        TokioRuntime::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        RaftSleep(Box::pin(tokio::time::sleep(duration)))
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        tick_sleep(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(raft_deadline(TokioInstant::now() + duration), future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(raft_deadline(deadline), future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        TokioRuntime::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        TokioRuntime::thread_rng()
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        TokioRuntime::oneshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test]
    async fn a_held_tick_waits_past_its_deadline_and_ends_when_openraft_leads() {
        // Clear of the idle safety net's next grid point, so that only the switch can end it.
        if next(IDLE_TICK) < Instant::now() + Duration::from_millis(300) {
            tokio::time::sleep_until(next(IDLE_TICK) + Duration::from_millis(1)).await;
        }
        raft_elections(false);
        raft_leads_or_campaigns(false);
        let deadline = Instant::now() + Duration::from_millis(20);
        let mut tick = std::pin::pin!(tick_sleep(deadline));
        let early = tokio::time::timeout(Duration::from_millis(100), tick.as_mut()).await;
        assert!(early.is_err(), "a held tick ended at its deadline");
        raft_leads_or_campaigns(true);
        let woken = tokio::time::timeout(Duration::from_millis(100), tick.as_mut()).await;
        assert!(woken.is_ok(), "the held tick did not end when openraft led");
        // With work (it leads), a tick ends at its deadline.
        let deadline = Instant::now() + Duration::from_millis(20);
        tick_sleep(deadline).await;
        assert!(Instant::now() >= deadline);
        raft_elections(true);
    }

    #[tokio::test]
    async fn while_elections_are_on_the_tick_comes_every_few_milliseconds_off_the_grid() {
        raft_leads_or_campaigns(false);
        raft_elections(true);
        // openraft's deadline far away: the tick still comes within ELECTION_TICK, so that its
        // randomised election timeout is checked at about the moment it ends.
        let start = Instant::now();
        tick_sleep(start + Duration::from_millis(500)).await;
        let took = start.elapsed();
        assert!(took >= ELECTION_TICK, "{took:?}");
        assert!(took < Duration::from_millis(100), "{took:?}");
        raft_leads_or_campaigns(true);
    }
}
