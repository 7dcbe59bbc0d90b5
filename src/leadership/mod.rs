//! The policies openraft 0.9 lacks, which decide who may say "I lead" and keep failover fast
//! and calm (each is explained, with what could go wrong, in `docs/DESIGN.md`):
//!
//! * [`lease`]: the leader lease and the follower's freshness window, checked when an answer
//!   is made; [`network`]: openraft's network adapter, which feeds the lease.
//! * [`campaign`]: when this peer may campaign and when a leader goes quiet (pre-vote gating
//!   with the fast campaign, the split-vote hold, check-quorum) as a pure step;
//!   [`prevote`]: the pre-vote messages' handling and the loop that runs that step.
//! * [`handoff`]: handing leadership over on shutdown or on request; [`health`]: leadership
//!   that follows the application's health; [`caretaker`]: a witness that had to lead hands
//!   over at once.
//! * [`bootstrap`]: forming the cluster with no manual step, and never a second one.
//! * [`membership`]: joins, leaves, learners beyond the voter cap, witnesses.
//! * [`jobs`]: claims of job slots and their outcomes, appended by the leader (concurrent
//!   claims joined into one entry by [`batcher`]);
//!   [`scheduler`]: the leader firing `--job`s at their times, with catch-up.
//! * [`service`]: what this peer does with its peers' requests; [`start`]: starting openraft
//!   under these policies (its periodic loops on [`crate::beat`]).

pub mod app_health;
pub mod batcher;
pub mod bootstrap;
pub mod campaign;
pub mod caretaker;
pub mod handoff;
pub mod health;
pub mod jobs;
pub mod lease;
pub mod membership;
pub mod network;
pub mod prevote;
pub mod scheduler;
pub mod service;
pub mod start;

pub use handoff::{Handoff, Outcome};
pub use lease::Leadership;
pub use network::NetworkFactory;
pub use service::LocalPeer;
