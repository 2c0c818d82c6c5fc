//! Circuit breakers per platform and provider origin: a pure state machine, and the map of the
//! origins that are failing, bounded in size and forgetting idle ones.

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

/// Circuits kept at most: origins are tenant-chosen (ZeroDB), so the map is bounded.
const MAX_CIRCUITS: usize = 10_000;
/// A circuit untouched this long (and at least two cool-downs) is forgotten.
const IDLE_AFTER: Duration = Duration::from_secs(600);

/// One failing circuit, and when a call last touched it.
#[derive(Clone, Copy, Debug)]
struct Circuit {
    state: BreakerState,
    touched: Instant,
}

#[derive(Default)]
struct Circuits {
    map: HashMap<String, Circuit>,
    /// When idle circuits were last swept out.
    swept: Option<Instant>,
}

/// The circuits of every platform and origin. Only failing ones are kept: closed with no
/// failures is the default, so forgetting a circuit closes it. Idle circuits are forgotten, and
/// past `cap` closed ones go before open ones, oldest first: a tenant inventing origins cannot
/// grow the map, nor push out another's open circuit while closed ones remain.
pub struct Breakers {
    threshold: u32,
    cooldown: Duration,
    cap: usize,
    idle: Duration,
    circuits: Mutex<Circuits>,
}

impl Breakers {
    /// Circuits that open after `threshold` consecutive failures (at least 1) for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self::with_limits(threshold, cooldown, MAX_CIRCUITS, IDLE_AFTER)
    }

    /// As `new`, keeping at most `cap` circuits (at least 1) and forgetting those idle for
    /// `idle` (at least two cool-downs, so an open circuit is not forgotten before its probe).
    fn with_limits(threshold: u32, cooldown: Duration, cap: usize, idle: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            cap: cap.max(1),
            idle: idle.max(cooldown.saturating_mul(2)),
            circuits: Mutex::new(Circuits::default()),
        }
    }

    fn circuits(&self) -> std::sync::MutexGuard<'_, Circuits> {
        // A panic while holding the lock leaves a valid map: every update is one assignment.
        self.circuits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ok to call; Err with how long until a call may go.
    pub fn admit(&self, key: &str, now: Instant) -> Result<(), Duration> {
        match self.circuits().map.get_mut(key) {
            None => Ok(()),
            Some(c) => {
                c.touched = now;
                c.state.admit(now, self.cooldown)
            }
        }
    }

    /// Any answer below 500 closes the circuit.
    pub fn success(&self, key: &str) {
        self.circuits().map.remove(key);
    }

    pub fn failure(&self, key: &str, now: Instant) {
        let mut circuits = self.circuits();
        if !circuits.map.contains_key(key) {
            self.make_room(&mut circuits, now);
        }
        let circuit = circuits.map.entry(key.to_owned()).or_insert(Circuit {
            state: BreakerState::Closed { failures: 0 },
            touched: now,
        });
        circuit.touched = now;
        let was_open = matches!(circuit.state, BreakerState::Open { .. });
        circuit.state.failure(now, self.threshold, self.cooldown);
        if !was_open && matches!(circuit.state, BreakerState::Open { .. }) {
            tracing::warn!(circuit = key, "provider circuit opened");
        }
    }

    /// Before a new circuit: forgets idle ones (at most once per `idle`, or when full), then,
    /// still full, a tenth of the map, closed before open and oldest first, so a flood of new
    /// origins costs a sort per `cap / 10` of them, not per failure.
    fn make_room(&self, circuits: &mut Circuits, now: Instant) {
        let full = circuits.map.len() >= self.cap;
        let sweep_due = circuits
            .swept
            .is_none_or(|at| now.saturating_duration_since(at) >= self.idle);
        if full || sweep_due {
            let idle = self.idle;
            circuits
                .map
                .retain(|_, c| now.saturating_duration_since(c.touched) < idle);
            circuits.swept = Some(now);
        }
        if circuits.map.len() < self.cap {
            return;
        }
        let mut order: Vec<(bool, Instant, String)> = circuits
            .map
            .iter()
            .map(|(k, c)| {
                let open = !matches!(c.state, BreakerState::Closed { .. });
                (open, c.touched, k.clone())
            })
            .collect();
        order.sort_unstable();
        let keep = self.cap - self.cap.div_ceil(10);
        let drop = circuits.map.len() - keep;
        for (_, _, key) in order.into_iter().take(drop) {
            circuits.map.remove(&key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.circuits().map.len()
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

    #[test]
    fn circuits_of_ever_new_origins_stay_bounded_and_open_ones_are_evicted_last() {
        let cool = Duration::from_secs(30);
        let core = Breakers::with_limits(2, cool, 100, Duration::from_secs(600));
        let t0 = Instant::now();
        core.failure("zerodb|http://hot", t0);
        core.failure("zerodb|http://hot", t0);
        assert!(core.admit("zerodb|http://hot", t0).is_err());

        for i in 0..10_000 {
            let at = t0 + Duration::from_millis(i);
            core.failure(&format!("zerodb|http://h{i}.example"), at);
            assert!(core.len() <= 100, "{} circuits", core.len());
        }

        let later = t0 + Duration::from_secs(10);
        assert!(
            core.admit("zerodb|http://hot", later).is_err(),
            "the open circuit outlived 10,000 closed ones"
        );
    }

    #[test]
    fn idle_circuits_are_forgotten() {
        let cool = Duration::from_secs(30);
        let core = Breakers::with_limits(5, cool, 100, Duration::from_secs(600));
        let t0 = Instant::now();
        for i in 0..50 {
            core.failure(&format!("zerodb|http://h{i}.example"), t0);
        }
        core.failure("zerodb|http://busy", t0 + Duration::from_secs(400));
        assert_eq!(core.len(), 51);

        core.failure("zerodb|http://new", t0 + Duration::from_secs(601));

        assert_eq!(
            core.len(),
            2,
            "only the circuits touched in the last 10 min"
        );
    }

    #[test]
    fn an_open_circuit_is_not_idle_before_two_cooldowns() {
        let cool = Duration::from_secs(3600);
        let core = Breakers::with_limits(1, cool, 100, Duration::from_secs(60));
        let t0 = Instant::now();
        core.failure("zerodb|http://a", t0);
        core.failure("zerodb|http://b", t0 + Duration::from_secs(120));
        assert!(
            core.admit("zerodb|http://a", t0 + Duration::from_secs(120))
                .is_err()
        );
    }
}
