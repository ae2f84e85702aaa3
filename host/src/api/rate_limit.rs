//! Rate limits on the doors a guesser knocks at: password and SMS sign-in, sending SMS
//! codes, and the OpenID Connect token endpoint. Each call counts against the client's
//! address and against the account (phone number or OIDC client) it names; over either
//! limit it is answered 429 with `Retry-After`. The counting is `governor`'s GCRA: a burst
//! of the per-minute figure, refilled evenly.
use super::ApiError;
use crate::errors::Code;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sign-in attempts (password, SMS code, SMS sending, OIDC token) from one client
    /// address per minute, all of them together. Behind a reverse proxy every client has
    /// the proxy's address: raise it there.
    pub sign_in_per_address_per_minute: u32,
    /// The same, for one phone number or one OIDC client, from wherever.
    pub sign_in_per_account_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { sign_in_per_address_per_minute: 120, sign_in_per_account_per_minute: 20 }
    }
}

pub struct RateLimits {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_account: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl RateLimits {
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            by_address: RateLimiter::keyed(per_minute(config.sign_in_per_address_per_minute)),
            by_account: RateLimiter::keyed(per_minute(config.sign_in_per_account_per_minute)),
            clock: DefaultClock::default(),
        }
    }

    /// Count one attempt of `door` (`login`, `sms`, `oidc-token`) from `address` for
    /// `account`; refused when either is over its limit.
    pub fn check(&self, door: &str, address: &ClientAddress, account: &str) -> Result<(), ApiError> {
        let over = |wait: std::time::Duration, what: &str| {
            let seconds = wait.as_secs().max(1);
            let mut error =
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, Code::RateLimited, format!("too many sign-in attempts {what}; try again in {seconds} s"))
                    .with("seconds", seconds.to_string());
            error.retry_after = u32::try_from(seconds).ok();
            error
        };
        if let Some(ip) = address.0 {
            self.by_address.check_key(&ip).map_err(|n| over(n.wait_time_from(self.clock.now()), "from this address"))?;
        }
        self.by_account.check_key(&format!("{door}:{account}")).map_err(|n| over(n.wait_time_from(self.clock.now()), "for this account"))?;
        Ok(())
    }

    /// Drop the counters of keys that are back to full, so the maps do not grow without end.
    pub fn forget_idle(&self) {
        self.by_address.retain_recent();
        self.by_account.retain_recent();
    }
}

/// The address of the peer that sent the request, when the server records it.
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_or_an_account_over_its_limit_waits() {
        let limits = RateLimits::new(RateLimitConfig { sign_in_per_address_per_minute: 3, sign_in_per_account_per_minute: 2 });
        let here = ClientAddress(Some("10.0.0.1".parse().unwrap()));
        let there = ClientAddress(Some("10.0.0.2".parse().unwrap()));
        assert!(limits.check("login", &here, "13800000001").is_ok());
        assert!(limits.check("login", &there, "13800000001").is_ok());
        let refused = limits.check("login", &ClientAddress(None), "13800000001").unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.retry_after.is_some_and(|s| s >= 1));
        assert!(refused.message.contains("account"), "{}", refused.message);
        assert!(limits.check("sms", &here, "13800000001").is_ok(), "another door counts apart per account");
        assert!(limits.check("login", &here, "13800000002").is_ok());
        let refused = limits.check("login", &here, "13800000003").unwrap_err();
        assert!(refused.message.contains("address"), "{}", refused.message);
        assert!(limits.check("login", &there, "13800000003").is_ok(), "another address is not held back");
    }
}
