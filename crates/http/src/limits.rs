//! Rate limits: 429 `rate_limited` with `Retry-After` (REST) or an `error`
//! frame with `retry_after` (WebSocket), before anything is changed.
//!
//! Three buckets, each a GCRA limiter keyed separately: sign-up, login and
//! refresh per client address; message sends (REST and WebSocket alike) per
//! user; uploads per user. A rate of 0 turns a bucket off.
//!
//! With several nodes the limits are the deployment's
//! ([`chat_ports::SharedLimits`], on Redis), so N nodes do not multiply
//! anyone's allowance; while the shared store cannot answer, each node
//! falls back to its own limiter (`governor`). Keys that have refilled are
//! forgotten now and then, so an address seen once costs nothing for long.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use actix_web::HttpRequest;
use chat_domain::UserId;
use chat_ports::SharedLimits;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::ApiError;

/// How many requests each bucket allows: a sustained rate per minute and a
/// burst. A rate of 0 turns the bucket off.
#[derive(Debug, Clone, Default)]
pub struct LimitSettings {
    /// Register, login and refresh, per client address.
    pub auth_per_minute: u32,
    pub auth_burst: u32,
    /// Message sends, per user (REST and WebSocket together).
    pub messages_per_minute: u32,
    pub messages_burst: u32,
    /// Uploads, per user.
    pub uploads_per_minute: u32,
    pub uploads_burst: u32,
    /// Take the client address from `Forwarded` / `X-Forwarded-For` (only
    /// behind a proxy that sets them); otherwise the peer's address.
    pub trust_forwarded_for: bool,
}

/// Forget refilled keys every this many checks.
const PRUNE_EVERY: u64 = 4096;

struct Bucket<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    checks: AtomicU64,
    /// The bucket's name in the shared store's keys.
    name: &'static str,
    per_minute: u32,
    burst: u32,
}

impl<K: std::hash::Hash + Eq + Clone> Bucket<K> {
    fn new(name: &'static str, per_minute: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_minute)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        Some(Self {
            limiter: RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)),
            checks: AtomicU64::new(0),
            name,
            per_minute: rate.get(),
            burst: burst.get(),
        })
    }

    /// The deployment's limit when there is a shared store that answers,
    /// else this node's.
    async fn take(&self, shared: Option<&dyn SharedLimits>, key: &K) -> Result<(), ApiError>
    where
        K: std::fmt::Display,
    {
        if let Some(shared) = shared {
            let id = format!("{}:{key}", self.name);
            match shared.take(&id, self.per_minute, self.burst).await {
                Some(Ok(())) => return Ok(()),
                Some(Err(wait)) => {
                    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                    return Err(ApiError::rate_limited(secs));
                }
                None => {}
            }
        }
        self.check(key).map_err(ApiError::rate_limited)
    }

    /// `Ok` to go ahead, else how many whole seconds to wait.
    fn check(&self, key: &K) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// The server's rate limiters.
pub struct RateLimits {
    auth: Option<Bucket<IpAddr>>,
    messages: Option<Bucket<UserId>>,
    uploads: Option<Bucket<UserId>>,
    trust_forwarded_for: bool,
    shared: Option<Arc<dyn SharedLimits>>,
}

impl Default for RateLimits {
    /// No limits (tests and embedding); the server configures real ones.
    fn default() -> Self {
        Self::new(&LimitSettings::default())
    }
}

impl RateLimits {
    pub fn new(s: &LimitSettings) -> Self {
        Self {
            auth: Bucket::new("auth", s.auth_per_minute, s.auth_burst),
            messages: Bucket::new("messages", s.messages_per_minute, s.messages_burst),
            uploads: Bucket::new("uploads", s.uploads_per_minute, s.uploads_burst),
            trust_forwarded_for: s.trust_forwarded_for,
            shared: None,
        }
    }

    /// The same limits, shared by every node through `shared`.
    pub fn shared(mut self, shared: Arc<dyn SharedLimits>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// A sign-up, login or refresh from this request's client.
    pub(crate) async fn auth(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let Some(bucket) = &self.auth else {
            return Ok(());
        };
        let Some(ip) = self.client_ip(req) else {
            return Ok(());
        };
        bucket.take(self.shared.as_deref(), &ip).await
    }

    /// A message send by `user`.
    pub(crate) async fn message(&self, user: UserId) -> Result<(), ApiError> {
        match &self.messages {
            Some(b) => b.take(self.shared.as_deref(), &user).await,
            None => Ok(()),
        }
    }

    /// An upload by `user`.
    pub(crate) async fn upload(&self, user: UserId) -> Result<(), ApiError> {
        match &self.uploads {
            Some(b) => b.take(self.shared.as_deref(), &user).await,
            None => Ok(()),
        }
    }

    /// The client's address: the peer's, or with `trust_forwarded_for` the
    /// one the proxy says it forwarded for.
    pub(crate) fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        if self.trust_forwarded_for {
            let info = req.connection_info();
            if let Some(ip) = info.realip_remote_addr().and_then(|a| {
                a.parse::<IpAddr>()
                    .ok()
                    .or_else(|| a.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
            }) {
                return Some(ip);
            }
        }
        req.peer_addr().map(|a| a.ip())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_says_how_long_to_wait() {
        let b: Bucket<u32> = Bucket::new("test", 60, 3).unwrap();
        for _ in 0..3 {
            assert_eq!(b.check(&1), Ok(()));
        }
        let wait = b.check(&1).unwrap_err();
        assert!((1..=2).contains(&wait), "one a second refills: {wait}");
        // Another key has its own allowance.
        assert_eq!(b.check(&2), Ok(()));
    }

    #[actix_rt::test]
    async fn a_rate_of_zero_is_no_limit() {
        assert!(Bucket::<u32>::new("test", 0, 5).is_none());
        let limits = RateLimits::default();
        for _ in 0..1000 {
            assert!(limits.message(UserId(uuid::Uuid::nil())).await.is_ok());
        }
    }

    /// A shared store that answers the way it is told to.
    struct Shared(Option<Result<(), std::time::Duration>>);

    #[async_trait::async_trait]
    impl SharedLimits for Shared {
        async fn take(&self, _: &str, _: u32, _: u32) -> Option<Result<(), std::time::Duration>> {
            self.0
        }
    }

    #[actix_rt::test]
    async fn the_shared_limit_decides_and_the_local_one_stands_in() {
        let settings = LimitSettings {
            messages_per_minute: 60,
            messages_burst: 1,
            ..LimitSettings::default()
        };
        let me = UserId(uuid::Uuid::nil());
        // The shared store says go: the local allowance of one is not used.
        let go = RateLimits::new(&settings).shared(Arc::new(Shared(Some(Ok(())))));
        for _ in 0..5 {
            assert!(go.message(me).await.is_ok());
        }
        // It says wait 1.5 s: 429, retry after 2 s.
        let wait = RateLimits::new(&settings).shared(Arc::new(Shared(Some(Err(
            std::time::Duration::from_millis(1500),
        )))));
        let e = wait.message(me).await.unwrap_err();
        assert_eq!(
            actix_web::ResponseError::status_code(&e),
            actix_web::http::StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(e.body().retry_after, Some(2));
        // It cannot answer: this node's own limit (a burst of one) applies.
        let down = RateLimits::new(&settings).shared(Arc::new(Shared(None)));
        assert!(down.message(me).await.is_ok());
        assert!(down.message(me).await.is_err());
    }
}
