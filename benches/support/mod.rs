//! What the benchmark harnesses share: authenticated requests, the load driver, medians and RSS.
// Each harness uses a subset.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn authed<T>(m: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(m);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    r
}

/// The middle value; 0 for none.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// A process's resident set, from /proc; 0 when unreadable.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Clone, Copy)]
pub struct RunResult {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

/// `concurrency` workers for `seconds` (after a 500 ms warm-up: connections, pools, caches),
/// each calling `call` in a loop; a call answering false is an error.
pub async fn drive<F, Fut>(seconds: u64, concurrency: usize, call: Arc<F>) -> RunResult
where
    F: Fn(usize) -> Fut + Send + Sync + ?Sized + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let warm_until = Instant::now() + Duration::from_millis(500);
    let mut warm = Vec::new();
    for w in 0..concurrency {
        let call = call.clone();
        warm.push(tokio::spawn(async move {
            while Instant::now() < warm_until {
                call(w).await;
            }
        }));
    }
    for w in warm {
        let _ = w.await;
    }
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(16_384);
            let mut errors = 0u64;
            while Instant::now() < until {
                let t = Instant::now();
                if call(w).await {
                    lat.push(t.elapsed().as_micros() as u32);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.expect("worker");
        all.extend(lat);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    RunResult {
        rps: all.len() as f64 / elapsed,
        p50_ms: f64::from(pct(0.50)) / 1000.0,
        p99_ms: f64::from(pct(0.99)) / 1000.0,
        errors,
    }
}
