//! Circuit breakers per platform and provider origin: a pure state machine, and the map of the
//! origins that are failing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Url;
use tokio::time::Instant;

use crate::domain::Platform;

/// The circuit a request belongs to: its platform and provider origin (only ZeroDB's origin
/// varies, per credential, so one tenant's broken host opens no circuit for the others).
pub fn breaker_key(platform: Platform, url: &Url) -> String {
    format!(
        "{}|{}",
        platform.as_str(),
        url.origin().ascii_serialization()
    )
}

/// A circuit's state. Pure: every transition takes the time, so it is tested without sleeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed {
        failures: u32,
    },
    /// Refusing calls until `until`.
    Open {
        until: Instant,
    },
    /// One probe is out since `since`; others are refused until it answers. A probe whose
    /// caller went away never answers, so after a cool-down another probe may go.
    HalfOpen {
        since: Instant,
    },
}

impl BreakerState {
    /// Ok to call; Err with how long until a call may go.
    pub fn admit(&mut self, now: Instant, cooldown: Duration) -> Result<(), Duration> {
        match *self {
            BreakerState::Closed { .. } => Ok(()),
            BreakerState::Open { until } if now >= until => {
                *self = BreakerState::HalfOpen { since: now };
                Ok(())
            }
            BreakerState::Open { until } => Err(until - now),
            BreakerState::HalfOpen { since } if now >= since + cooldown => {
                *self = BreakerState::HalfOpen { since: now };
                Ok(())
            }
            BreakerState::HalfOpen { since } => Err(since + cooldown - now),
        }
    }

    pub fn failure(&mut self, now: Instant, threshold: u32, cooldown: Duration) {
        *self = match *self {
            BreakerState::Closed { failures } if failures + 1 < threshold => BreakerState::Closed {
                failures: failures + 1,
            },
            // Threshold reached, a probe failed, or a call admitted before the circuit opened
            // failed late: (re)open from now.
            _ => BreakerState::Open {
                until: now + cooldown,
            },
        };
    }
}

/// The circuits of every platform and origin. Only failing ones are kept: closed with no
/// failures is the default.
pub struct Breakers {
    threshold: u32,
    cooldown: Duration,
    states: Mutex<HashMap<String, BreakerState>>,
}

impl Breakers {
    /// Circuits that open after `threshold` consecutive failures (at least 1) for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            states: Mutex::new(HashMap::new()),
        }
    }

    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<String, BreakerState>> {
        // A panic while holding the lock leaves a valid map: every update is one assignment.
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ok to call; Err with how long until a call may go.
    pub fn admit(&self, key: &str, now: Instant) -> Result<(), Duration> {
        match self.states().get_mut(key) {
            None => Ok(()),
            Some(state) => state.admit(now, self.cooldown),
        }
    }

    /// Any answer below 500 closes the circuit.
    pub fn success(&self, key: &str) {
        self.states().remove(key);
    }

    pub fn failure(&self, key: &str, now: Instant) {
        let mut states = self.states();
        let state = states
            .entry(key.to_owned())
            .or_insert(BreakerState::Closed { failures: 0 });
        let was_open = matches!(state, BreakerState::Open { .. });
        state.failure(now, self.threshold, self.cooldown);
        if !was_open && matches!(state, BreakerState::Open { .. }) {
            tracing::warn!(circuit = key, "provider circuit opened");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_breaker_opens_after_the_threshold_of_consecutive_failures() {
        let t0 = Instant::now();
        let cool = Duration::from_secs(10);
        let mut b = BreakerState::Closed { failures: 0 };
        b.failure(t0, 3, cool);
        b.failure(t0, 3, cool);
        assert_eq!(b, BreakerState::Closed { failures: 2 });
        assert_eq!(b.admit(t0, cool), Ok(()));
        b.failure(t0, 3, cool);
        assert_eq!(b, BreakerState::Open { until: t0 + cool });
        assert_eq!(
            b.admit(t0 + Duration::from_secs(4), cool),
            Err(Duration::from_secs(6))
        );
    }

    #[test]
    fn an_open_breaker_lets_one_probe_through_after_the_cooldown() {
        let t0 = Instant::now();
        let cool = Duration::from_secs(10);
        let mut b = BreakerState::Open { until: t0 + cool };
        let later = t0 + cool;
        assert_eq!(b.admit(later, cool), Ok(()));
        assert_eq!(b, BreakerState::HalfOpen { since: later });
        assert_eq!(
            b.admit(later + Duration::from_secs(1), cool),
            Err(Duration::from_secs(9))
        );
    }

    #[test]
    fn a_failed_probe_reopens_the_breaker_for_another_cooldown() {
        let t0 = Instant::now();
        let cool = Duration::from_secs(10);
        let mut b = BreakerState::HalfOpen { since: t0 };
        b.failure(t0 + Duration::from_secs(1), 5, cool);
        assert_eq!(
            b,
            BreakerState::Open {
                until: t0 + Duration::from_secs(11)
            }
        );
    }

    #[test]
    fn a_probe_that_never_answered_is_replaced_after_a_cooldown() {
        let t0 = Instant::now();
        let cool = Duration::from_secs(10);
        let mut b = BreakerState::HalfOpen { since: t0 };
        assert_eq!(b.admit(t0 + cool, cool), Ok(()));
        assert_eq!(b, BreakerState::HalfOpen { since: t0 + cool });
    }

    #[test]
    fn the_core_forgets_a_circuit_on_success_so_it_closes() {
        let core = Breakers::new(1, Duration::from_secs(30));
        let t0 = Instant::now();
        core.failure("zerodb|http://a", t0);
        assert!(core.admit("zerodb|http://a", t0).is_err());
        assert!(core.admit("zerodb|http://b", t0).is_ok(), "per origin");
        core.success("zerodb|http://a");
        assert!(core.admit("zerodb|http://a", t0).is_ok());
    }
}
