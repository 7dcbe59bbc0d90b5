//! The application-facing HTTP API ([`app`]), built only on the interface it declares itself
//! ([`view::NodeView`]), so that it knows nothing of Raft and is tested against a fake.

pub mod app;
pub mod compat;
pub mod events;
pub mod jobs;
#[cfg(test)]
mod push_tests;
pub mod view;
