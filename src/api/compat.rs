//! The drop-in for nais/elector: `GET /` answers `{"name","last_update"}` and `GET /sse`
//! pushes the same object at once and on every change of leader (to `""` too). The old
//! `leader-elector` sidecar's clients read only `name`, so they keep working on `/`; every
//! other unknown path keeps its exact old answer (`{"name"}`, see [`super::app`]).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Serialize;

use super::events::{states, Streams, KEEP_ALIVE};
use super::view::{NodeView, Published};

/// nais/elector's object, its fields in its order.
#[derive(Serialize)]
struct Elector<'a> {
    name: &'a str,
    last_update: String,
}

fn body(p: &Published) -> String {
    let e = Elector {
        name: &p.obs.name,
        last_update: p.last_update_rfc3339(),
    };
    serde_json::to_string(&e).unwrap_or_else(|_| r#"{"name":""}"#.into())
}

/// `GET /`: who leads now, and since when (as this peer saw it).
pub async fn root(State(view): State<Arc<dyn NodeView>>) -> Response {
    let mut published = view.subscribe().borrow().clone();
    // The name is checked now, as on every other path (a lease may have run out since the
    // last push); `last_update` is the pushed one while the name agrees.
    let name = view.observe().name;
    if name != published.obs.name {
        published.obs.name = name;
        published.last_update = std::time::SystemTime::now();
    }
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body(&published),
    )
        .into_response()
}

/// `GET /sse`: nais/elector's event stream; one event per change of leader name.
pub async fn sse(
    State(view): State<Arc<dyn NodeView>>,
    State(streams): State<Streams>,
) -> Response {
    let permit = match streams.admit() {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let mut last: Option<String> = None;
    let events = states(view.subscribe(), permit).filter_map(move |p| {
        let changed = last.as_deref() != Some(p.obs.name.as_str());
        last = Some(p.obs.name.clone());
        let event = changed.then(|| Ok::<_, Infallible>(Event::default().data(body(&p))));
        std::future::ready(event)
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}
