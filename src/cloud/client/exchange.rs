//! One upstream call on the wire: the retry loop around attempts, and each
//! attempt's credentials, fresh date and nonce, signature, headers, send
//! and decode. The typed operations in the parent module only build
//! parameters and read answers.

use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::{Instrument, Span, field::Empty};

use super::{API_VERSION, SignatureVersion, VpcClient};
use crate::{
    cloud::{
        credentials::Credentials,
        endpoint::Endpoint,
        error::{CloudError, DRY_RUN_OPERATION, code},
        retry::Decision,
        sign::{self, V1Input, V3Input},
        wire,
    },
    domain::RegionId,
};

impl VpcClient {
    /// One operation with retries, inside a span for the whole call.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        action: &'static str,
        region: &RegionId,
        params: Vec<(String, String)>,
        deadline: Option<Instant>,
    ) -> Result<T, CloudError> {
        let span = tracing::info_span!(
            "vpc.call",
            otel.name = action,
            "acs.action" = action,
            "acs.region" = %region,
            "acs.attempts" = Empty,
            "acs.request_id" = Empty,
            "error.type" = Empty,
        );
        let started = Instant::now();
        let result = async {
            let endpoint = self.inner.endpoints.resolve(region)?;
            self.with_retries(action, region, &endpoint, &params, deadline)
                .await
        }
        .instrument(span.clone())
        .await;
        // A dry run whose checks passed is answered with an error status:
        // for the metrics, it is a success.
        let outcome = match &result {
            Err(err) if err.code() == DRY_RUN_OPERATION => Ok(()),
            other => other.as_ref().map(|_| ()).map_err(CloudError::kind),
        };
        self.metrics
            .call_finished(action, outcome, started.elapsed());
        if let Err(err) = &result {
            span.record("error.type", err.code());
            if let Some(id) = err.request_id() {
                span.record("acs.request_id", id);
            }
        }
        result
    }

    async fn with_retries<T: DeserializeOwned>(
        &self,
        action: &'static str,
        region: &RegionId,
        endpoint: &Endpoint,
        params: &[(String, String)],
        deadline: Option<Instant>,
    ) -> Result<T, CloudError> {
        let policy = &self.inner.config.retry;
        let started = Instant::now();
        let limit = policy.limit(started, deadline);
        let mut token_refreshed = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let err = match self
                .attempt(action, region, endpoint, params, attempt, limit, deadline)
                .await
            {
                Ok((value, request_id)) => {
                    let span = Span::current();
                    span.record("acs.attempts", attempt);
                    span.record("acs.request_id", request_id.as_str());
                    return Ok(value);
                }
                Err(err) => err,
            };
            if err.code() == code::BUDGET_EXHAUSTED {
                // The budget already waited as long as the call may; a
                // poll stretches its cadence instead.
                Span::current().record("acs.attempts", attempt);
                return Err(err.with_attempts(attempt));
            }
            if err.kind() == crate::error::Kind::Throttled {
                self.budget.throttled(region, action);
            }
            // A rejected STS token may just have been rotated: fetch a fresh
            // one and try once more.
            let decision = if err.code().starts_with("InvalidSecurityToken")
                && !token_refreshed
                && attempt < policy.max_attempts
                && Instant::now() < limit
            {
                token_refreshed = true;
                self.inner.credentials.invalidate();
                Decision::RetryAfter(Duration::ZERO)
            } else {
                policy.decide(&err, attempt, started, deadline)
            };
            match decision {
                Decision::RetryAfter(wait) => {
                    self.metrics.retried(action);
                    tracing::warn!(
                        action,
                        attempt,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        code = err.code(),
                        request_id = err.request_id().unwrap_or(""),
                        "retrying the cloud call: {err}"
                    );
                    tokio::time::sleep(wait).await;
                }
                Decision::GiveUp => {
                    Span::current().record("acs.attempts", attempt);
                    return Err(err.with_attempts(attempt));
                }
            }
        }
    }

    /// One HTTP exchange, bounded by `limit`, in its own client span.
    #[allow(clippy::too_many_arguments)]
    async fn attempt<T: DeserializeOwned>(
        &self,
        action: &'static str,
        region: &RegionId,
        endpoint: &Endpoint,
        params: &[(String, String)],
        attempt: u32,
        limit: Instant,
        deadline: Option<Instant>,
    ) -> Result<(T, String), CloudError> {
        let expired = || {
            if deadline == Some(limit) {
                CloudError::deadline_exceeded(format!(
                    "{action} did not complete before the caller's deadline"
                ))
            } else {
                CloudError::new(
                    crate::error::Kind::Unavailable,
                    code::TIMEOUT,
                    format!(
                        "{action} did not complete within the retry budget of {:?}",
                        self.inner.config.retry.max_total
                    ),
                )
            }
        };
        if Instant::now() >= limit {
            return Err(expired());
        }
        // Every attempt is a call the account's quota counts.
        let purpose = self.purpose;
        if let Err(wait) = self.budget.take(region, action, purpose, Some(limit)).await {
            return Err(CloudError::new(
                crate::error::Kind::Throttled,
                code::BUDGET_EXHAUSTED,
                format!(
                    "{action} in {region} would exceed this gateway's share of the account's quota ({})",
                    self.budget
                        .quota(action)
                        .map_or_else(|| "unset".to_owned(), |q| q.to_string())
                ),
            )
            .with_retry_after(wait));
        }
        let span = tracing::info_span!(
            "vpc.http",
            otel.name = "POST",
            otel.kind = "client",
            "http.request.method" = "POST",
            "server.address" = %endpoint.address,
            "server.port" = i64::from(endpoint.port),
            "url.full" = %endpoint.redacted_url(),
            "http.request.resend_count" = i64::from(attempt.saturating_sub(1)),
            "http.response.status_code" = Empty,
            "error.type" = Empty,
            "acs.action" = action,
            "acs.region" = %region,
            "acs.attempt" = attempt,
            "acs.request_id" = Empty,
        );
        let result = tokio::time::timeout_at(limit, self.exchange(action, endpoint, params))
            .instrument(span.clone())
            .await
            .unwrap_or_else(|_| Err(expired()));
        match &result {
            Ok((_, request_id)) => {
                span.record("acs.request_id", request_id.as_str());
            }
            Err(err) => {
                span.record("error.type", err.code());
                if let Some(id) = err.request_id() {
                    span.record("acs.request_id", id);
                }
                tracing::debug!(parent: &span, code = err.code(), "attempt failed: {err}");
            }
        }
        result
    }

    /// Credentials, signature, request, answer.
    async fn exchange<T: DeserializeOwned>(
        &self,
        action: &'static str,
        endpoint: &Endpoint,
        params: &[(String, String)],
    ) -> Result<(T, String), CloudError> {
        let credentials = self
            .inner
            .credentials
            .credentials()
            .await
            .inspect_err(|_| {
                self.metrics
                    .credentials()
                    .refresh_failed(self.inner.credentials.name());
            })?;
        let date = sign::format_date(SystemTime::now());
        let nonce = sign::new_nonce();
        let (url, headers) = self.sign(action, endpoint, params, &credentials, &date, &nonce);
        let headers = self.build_request_headers(headers)?;
        let secrets = [
            credentials.access_key_id(),
            credentials.access_key_secret(),
            credentials.security_token().unwrap_or(""),
        ];

        let response = self
            .inner
            .http
            .post(url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| transport_error(e, endpoint))?;
        let status = response.status().as_u16();
        Span::current().record("http.response.status_code", i64::from(status));
        let retry_after = response
            .headers()
            .get("x-acs-retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(e, endpoint))?;
        let request_id = serde_json::from_slice::<wire::RequestIdOnly>(&body)
            .map(|r| r.request_id)
            .unwrap_or_default();

        if (200..300).contains(&status) {
            let value = serde_json::from_slice::<T>(&body).map_err(|e| {
                CloudError::invalid_response(
                    format!(
                        "{action} answered HTTP {status} with a body this client cannot read: {e}"
                    ),
                    Some(request_id.clone()),
                )
            })?;
            Ok((value, request_id))
        } else {
            Err(CloudError::from_response(status, retry_after, &body).redact(&secrets))
        }
    }

    /// The URL (with its query) and the headers the signature needs.
    fn sign(
        &self,
        action: &str,
        endpoint: &Endpoint,
        params: &[(String, String)],
        credentials: &Credentials,
        date: &str,
        nonce: &str,
    ) -> (String, Vec<(String, String)>) {
        let acs_headers = vec![
            ("x-acs-action".to_owned(), action.to_owned()),
            ("x-acs-version".to_owned(), API_VERSION.to_owned()),
            (
                "x-acs-credentials-provider".to_owned(),
                self.inner.credentials.name().to_owned(),
            ),
        ];
        match self.inner.config.signature_version {
            SignatureVersion::V3 => {
                let signed = sign::sign_v3(
                    &V3Input {
                        method: "POST",
                        host: &endpoint.authority,
                        path: "/",
                        query: params,
                        headers: &acs_headers,
                        body: b"",
                        date,
                        nonce,
                    },
                    credentials,
                );
                let url = if signed.canonical_query.is_empty() {
                    format!("{}/", endpoint.base_url)
                } else {
                    format!("{}/?{}", endpoint.base_url, signed.canonical_query)
                };
                (url, signed.headers)
            }
            SignatureVersion::V1 => {
                let signed = sign::sign_v1(
                    &V1Input {
                        method: "POST",
                        action,
                        version: API_VERSION,
                        params,
                        date,
                        nonce,
                        format: "json",
                    },
                    credentials,
                );
                // V1 signs no headers; these only tell the gateway what comes.
                (
                    format!("{}/?{}", endpoint.base_url, signed.url_query()),
                    acs_headers,
                )
            }
        }
    }

    /// The one place where outgoing request headers are assembled. The W3C
    /// `traceparent` of the current (HTTP client) span is added last: it is
    /// not signed, so it can be added after signing.
    fn build_request_headers(
        &self,
        signed: Vec<(String, String)>,
    ) -> Result<HeaderMap, CloudError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        // The body is always empty; say so, as the SDKs do (hyper omits it).
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        if let Ok(ua) = HeaderValue::from_str(&self.inner.config.user_agent) {
            headers.insert(USER_AGENT, ua);
        }
        for (name, value) in signed {
            // reqwest writes Host from the URL: the same authority we signed.
            if name == "host" {
                continue;
            }
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| CloudError::config(format!("{name:?} is not a valid header name")))?;
            // The value may be a token: name the header, never the value.
            let mut header_value = HeaderValue::from_str(&value).map_err(|_| {
                CloudError::credentials(format!(
                    "the value of header {name} is not a valid header value"
                ))
            })?;
            if matches!(
                name.as_str(),
                "authorization" | "x-acs-security-token" | "x-acs-accesskey-id"
            ) {
                header_value.set_sensitive(true);
            }
            headers.insert(header_name, header_value);
        }
        crate::telemetry::propagation::inject_current(&mut headers);
        Ok(headers)
    }
}

