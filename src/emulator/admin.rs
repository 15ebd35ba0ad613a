//! The emulator's own control surface under `/_emulator/`: what tests and
//! benchmarks use to set the stage and read the score.
//!
//! Plain JSON over HTTP, unauthenticated (the emulator listens on loopback
//! and holds only fake resources). docs/emulator.md has examples.
//!
//! | method & path | does |
//! |---|---|
//! | `GET /_emulator/` | lists these endpoints |
//! | `GET /_emulator/counters` | the [`Counters`](super::Counters) |
//! | `POST /_emulator/counters/reset` | zeroes them |
//! | `GET /_emulator/fixtures` | the current world as a fixture document |
//! | `PUT /_emulator/fixtures` | loads a fixture document (clears tasks, tokens, nonces) |
//! | `POST /_emulator/reset` | back to the start: fixtures, timings, faults, quotas, counters |
//! | `GET`/`PUT /_emulator/timings` | timings in ms; `PUT` takes any subset |
//! | `GET`/`PUT`/`DELETE /_emulator/faults` | the whole fault table |
//! | `PUT`/`DELETE /_emulator/faults/{action}` | one action's faults (`*` for all) |
//! | `GET`/`PUT /_emulator/quotas` | the rate limits; `PUT` replaces them (`null` or a count of 0: none) |

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, State},
    response::Response,
    routing::{get, post, put},
};
use http::{HeaderValue, StatusCode, header};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;

use super::{
    Emulator,
    config::TimingsPatch,
    faults::{ActionFaults, FaultTable},
    fixtures::Fixtures,
    quotas::QuotaTable,
};

/// The admin API's path prefix.
pub const PREFIX: &str = "/_emulator";

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let text = serde_json::to_string_pretty(body).unwrap_or_else(|_| "{}".to_owned());
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn ok(body: &impl Serialize) -> Response {
    json_response(StatusCode::OK, body)
}

fn bad_request(message: impl std::fmt::Display) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": message.to_string()}),
    )
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))
}

/// The admin routes, under [`PREFIX`].
pub(super) fn router() -> Router<Emulator> {
    Router::new()
        .route("/_emulator", get(index))
        .route("/_emulator/", get(index))
        .route("/_emulator/counters", get(counters))
        .route("/_emulator/counters/reset", post(reset_counters))
        .route("/_emulator/fixtures", get(get_fixtures).put(put_fixtures))
        .route("/_emulator/reset", post(reset))
        .route("/_emulator/timings", get(get_timings).put(put_timings))
        .route(
            "/_emulator/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
        .route(
            "/_emulator/faults/{action}",
            put(put_action_faults).delete(clear_action_faults),
        )
        .route("/_emulator/quotas", get(get_quotas).put(put_quotas))
}

async fn index() -> Response {
    ok(&json!({
        "endpoints": [
            "GET /_emulator/counters",
            "POST /_emulator/counters/reset",
            "GET /_emulator/fixtures",
            "PUT /_emulator/fixtures",
            "POST /_emulator/reset",
            "GET /_emulator/timings",
            "PUT /_emulator/timings",
            "GET /_emulator/faults",
            "PUT /_emulator/faults",
            "DELETE /_emulator/faults",
            "PUT /_emulator/faults/{action}",
            "DELETE /_emulator/faults/{action}",
            "GET /_emulator/quotas",
            "PUT /_emulator/quotas",
        ],
        "docs": "docs/emulator.md",
    }))
}

async fn counters(State(emu): State<Emulator>) -> Response {
    ok(&emu.counters())
}

async fn reset_counters(State(emu): State<Emulator>) -> Response {
    emu.reset_counters();
    ok(&emu.counters())
}

async fn get_fixtures(State(emu): State<Emulator>) -> Response {
    ok(&emu.fixtures())
}

async fn put_fixtures(State(emu): State<Emulator>, body: Bytes) -> Response {
    let fixtures: Fixtures = match parse(&body) {
        Ok(f) => f,
        Err(why) => return bad_request(why),
    };
    match emu.load_fixtures(&fixtures) {
        Ok(()) => ok(&json!({"loaded": true})),
        Err(e) => bad_request(e),
    }
}

async fn reset(State(emu): State<Emulator>) -> Response {
    emu.reset();
    ok(&json!({"reset": true}))
}

async fn get_timings(State(emu): State<Emulator>) -> Response {
    ok(&emu.timings())
}

async fn put_timings(State(emu): State<Emulator>, body: Bytes) -> Response {
    match parse::<TimingsPatch>(&body) {
        Ok(patch) => ok(&emu.patch_timings(patch)),
        Err(why) => bad_request(why),
    }
}

async fn get_faults(State(emu): State<Emulator>) -> Response {
    ok(&emu.faults())
}

async fn put_faults(State(emu): State<Emulator>, body: Bytes) -> Response {
    let table: FaultTable = match parse(&body) {
        Ok(t) => t,
        Err(why) => return bad_request(why),
    };
    for (action, faults) in &table {
        if let Err(why) = faults.check() {
            return bad_request(format!("{action}: {why}"));
        }
    }
    emu.set_fault_table(table);
    ok(&emu.faults())
}

async fn clear_faults(State(emu): State<Emulator>) -> Response {
    emu.set_fault_table(FaultTable::new());
    ok(&emu.faults())
}

async fn put_action_faults(
    State(emu): State<Emulator>,
    Path(action): Path<String>,
    body: Bytes,
) -> Response {
    let faults: ActionFaults = match parse(&body) {
        Ok(f) => f,
        Err(why) => return bad_request(why),
    };
    if let Err(why) = faults.check() {
        return bad_request(why);
    }
    emu.set_faults(&action, faults);
    ok(&emu.faults())
}

async fn clear_action_faults(State(emu): State<Emulator>, Path(action): Path<String>) -> Response {
    emu.clear_faults(&action);
    ok(&emu.faults())
}

async fn get_quotas(State(emu): State<Emulator>) -> Response {
    ok(&emu.quotas())
}

async fn put_quotas(State(emu): State<Emulator>, body: Bytes) -> Response {
    match parse::<QuotaTable>(&body) {
        Ok(table) => {
            emu.set_quotas(table);
            ok(&emu.quotas())
        }
        Err(why) => bad_request(why),
    }
}
