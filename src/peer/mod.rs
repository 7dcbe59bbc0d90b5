//! All that peers say to each other, both sides of it: the messages, paths and headers
//! ([`protocol`]), their authentication ([`auth`]), the sanity checks on openraft's requests
//! ([`checks`]), the outgoing client ([`client`]) and the incoming handlers ([`server`]); the
//! long-lived connection that carries them between two peers ([`links`] opens it,
//! [`server::stream`] accepts it, [`frames`] is what travels on it); when each peer was last
//! heard from, either way ([`contacts`]); optional mutual TLS under all of it ([`tls`]).
//!
//! This layer carries messages and enforces who may send them; it holds no policy. The
//! handlers reach the local peer only through [`server::PeerService`].

pub mod auth;
pub mod checks;
pub mod client;
pub mod contacts;
pub mod frames;
pub mod links;
pub mod protocol;
pub mod server;
pub mod tls;