/// A failure below HTTP. reqwest's messages name the URL, whose query holds
/// the signature (and, for V1, the AccessKeyId and token), so the URL is
/// dropped and the endpoint without its query named instead.
fn transport_error(err: reqwest::Error, endpoint: &Endpoint) -> CloudError {
    let (code, what) = if err.is_timeout() {
        (code::TIMEOUT, "timed out")
    } else if err.is_connect() {
        (code::CONNECT_FAILED, "could not connect")
    } else {
        (code::TRANSPORT, "failed")
    };
    // A request that could not even be built fails the same way every
    // time: trying again only spends the caller's deadline.
    let class = if err.is_builder() {
        crate::error::Kind::Unknown
    } else {
        crate::error::Kind::Unavailable
    };
    let err = err.without_url();
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let detail = if causes.is_empty() {
        err.to_string()
    } else {
        format!("{err}: {}", causes.join(": "))
    };
    CloudError::new(
        class,
        code,
        format!(
            "the request to {} {what}: {detail}",
            endpoint.redacted_url()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::client::install_crypto_provider;

    #[test]
    fn only_failures_below_a_built_request_are_retried() {
        install_crypto_provider();
        let endpoint = Endpoint::parse_override("http://127.0.0.1:9").unwrap();
        let unbuildable = reqwest::Client::new()
            .get("http://127.0.0.1:9/")
            .header("x-bad", "line\nbreak")
            .build()
            .unwrap_err();
        assert!(unbuildable.is_builder());
        let err = transport_error(unbuildable, &endpoint);
        assert!(!err.is_retryable(), "{err:?}");
        assert_eq!(err.code(), code::TRANSPORT);
    }
}
