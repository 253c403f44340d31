//! What the API and the page share: the handlers' state, the error answer, and the access
//! checks (Host and Origin on every state-changing request, the admin and reporter tokens, the
//! form token, the JSON content type).

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::hub::{Hub, Refused};

/// Who may change what, and which Host names are this server.
pub(crate) struct Access {
    /// The address the server is bound to.
    pub bind: IpAddr,
    /// Extra names clients may use for this server (`--public-host`).
    pub public_hosts: Vec<String>,
    /// Required to change blocks and forget nodes when bound off loopback (`--admin-token`).
    pub admin_token: Option<String>,
    /// Required to post reports, if set (`--report-token`).
    pub report_token: Option<String>,
    /// The status page's form token, random per server start.
    pub form_token: String,
}

/// What every handler sees.
#[derive(Clone)]
pub(crate) struct AppState {
    pub hub: Arc<Hub>,
    pub access: Arc<Access>,
    /// `embedded` or `mongodb`, for `/healthz`.
    pub store: &'static str,
}

/// A refused request: its status and a message naming what was wrong, sent as
/// `{"error": "..."}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// The HTTP status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What was wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }
}

impl From<Refused> for ApiError {
    fn from(why: Refused) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The request body, or the reason it could not be read (too large, too slow).
pub(crate) fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| ApiError::new(r.status(), r.body_text()))
}

/// A JSON body of a request that must say `Content-Type: application/json` (a browser cannot
/// send that cross-origin without asking first, which this server never allows).
pub(crate) fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/json, not {content_type:?}"),
        ));
    }
    serde_json::from_slice(&body(raw)?)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Compares without stopping at the first difference, so timing does not leak a token.
fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

impl Access {
    /// Whether the `Host` header names this server: the bound IP (any IP literal when bound to
    /// every address), `localhost` on a loopback bind, or a `--public-host` name. A DNS
    /// rebinding attack carries the attacker's own name, so it fails here.
    fn host_allowed(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        if self
            .public_hosts
            .iter()
            .any(|p| p.eq_ignore_ascii_case(name))
        {
            return true;
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => self.bind.is_unspecified() || ip == self.bind,
            Err(_) => name.eq_ignore_ascii_case("localhost") && self.bind.is_loopback(),
        }
    }

    /// Refuses a state-changing request whose `Host` is not this server or whose `Origin`
    /// (sent by browsers) is another site.
    fn check_site(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
            return Err(ApiError::bad_request("missing Host header"));
        };
        if !self.host_allowed(host) {
            return Err(ApiError::forbidden(format!(
                "Host {host:?} is not this server (start it with --public-host NAME to allow a \
                 name)"
            )));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let origin_host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            if !origin_host.is_some_and(|o| o.eq_ignore_ascii_case(host)) {
                return Err(ApiError::forbidden(format!(
                    "cross-origin request refused (Origin {origin:?}, Host {host:?})"
                )));
            }
        }
        Ok(())
    }

    /// Whether changes need the admin token: on any non-loopback bind.
    pub fn token_required(&self) -> bool {
        !self.bind.is_loopback()
    }

    /// Allows an admin change if no token is needed or the header or form field carries it.
    pub fn check_admin(
        &self,
        headers: &HeaderMap,
        form_token: Option<&str>,
    ) -> Result<(), ApiError> {
        if !self.token_required() {
            return Ok(());
        }
        let Some(token) = &self.admin_token else {
            return Err(ApiError::forbidden(
                "changes are disabled: the logserver is bound to a non-loopback address and was \
                 started without --admin-token (or ELECTION_ADMIN_TOKEN)",
            ));
        };
        if bearer(headers)
            .or(form_token)
            .is_some_and(|t| same(t, token))
        {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong admin token: send `Authorization: Bearer TOKEN` (or fill in \
                 the page's token field)",
            ))
        }
    }

    /// Allows a report batch if no reporter token is configured or the header carries it.
    pub fn check_reporter(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match &self.report_token {
            Some(token) if !bearer(headers).is_some_and(|t| same(t, token)) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong reporter token: nodes send it with --report-token (or \
                     ELECTION_REPORT_TOKEN) as `Authorization: Bearer TOKEN`",
            )),
            _ => Ok(()),
        }
    }

    /// Allows a form post only with the token of a page this server rendered.
    pub fn check_form(&self, field: Option<&str>) -> Result<(), ApiError> {
        if field.is_some_and(|t| same(t, &self.form_token)) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "missing or stale form token (field csrf): reload /status and submit again",
            ))
        }
    }
}

/// Middleware: every request that is not a read passes the Host and Origin checks.
pub(crate) async fn same_site(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let reads = [Method::GET, Method::HEAD, Method::OPTIONS];
    if !reads.contains(request.method()) {
        if let Err(e) = s.access.check_site(request.headers()) {
            return e.into_response();
        }
    }
    next.run(request).await
}

/// A fresh random token (128 bits, hex) from the operating system.
pub(crate) fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(bind: &str) -> Access {
        Access {
            bind: bind.parse().unwrap(),
            public_hosts: vec!["logs.example".to_string()],
            admin_token: None,
            report_token: None,
            form_token: "t".to_string(),
        }
    }

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn host_must_name_this_server() {
        let local = access("127.0.0.1");
        for ok in [
            "127.0.0.1:4711",
            "localhost:4711",
            "LOGS.example",
            "logs.example:80",
        ] {
            assert!(local.check_site(&headers(ok, None)).is_ok(), "{ok}");
        }
        for bad in [
            "evil.example:4711",
            "127.0.0.2:4711",
            "[::1]:4711",
            "localhost.evil",
        ] {
            assert!(local.check_site(&headers(bad, None)).is_err(), "{bad}");
        }
        let any = access("0.0.0.0");
        assert!(any.check_site(&headers("10.1.2.3:4711", None)).is_ok());
        assert!(any.check_site(&headers("[fe80::1]:4711", None)).is_ok());
        assert!(any.check_site(&headers("localhost:4711", None)).is_err());
        assert!(any.check_site(&headers("attacker.example", None)).is_err());
    }

    #[test]
    fn origin_must_be_this_site() {
        let a = access("127.0.0.1");
        let host = "127.0.0.1:4711";
        assert!(
            a.check_site(&headers(host, Some("http://127.0.0.1:4711")))
                .is_ok()
        );
        for bad in [
            "http://evil.example",
            "null",
            "http://127.0.0.1:4712",
            "file://x",
        ] {
            let err = a.check_site(&headers(host, Some(bad))).unwrap_err();
            assert_eq!(err.status, StatusCode::FORBIDDEN, "{bad}");
        }
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        let a = access("127.0.0.1");
        assert!(a.check_form(Some("t")).is_ok());
        assert!(a.check_form(Some("u")).is_err());
        assert!(a.check_form(None).is_err());
        let token = random_token().unwrap();
        assert_eq!(token.len(), 32);
        assert_ne!(token, random_token().unwrap());
    }
}
