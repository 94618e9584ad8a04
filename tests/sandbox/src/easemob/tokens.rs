//! Easemob access tokens: issued for the tenant's `clientId` and `secretId`, valid for two
//! hours, sent back in the `Kefu-Token` header. Issuing a new token leaves earlier ones valid
//! until they expire.
//!
//! This module owns issuing, checking, expiring and counting tokens; it takes the time as an
//! argument so expiry is testable without waiting.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;

use super::params::TokenRequest;
use super::reply::Fail;
use crate::{EASEMOB_CLIENT_ID, EASEMOB_SECRET_ID, EASEMOB_TENANT_ID};

/// How long a token lives, in seconds: the reply's `expireTime`.
pub(super) const TOKEN_LIFETIME_S: u64 = 7200;

/// The tokens issued and what happened to them, behind one lock.
#[derive(Debug, Default)]
pub(super) struct Tokens {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every live token and when it expires, in ms since the Unix epoch.
    expiry_by_token: HashMap<String, u64>,
    stats: TokenStats,
}

/// What `GET /__sandbox/easemob/stats` reports about tokens.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub(super) struct TokenStats {
    /// `accessToken` requests, whatever their outcome.
    pub(super) token_requests: u64,
    /// Tokens issued.
    pub(super) tokens_issued: u64,
    /// API calls refused with `API_002`.
    pub(super) token_rejections: u64,
}

/// Passes when `tenant` is the sandbox's tenant (`API_003` otherwise).
pub(super) fn check_tenant(tenant: &str) -> Result<(), Fail> {
    if tenant == EASEMOB_TENANT_ID {
        Ok(())
    } else {
        Err(Fail::UnknownTenant)
    }
}

impl Tokens {
    /// Issues a token for `request` sent to tenant `tenant`: `API_003` if either names
    /// another tenant, `API_004` for a wrong `clientId` or `secretId`. Counts the request
    /// whatever its outcome.
    pub(super) fn issue(
        &self,
        tenant: &str,
        request: Result<TokenRequest, Fail>,
        now_ms: u64,
    ) -> Result<String, Fail> {
        let mut inner = self.lock();
        inner.stats.token_requests += 1;
        check_tenant(tenant)?;
        let request = request?;
        if request.tenant_id.is_some_and(|id| id != tenant) {
            return Err(Fail::UnknownTenant);
        }
        if request.client_id != EASEMOB_CLIENT_ID || request.secret_id != EASEMOB_SECRET_ID {
            return Err(Fail::BadCredentials);
        }
        inner.expiry_by_token.retain(|_, expiry| *expiry > now_ms);
        let token = format!("{:032x}", rand::random::<u128>());
        let expiry = now_ms.saturating_add(TOKEN_LIFETIME_S * 1000);
        inner.expiry_by_token.insert(token.clone(), expiry);
        inner.stats.tokens_issued += 1;
        Ok(token)
    }

    /// Passes when `token` was issued and has not expired at `now_ms`; otherwise `API_002`,
    /// counted as a rejection.
    pub(super) fn check(&self, token: Option<&str>, now_ms: u64) -> Result<(), Fail> {
        let mut inner = self.lock();
        let live = token
            .and_then(|token| inner.expiry_by_token.get(token))
            .is_some_and(|expiry| *expiry > now_ms);
        if live {
            return Ok(());
        }
        inner.stats.token_rejections += 1;
        Err(Fail::InvalidToken)
    }

    /// Makes every issued token expire now; returns how many were live.
    pub(super) fn expire_all(&self, now_ms: u64) -> usize {
        let mut inner = self.lock();
        let live = inner
            .expiry_by_token
            .values()
            .filter(|expiry| **expiry > now_ms)
            .count();
        inner.expiry_by_token.clear();
        live
    }

