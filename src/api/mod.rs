//! The two HTTP listeners: the application API ([`app`], localhost by default) and peer
//! traffic ([`peer`]).

pub mod app;
pub mod checks;
pub mod peer;
pub mod server;
