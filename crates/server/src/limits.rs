//! Abuse limits: a token bucket per API token, and a cap on failed
//! authentications per client address. Both answer `429 Too Many Requests` with
//! `Retry-After` ([`crate::error::ApiError::RateLimited`]); [`crate::auth::authenticate`]
//! applies them, so every route that takes a token is covered and the OpenAPI
//! document lists 429 on each ([`crate::openapi`]).
//!
//! The limits are per process: behind several control-plane replicas a client may
//! get up to one bucket per replica.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use suanwang_store::Role;

/// Entries kept per table before the oldest half is dropped (a flood of distinct
/// tokens or addresses cannot grow memory without bound).
const MAX_ENTRIES: usize = 100_000;

/// A request rate: `rate` requests per second on average, bursts of `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second refilled.
    pub per_second: f64,
    /// Requests that may be made at once after a quiet spell.
    pub burst: f64,
}

impl Rate {
    /// Parses `RPS` or `RPS/BURST` (`100`, `100/200`, `0.5/5`); `off` is no limit
    /// (`None`). Without a burst, the burst is twice the rate (at least 1).
    pub fn parse(text: &str) -> Result<Option<Rate>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        let (rate, burst) = match text.split_once('/') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (text, None),
        };
        let number = |what: &str, s: &str| -> Result<f64, String> {
            match s.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
                _ => Err(format!(
                    "{what} {s:?} is not a positive number (write RPS or RPS/BURST, e.g. 100/200, or off)"
                )),
            }
        };
        let per_second = number("the rate", rate)?;
        let burst = match burst {
            Some(b) => number("the burst", b)?,
            None => (per_second * 2.0).max(1.0),
        };
        if burst < 1.0 {
            return Err(format!(
                "the burst {burst} is below 1: no request could ever pass"
            ));
        }
        Ok(Some(Rate { per_second, burst }))
    }
}

/// What the limits are. The default: tenants', providers' and agents' tokens
/// 100 requests/s with bursts of 200; operators' and admins' tokens unlimited
/// (the hub's own staff and tools, e.g. the load generator); 30 failed
/// authentications a minute per client address.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitPolicy {
    /// Per token of a tenant, provider or agent.
    pub parties: Option<Rate>,
    /// Per token of an operator or admin.
    pub staff: Option<Rate>,
    /// Failed authentications (no, a malformed or an unknown token) allowed per
    /// client address per minute; 0 is no limit.
    pub auth_failures_per_minute: u32,
}

impl Default for LimitPolicy {
    fn default() -> LimitPolicy {
        LimitPolicy {
            parties: Some(Rate {
                per_second: 100.0,
                burst: 200.0,
            }),
            staff: None,
            auth_failures_per_minute: 30,
        }
    }
}

impl LimitPolicy {
    /// No limits at all (benchmarks, tests of other things).
    pub fn off() -> LimitPolicy {
        LimitPolicy {
            parties: None,
            staff: None,
            auth_failures_per_minute: 0,
        }
    }

