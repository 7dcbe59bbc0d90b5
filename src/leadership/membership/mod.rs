//! Membership that follows the StatefulSet (docs/DESIGN.md, "Membership"): the configured
//! peers are whom to contact and the first cluster; after that, peers join (learner first,
//! promoted once caught up, up to `--max-voters`) and leave (on SIGTERM), one change at a
//! time through openraft's joint consensus.
//!
//! * [`plan`]: the leader's controller as a pure step (promote, demote, remove the silent);
//! * [`changes`]: joins and leaves as the leader makes them, forwarded by followers;
//! * [`controller`]: the loops that run the step and probe quiet members;
//! * [`agent`]: this peer joining, and leaving on shutdown.

pub mod agent;
pub mod changes;
pub mod controller;
pub mod plan;

pub use agent::Left;
pub use changes::Changes;
