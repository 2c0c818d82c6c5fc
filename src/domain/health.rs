//! The health state machine (pure: counters in, counters out) and the event it emits.

use super::{HealthState, IntegrationId, Platform, WorkspaceId};
use crate::error::Reason;
use chrono::{DateTime, Utc};

/// Event reasons of lifecycle changes; failures use their error reason.
pub const CONNECTED: &str = "CONNECTED";
pub const RECONNECTED: &str = "RECONNECTED";
pub const DISCONNECTED: &str = "DISCONNECTED";

/// What one probe, or one real call, said about an integration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    Success,
    /// The provider is struggling (timeouts, 5xx, 429, an open circuit): counts towards DEGRADED.
    Transient(Reason),
    /// The credentials are dead and a refresh could not fix them: NEEDS_REAUTH at once.
    Auth(Reason),
}

impl Evidence {
    /// How a failed probe counts: `None` when the failure is ours or the caller's, which says
    /// nothing about the integration. Exhaustive on purpose: a new reason must be classified.
    pub fn of_probe_failure(reason: Reason) -> Option<Self> {
        match reason {
            Reason::NeedsReauth
            | Reason::ScopeMissing
            | Reason::RefreshTokenRevoked
            | Reason::RefreshNotSupported => Some(Self::Auth(reason)),
            Reason::ProviderRateLimited
            | Reason::ProviderUnavailable
            | Reason::ProviderTimeout
            | Reason::CircuitOpen
            | Reason::ProviderRejected
            | Reason::ProviderBadResponse
            | Reason::ProviderResponseTooLarge => Some(Self::Transient(reason)),
            Reason::InvalidArgument
            | Reason::Unauthenticated
            | Reason::PermissionDenied
            | Reason::IntegrationNotFound
            | Reason::IntegrationAlreadyExists
            | Reason::IntegrationRevoked
            | Reason::OperationNotFound
            | Reason::RouteNotFound
            | Reason::NotImplemented
            | Reason::DatabaseUnavailable
            | Reason::JwksUnavailable
            | Reason::Internal
            | Reason::ProviderNotConfigured
            | Reason::RefreshInProgress
            | Reason::BaseUrlNotAllowed
            | Reason::TranscriptNotFound
            | Reason::ProviderHasNoRevocation
            | Reason::SharedBotToken
            | Reason::EventsExpired
            | Reason::AuthorizationStartedByAnotherUser
            | Reason::HandleNotFound
            | Reason::HandleExpired
            | Reason::HandleReused
            | Reason::RateLimited => None,
        }
    }

    /// How a failed real call counts. Unlike a probe (a fixed identity call), a provider's
    /// refusal of real traffic is usually about the caller's parameters (a 400, a missing
    /// channel), so only dead credentials and a struggling provider count.
    pub fn of_traffic_failure(reason: Reason) -> Option<Self> {
        match Self::of_probe_failure(reason)? {
            Self::Transient(Reason::ProviderRejected | Reason::ProviderBadResponse) => None,
            Self::Transient(Reason::ProviderResponseTooLarge) => None,
            e => Some(e),
        }
    }

    pub fn healthy(self) -> bool {
        self == Self::Success
    }

    pub fn reason(self) -> Option<Reason> {
        match self {
            Self::Success => None,
            Self::Transient(r) | Self::Auth(r) => Some(r),
        }
    }
}

/// How many results in a row move a state (`FH_HEALTH_DEGRADED_AFTER`, `FH_HEALTH_RECOVERED_AFTER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hysteresis {
    pub degraded_after: u32,
    pub recovered_after: u32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Self {
            degraded_after: 2,
            recovered_after: 2,
        }
    }
}

/// An integration's health: its state and the runs of results that lead out of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    pub state: HealthState,
    /// Consecutive transient failures.
    pub failures: u32,
    /// Consecutive successes.
    pub successes: u32,
}

impl Health {
    pub const UNKNOWN: Health = Health {
        state: HealthState::Unknown,
        failures: 0,
        successes: 0,
    };