    /// Counters so far, and how many tokens are live at `now_ms`.
    pub(super) fn stats(&self, now_ms: u64) -> (TokenStats, usize) {
        let inner = self.lock();
        let live = inner
            .expiry_by_token
            .values()
            .filter(|expiry| **expiry > now_ms)
            .count();
        (inner.stats, live)
    }

    /// Forgets every token and counter.
    pub(super) fn reset(&self) {
        *self.lock() = Inner::default();
    }

    /// A poisoned lock still holds a consistent map: every update is a single insert or clear.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tenant: Option<&str>, client: &str, secret: &str) -> Result<TokenRequest, Fail> {
        Ok(TokenRequest {
            tenant_id: tenant.map(str::to_owned),
            client_id: client.into(),
            secret_id: secret.into(),
        })
    }

    fn good() -> Result<TokenRequest, Fail> {
        request(None, EASEMOB_CLIENT_ID, EASEMOB_SECRET_ID)
    }

    #[test]
    fn a_token_is_32_hex_digits_and_lives_exactly_two_hours() -> anyhow::Result<()> {
        let tokens = Tokens::default();
        let token = tokens
            .issue(EASEMOB_TENANT_ID, good(), 1_000)
            .map_err(|f| anyhow::anyhow!("{f:?}"))?;
        assert_eq!(token.len(), 32);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let last_valid_ms = 1_000 + TOKEN_LIFETIME_S * 1000 - 1;
        assert_eq!(tokens.check(Some(&token), last_valid_ms), Ok(()));
        assert_eq!(
            tokens.check(Some(&token), last_valid_ms + 1),
            Err(Fail::InvalidToken)
        );
        Ok(())
    }

    #[test]
    fn another_tenant_is_api_003_and_wrong_credentials_are_api_004_and_all_are_counted() {
        let tokens = Tokens::default();
        let other = Some("1");
        assert_eq!(tokens.issue("1", good(), 0), Err(Fail::UnknownTenant));
        assert_eq!(
            tokens.issue(
                EASEMOB_TENANT_ID,
                request(other, EASEMOB_CLIENT_ID, EASEMOB_SECRET_ID),
                0
            ),
            Err(Fail::UnknownTenant)
        );
        assert_eq!(
            tokens.issue(
                EASEMOB_TENANT_ID,
                request(None, "nope", EASEMOB_SECRET_ID),
                0
            ),
            Err(Fail::BadCredentials)
        );
        assert_eq!(
            tokens.issue(
                EASEMOB_TENANT_ID,
                request(None, EASEMOB_CLIENT_ID, "nope"),
                0
            ),
            Err(Fail::BadCredentials)
        );
        assert_eq!(
            tokens.issue(EASEMOB_TENANT_ID, Err(Fail::InvalidParam), 0),
            Err(Fail::InvalidParam)
        );
        let (stats, live) = tokens.stats(0);
        assert_eq!((stats.token_requests, stats.tokens_issued, live), (5, 0, 0));
    }

    #[test]
    fn expiring_all_tokens_rejects_each_and_counts_the_rejections() -> anyhow::Result<()> {
        let tokens = Tokens::default();
        let first = tokens
            .issue(EASEMOB_TENANT_ID, good(), 0)
            .map_err(|f| anyhow::anyhow!("{f:?}"))?;
        let second = tokens
            .issue(EASEMOB_TENANT_ID, good(), 0)
            .map_err(|f| anyhow::anyhow!("{f:?}"))?;
        assert_ne!(first, second);
        assert_eq!(tokens.check(Some(&first), 5), Ok(()));
        assert_eq!(tokens.expire_all(5), 2);
        for token in [Some(first.as_str()), Some(second.as_str()), None] {
            assert_eq!(tokens.check(token, 5), Err(Fail::InvalidToken));
        }
        let (stats, live) = tokens.stats(5);
        assert_eq!(
            (stats.tokens_issued, stats.token_rejections, live),
            (2, 3, 0)
        );
        Ok(())
    }
}