    fn rate(&self, role: Role) -> Option<Rate> {
        match role {
            Role::Admin | Role::Operator => self.staff,
            _ => self.parties,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

/// The limits' state: one bucket per token digest, one one-minute window per
/// client address.
#[derive(Debug, Default)]
pub struct Limiter {
    policy: LimitPolicy,
    buckets: Mutex<HashMap<String, Bucket>>,
    failures: Mutex<HashMap<IpAddr, Window>>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl Limiter {
    /// A limiter enforcing `policy`.
    pub fn new(policy: LimitPolicy) -> Limiter {
        Limiter {
            policy,
            ..Limiter::default()
        }
    }

    /// The policy enforced.
    pub fn policy(&self) -> LimitPolicy {
        self.policy
    }

    /// Takes one request from the bucket of the token with `digest` (of a
    /// `role`): `Err(wait)` if it is empty, `wait` being when one will be there.
    pub fn spend(&self, digest: &str, role: Role) -> Result<(), Duration> {
        let Some(rate) = self.policy.rate(role) else {
            return Ok(());
        };
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_ENTRIES && !buckets.contains_key(digest) {
            // Buckets idle long enough to be full again lose nothing by going.
            let full = Duration::from_secs_f64(rate.burst / rate.per_second);
            buckets.retain(|_, b| now.duration_since(b.at) < full);
            if buckets.len() >= MAX_ENTRIES {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(digest.to_string()).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * rate.per_second;
        bucket.tokens = (bucket.tokens + refill).min(rate.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / rate.per_second,
            ))
        }
    }

    /// How long `address` must wait because it failed to authenticate too often
    /// in the last minute, if it must.
    pub fn blocked(&self, address: IpAddr) -> Option<Duration> {
        let limit = self.policy.auth_failures_per_minute;
        if limit == 0 {
            return None;
        }
        let failures = self.failures.lock().ok()?;
        let window = failures.get(&address)?;
        let age = window.start.elapsed();
        (age < WINDOW && window.failures >= limit).then(|| WINDOW - age)
    }

    /// Counts a failed authentication from `address`.
    pub fn failed(&self, address: IpAddr) {
        if self.policy.auth_failures_per_minute == 0 {
            return;
        }
        let now = Instant::now();
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() >= MAX_ENTRIES && !failures.contains_key(&address) {
            failures.retain(|_, w| now.duration_since(w.start) < WINDOW);
            if failures.len() >= MAX_ENTRIES {
                failures.clear();
            }
        }
        let window = failures.entry(address).or_insert(Window {
            start: now,
            failures: 0,
        });
        if now.duration_since(window.start) >= WINDOW {
            *window = Window {
                start: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }
}

/// Whole seconds to announce in `Retry-After` for `wait` (rounded up, at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_and_without_a_burst_and_refuse_nonsense() {
        assert_eq!(
            Rate::parse("100/200").unwrap(),
            Some(Rate {
                per_second: 100.0,
                burst: 200.0
            })
        );
        assert_eq!(Rate::parse("5").unwrap().unwrap().burst, 10.0);
        assert_eq!(Rate::parse("0.2").unwrap().unwrap().burst, 1.0);
        assert_eq!(Rate::parse("off").unwrap(), None);
        for bad in ["0", "-1", "x", "10/0.5", "10/", "nan"] {
            let e = Rate::parse(bad).unwrap_err();
            assert!(e.contains("RPS") || e.contains("below 1"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_bucket_lets_its_burst_through_then_says_how_long_to_wait() {
        let limiter = Limiter::new(LimitPolicy {
            parties: Some(Rate {
                per_second: 2.0,
                burst: 3.0,
            }),
            ..LimitPolicy::default()
        });
        for _ in 0..3 {
            limiter.spend("a", Role::Tenant).unwrap();
        }
        let wait = limiter.spend("a", Role::Tenant).unwrap_err();
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        assert_eq!(retry_after_secs(wait), 1);
        // Another token has its own bucket; staff are not limited by default.
        limiter.spend("b", Role::Agent).unwrap();
        for _ in 0..100 {
            limiter.spend("c", Role::Admin).unwrap();
        }
    }

    #[test]
    fn an_address_failing_too_often_waits_out_the_minute() {
        let limiter = Limiter::new(LimitPolicy {
            auth_failures_per_minute: 3,
            ..LimitPolicy::default()
        });
        let here: IpAddr = "10.0.0.7".parse().unwrap();
        let there: IpAddr = "10.0.0.8".parse().unwrap();
        for _ in 0..2 {
            limiter.failed(here);
            assert_eq!(limiter.blocked(here), None);
        }
        limiter.failed(here);
        let wait = limiter.blocked(here).unwrap();
        assert!(wait > Duration::from_secs(58) && wait <= WINDOW, "{wait:?}");
        assert_eq!(limiter.blocked(there), None);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }
}
