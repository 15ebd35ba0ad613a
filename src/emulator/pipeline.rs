//! One API request's path through the emulator: read the wire, resolve the
//! action, authenticate, draw on the account's quota, suffer the configured
//! faults, run the action, answer as the cloud does.
//!
//! Every request gets a RequestId (an uppercase UUID, as the cloud's) and is
//! counted under its action and outcome. The shared state is locked only for
//! the synchronous steps; the injected latency is slept outside the lock, so
//! a slow request never holds up the others.

use axum::{
    body::{Body, to_bytes},
    extract::{ConnectInfo, Request, State},
    response::Response,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::Value;

use super::{
    Emulator,
    actions::{self, Action, Ctx},
    auth,
    conn::ConnHandle,
    counters::{self, Counters},
    errors::{ApiError, code},
    faults::{self, Fault},
    signature::{Claims, RequestView},
    wire::Params,
};

/// The largest body the emulator reads (the API's bodies are small forms).
const MAX_BODY: usize = 1 << 20;
/// `HostId` of every answer: the cloud's central endpoint.
const HOST_ID: &str = "vpc.aliyuncs.com";

fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// A JSON answer with the cloud's headers.
fn respond(
    status: StatusCode,
    body: &Value,
    request_id: &str,
    retry_after_ms: Option<u64>,
) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-acs-request-id", id);
    }
    if let Some(ms) = retry_after_ms {
        headers.insert("x-acs-retry-after", HeaderValue::from(ms));
    }
    response
}

pub(super) fn error_response(err: &ApiError, request_id: &str) -> Response {
    respond(
        err.status,
        &err.body(request_id, HOST_ID),
        request_id,
        err.retry_after_ms,
    )
}

/// The action name to count a request under: a known name or `(unknown)`,
/// so garbage cannot grow the counters.
fn counted_action(headers: &HeaderMap, query: &Params, form: &Params) -> &'static str {
    let named = headers
        .get("x-acs-action")
        .and_then(|v| v.to_str().ok())
        .or_else(|| query.get("Action"))
        .or_else(|| form.get("Action"));
    named
        .and_then(Action::from_name)
        .map(Action::name)
        .unwrap_or(counters::UNKNOWN_ACTION)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// Handles one request to `/`.
pub(super) async fn handle(State(emu): State<Emulator>, req: Request) -> Response {
    let request_id = new_request_id();
    let (parts, body) = req.into_parts();
    if let Some(traceparent) = parts
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        emu.lock().counters.record_traceparent(traceparent);
    }
    let conn = parts
        .extensions
        .get::<ConnectInfo<ConnHandle>>()
        .map(|c| c.0.clone());
    let query = Params::parse(parts.uri.query().unwrap_or("").as_bytes());
    let body = match to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(_) => {
            let err = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "The request body is larger than 1 MiB.",
            );
            return error_response(&err, &request_id);
        }
    };
    let form = if is_form(&parts.headers) {
        Params::parse(&body)
    } else {
        Params::default()
    };
    let counted = counted_action(&parts.headers, &query, &form);
    if parts.method != Method::POST && parts.method != Method::GET {
        let err = ApiError::bad_request(
            code::UNSUPPORTED_METHOD,
            format!(
                "The HTTP method {} is not supported: use POST or GET.",
                parts.method
            ),
        );
        emu.record(counted, &err.code);
        return error_response(&err, &request_id);
    }
    let view = RequestView {
        method: parts.method.as_str(),
        query: &query,
        form: &form,
        headers: &parts.headers,
        body: &body,
    };

    // Who is calling, for what.
    let admitted = Claims::read(&view).and_then(|claims| {
        let action = Action::resolve(&claims.action, &claims.version)?;
        let mut shared = emu.lock();
        let shared = &mut *shared;
        let key = auth::authenticate(
            &view,
            &claims,
            &shared.world.keys,
            &mut shared.nonces,
            emu.inner.clock.wall(),
        )?;
        Ok((action, key, claims.operation_params(&view)))
    });
    let (action, key, params) = match admitted {
        Ok(admitted) => admitted,
        Err(err) => {
            emu.record(counted, &err.code);
            return error_response(&err, &request_id);
        }
    };

    // Within the account's quota: a throttled call goes no further.
    let throttled = {
        let mut shared = emu.lock();
        let shared = &mut *shared;
        // A region the cloud does not have is no region's budget; the
        // action refuses it.
        let region = params
            .non_empty("RegionId")
            .filter(|r| shared.world.regions.contains(*r));
        let verdict = match region {
            Some(region) => {
                shared
                    .quotas
                    .admit(&key.account_id, region, action, emu.inner.clock.now())
            }
            None => Ok(()),
        };
        verdict.err().inspect(|err| {
            Counters::bump(&mut shared.counters.throttled, action.name());
            shared.counters.record(action.name(), &err.code);
        })
    };
    if let Some(err) = throttled {
        return error_response(&err, &request_id);
    }

    // What trouble this request meets.
    let decision = {
        let mut shared = emu.lock();
        let shared = &mut *shared;
        let decision = faults::decide(&mut shared.faults, action.name(), &mut shared.rng);
        if decision.fault != Fault::Ok {
            Counters::bump(&mut shared.counters.faults_injected, decision.fault.name());
        }
        decision
    };
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    if let Some(err) = decision.fault.error(decision.retry_after_ms) {
        emu.record(action.name(), &err.code);
        return error_response(&err, &request_id);
    }
    if decision.fault == Fault::Reset {
        emu.record(action.name(), counters::CONNECTION_RESET);
        return reset(conn, &request_id);
    }

    // The action itself.
    let result = {
        let mut shared = emu.lock();
        let shared = &mut *shared;
        let now = emu.inner.clock.now();
        shared.counters.modifications_completed += shared.world.settle(now) as u64;
        let mut ctx = Ctx {
            world: &mut shared.world,
            ledger: &mut shared.ledger,
            counters: &mut shared.counters,
            timings: shared.timings,
            now,
            key: &key,
            request_id: &request_id,
        };
        let result = actions::run(action, &params, &mut ctx);
        let outcome = match (&result, decision.fault) {
            (Ok(_), Fault::AppliedThenDrop) => counters::APPLIED_THEN_DROPPED,
            (Ok(_), _) => counters::SUCCESS,
            (Err(err), _) => &err.code,
        };
        shared.counters.record(action.name(), outcome);
        result
    };
    match result {
        Ok(_) if decision.fault == Fault::AppliedThenDrop => reset(conn, &request_id),
        Ok(body) => {
            // A replayed answer keeps its own RequestId; the header says so too.
            let id = body
                .get("RequestId")
                .and_then(Value::as_str)
                .unwrap_or(&request_id)
                .to_owned();
            respond(StatusCode::OK, &body, &id, None)
        }
        Err(err) => error_response(&err, &request_id),
    }
}

/// Resets the connection; without one to reset (a router served by someone
/// else's listener) it answers 500 `InternalError` instead.
fn reset(conn: Option<ConnHandle>, request_id: &str) -> Response {
    match conn {
        Some(conn) => {
            tracing::debug!(peer = %conn.peer, "emulated connection reset");
            conn.reset();
            // Never written: the connection fails first.
            Response::new(Body::empty())
        }
        None => error_response(&ApiError::internal(), request_id),
    }
}

/// Anything but `/` and the admin API: the cloud's answer to an unknown path.
pub(super) async fn not_found() -> Response {
    let err = ApiError::not_found(
        code::API_NOT_FOUND,
        "Specified api is not found, please check your url and method.",
    );
    error_response(&err, &new_request_id())
}