    /// The health after one more piece of evidence.
    pub fn next(self, evidence: Evidence, h: Hysteresis) -> Health {
        use HealthState as S;
        let failures = match evidence {
            Evidence::Transient(_) => self.failures.saturating_add(1),
            _ => 0,
        };
        let successes = match evidence {
            Evidence::Success => self.successes.saturating_add(1),
            _ => 0,
        };
        let state = match (self.state, evidence) {
            // Disconnected: nothing a check says brings it back; reconnecting does.
            (S::Revoked, _) => S::Revoked,
            (_, Evidence::Auth(_)) => S::NeedsReauth,
            (S::Unknown | S::NeedsReauth | S::Healthy, Evidence::Success) => S::Healthy,
            (S::Degraded, Evidence::Success) if successes >= h.recovered_after.max(1) => S::Healthy,
            (S::Degraded, _) => S::Degraded,
            (S::Unknown, Evidence::Transient(_)) => S::Degraded,
            (S::Healthy, Evidence::Transient(_)) if failures >= h.degraded_after.max(1) => {
                S::Degraded
            }
            (S::Healthy, Evidence::Transient(_)) => S::Healthy,
            // Struggling providers say nothing about credentials a person must replace.
            (S::NeedsReauth, Evidence::Transient(_)) => S::NeedsReauth,
        };
        Health {
            state,
            failures,
            successes,
        }
    }
}

/// One committed change of an integration's health, as streams deliver it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthEvent {
    pub seq: i64,
    pub workspace_id: WorkspaceId,
    pub integration_id: IntegrationId,
    pub platform: Platform,
    pub previous_state: HealthState,
    pub state: HealthState,
    /// A failure's reason, or CONNECTED / RECONNECTED / DISCONNECTED; empty on recovery.
    pub reason: String,
    pub message: String,
    pub time: DateTime<Utc>,
    /// A snapshot of the current state, not a change.
    pub snapshot: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthState as S;

    const H: Hysteresis = Hysteresis {
        degraded_after: 2,
        recovered_after: 2,
    };
    const BLIP: Evidence = Evidence::Transient(Reason::ProviderTimeout);
    const DEAD: Evidence = Evidence::Auth(Reason::NeedsReauth);

    fn run(from: S, evidence: &[Evidence]) -> Vec<S> {
        let mut h = Health {
            state: from,
            ..Health::UNKNOWN
        };
        evidence
            .iter()
            .map(|e| {
                h = h.next(*e, H);
                h.state
            })
            .collect()
    }

    #[test]
    fn from_unknown_the_first_result_decides() {
        assert_eq!(run(S::Unknown, &[Evidence::Success]), [S::Healthy]);
        assert_eq!(run(S::Unknown, &[BLIP]), [S::Degraded]);
        assert_eq!(run(S::Unknown, &[DEAD]), [S::NeedsReauth]);
    }

    #[test]
    fn one_blip_never_flaps_either_way() {
        use Evidence::Success as OK;
        assert_eq!(
            run(S::Healthy, &[BLIP, OK, BLIP, OK]),
            [S::Healthy; 4],
            "a success between blips resets the run"
        );
        assert_eq!(run(S::Healthy, &[BLIP, BLIP]), [S::Healthy, S::Degraded]);
        assert_eq!(
            run(S::Degraded, &[OK, BLIP, OK, OK]),
            [S::Degraded, S::Degraded, S::Degraded, S::Healthy]
        );
    }

    #[test]
    fn auth_failures_need_a_person_at_once_and_leave_on_the_next_success() {
        assert_eq!(run(S::Healthy, &[DEAD]), [S::NeedsReauth]);
        assert_eq!(run(S::Degraded, &[DEAD]), [S::NeedsReauth]);
        assert_eq!(
            run(S::NeedsReauth, &[BLIP, DEAD, Evidence::Success]),
            [S::NeedsReauth, S::NeedsReauth, S::Healthy]
        );
    }

    #[test]
    fn revoked_is_left_only_by_reconnecting() {
        assert_eq!(
            run(S::Revoked, &[Evidence::Success, BLIP, DEAD]),
            [S::Revoked; 3]
        );
    }

    #[test]
    fn a_threshold_of_zero_means_one() {
        let h = Hysteresis {
            degraded_after: 0,
            recovered_after: 0,
        };
        let healthy = Health {
            state: S::Healthy,
            ..Health::UNKNOWN
        };
        assert_eq!(healthy.next(BLIP, h).state, S::Degraded);
    }

    #[test]
    fn traffic_refusals_about_parameters_are_not_signals() {
        assert_eq!(Evidence::of_traffic_failure(Reason::ProviderRejected), None);
        assert_eq!(
            Evidence::of_probe_failure(Reason::ProviderRejected),
            Some(Evidence::Transient(Reason::ProviderRejected))
        );
        assert_eq!(
            Evidence::of_traffic_failure(Reason::RefreshTokenRevoked),
            Some(Evidence::Auth(Reason::RefreshTokenRevoked))
        );
        assert_eq!(
            Evidence::of_traffic_failure(Reason::ProviderUnavailable),
            Some(Evidence::Transient(Reason::ProviderUnavailable))
        );
        assert_eq!(Evidence::of_traffic_failure(Reason::InvalidArgument), None);
    }
}
