//! Asking the peers of a container cluster over HTTP, where each can be reached now: its
//! `clients` address, or the host port Docker published (which changes on every start).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::agree::Ask;
use crate::answer::Answer;
use crate::http;

/// Asks peers where their API can be reached; cheap to clone into a sampling task.
#[derive(Clone)]
pub struct Probe {
    client: reqwest::Client,
    names: Vec<String>,
    addrs: Arc<Mutex<Vec<Option<SocketAddr>>>>,
}

impl Probe {
    pub(super) fn new(timeout: Duration, names: Vec<String>) -> Probe {
        let n = names.len();
        Probe {
            client: http::client(timeout),
            names,
            addrs: Arc::new(Mutex::new(vec![None; n])),
        }
    }

    /// Where peer `i`'s application API is reached now, if anywhere.
    pub fn addr(&self, i: usize) -> Option<SocketAddr> {
        self.addrs.lock().unwrap_or_else(|p| p.into_inner())[i]
    }

    pub(super) fn set_addr(&self, i: usize, addr: Option<SocketAddr>) {
        self.addrs.lock().unwrap_or_else(|p| p.into_inner())[i] = addr;
    }

    /// `GET path` on peer `i`: status and body.
    pub async fn get(&self, i: usize, path: &str) -> Option<(u16, String)> {
        http::get(&self.client, self.addr(i)?, path).await
    }
}

impl Ask for Probe {
    fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    async fn ask(&self, i: usize) -> Option<Answer> {
        http::ask(&self.client, self.addr(i)?).await
    }
}
