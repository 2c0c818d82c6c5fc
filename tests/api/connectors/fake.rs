//! A local HTTP server that plays a provider: a platform's axum router, wrapped so every
//! request is recorded and scripted answers (faults, rate limits, slow replies) can be queued
//! in front of the router's own behaviour.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request as the provider received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The form body as pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        decode_form(&String::from_utf8_lossy(&self.body))
    }

    /// The query string as pairs.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        decode_form(&self.query)
    }

    pub fn query_value(&self, key: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// `application/x-www-form-urlencoded` pairs (also query strings).
pub fn decode_form(s: &str) -> Vec<(String, String)> {
    fn unescape(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unescape(k), unescape(v))
        })
        .collect()
}

/// An answer served instead of the router's, once.
#[derive(Clone, Debug)]
pub struct Scripted {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Wait this long before answering (a slow provider).
    pub delay: Duration,
}

impl Scripted {
    pub fn status(status: u16, body: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(status).expect("a valid status"),
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Scripted>>>,
}

pub struct Fake {
    pub addr: SocketAddr,
    recorder: Recorder,
    task: JoinHandle<()>,
}

async fn record(State(rec): State<Recorder>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    rec.seen.lock().expect("recorder").push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers.clone(),
        body: bytes.clone(),
    });
    let scripted = rec.script.lock().expect("script").pop_front();
    if let Some(s) = scripted {
        if !s.delay.is_zero() {
            tokio::time::sleep(s.delay).await;
        }
        let mut resp = Response::new(Body::from(s.body));
        *resp.status_mut() = s.status;
        for (k, v) in s.headers {
            resp.headers_mut()
                .insert(k, HeaderValue::from_str(&v).expect("a valid header"));
        }
        return resp;
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

impl Fake {
    /// Serves `router` on a fresh loopback port. The listener is bound before this returns, so
    /// requests made right after are accepted (no sleeping for the server).
    pub async fn start(router: Router) -> Self {
        let recorder = Recorder::default();
        let app = router.layer(middleware::from_fn_with_state(recorder.clone(), record));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("fake binds");
        let addr = listener.local_addr().expect("fake address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            recorder,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.recorder.seen.lock().expect("recorder").clone()
    }

    /// Forgets the requests seen so far (a rig's connect-time calls), so a test counts its own.
    pub fn forget(&self) {
        self.recorder.seen.lock().expect("recorder").clear();
    }

    pub fn count(&self) -> usize {
        self.recorder.seen.lock().expect("recorder").len()
    }

    pub fn last(&self) -> Seen {
        self.requests().pop().expect("the fake was called")
    }

    /// Queues an answer for the next request, ahead of the router.
    pub fn then(&self, answer: Scripted) {
        self.recorder
            .script
            .lock()
            .expect("script")
            .push_back(answer);
    }

    /// Queues `n` copies of an answer.
    pub fn then_n(&self, n: usize, answer: Scripted) {
        for _ in 0..n {
            self.then(answer.clone());
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The provider's 401 unless `Authorization` is what the fake expects.
pub fn require_auth(headers: &HeaderMap, expected: &str, unauthorized: Value) -> Option<Response> {
    let got = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    (got != Some(expected))
        .then(|| (StatusCode::UNAUTHORIZED, axum::Json(unauthorized)).into_response())
}
