//! The Easemob access token: fetched with `clientId` and `secretId`, valid for two hours,
//! cached in kv and shared by every call of the tenant.
//!
//! Every call runs in a fresh instance, so calls that find no usable token race for a lease
//! (`kv::set_if_absent`): the one that wins fetches the token, stores it and drops the lease;
//! the others poll kv until the new token appears. A token that is still valid but within
//! `refresh_margin_ms` of its expiry is refreshed by the lease winner while the others keep
//! using it, so nobody waits for a refresh they do not need.

use std::time::Duration;

use switchboard_sdk::{Deserialize, Error, Serialize, config, kv, log};

use crate::client::{Client, now_ms};

/// How long a refresh may hold the lease before others may take over.
const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often a waiting call looks for the new token.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A token as cached in kv.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CachedToken {
    token: String,
    /// When Easemob stops accepting it, in ms since the Unix epoch.
    expires_at_ms: u64,
}

/// The `entity` of Easemob's token reply.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Issued {
    access_token: String,
    /// Lifetime in seconds (7200).
    expire_time: u64,
}

/// The token request body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenRequest<'a> {
    tenant_id: &'a str,
    client_id: &'a str,
    secret_id: &'a str,
}

impl CachedToken {
    fn remaining_ms(&self, now_ms: u64) -> u64 {
        self.expires_at_ms.saturating_sub(now_ms)
    }
}

impl Client {
    /// A token to call Easemob with: the cached one while more than `refresh_margin_ms` of
    /// it remains, else a fresh one (fetched by this call or, while another call fetches it,
    /// awaited until the call's deadline nears: then `token_refresh_pending`, retryable).
    pub(crate) fn token(&self) -> Result<String, Error> {
        self.token_other_than(None)
    }

    /// A token other than `rejected`, which Easemob just refused: the one another call
    /// already put in its place, or a new one. The refused token is removed from kv if kv
    /// still holds it.
    pub(crate) fn token_replacing(&self, rejected: &str) -> Result<String, Error> {
        self.token_other_than(Some(rejected))
    }

    fn token_other_than(&self, rejected: Option<&str>) -> Result<String, Error> {
        loop {
            let usable = self.usable_token(rejected)?;
            if let Some(token) = usable.as_ref().filter(|token| self.is_fresh(token)) {
                return Ok(token.token.clone());
            }
            if kv::set_if_absent(&self.lease_key(), b"refreshing", Some(LEASE_TTL))? {
                return self.refresh_holding_lease(rejected);
            }
            if let Some(token) = usable {
                return Ok(token.token);
            }
            if now_ms() >= self.wait_until_ms {
                return Err(Error::retryable(
                    "token_refresh_pending",
                    format!(
                        "another call is fetching the Easemob access token of tenant `{}` and \
                         it did not arrive before this call's deadline",
                        self.tenant_id
                    ),
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// The cached token, if one is stored, not yet expired and not `rejected`.
    fn usable_token(&self, rejected: Option<&str>) -> Result<Option<CachedToken>, Error> {
        let cached: Option<CachedToken> = kv::get_json(&self.token_key())?;
        Ok(cached.filter(|cached| {
            cached.remaining_ms(now_ms()) > 0 && Some(cached.token.as_str()) != rejected
        }))
    }

    /// Whether more than `refresh_margin_ms` of `token` remains.
    fn is_fresh(&self, token: &CachedToken) -> bool {
        token.remaining_ms(now_ms()) > self.refresh_margin_ms
    }

    /// Holding the lease, returns the token another call stored just before this one took
    /// the lease, or else drops `rejected` from kv and fetches a new token; then gives up the
    /// lease whatever happened. Only the lease holder writes the token, so this cannot
    /// remove a token another call just stored.
    fn refresh_holding_lease(&self, rejected: Option<&str>) -> Result<String, Error> {
        let token = self.usable_token(rejected).and_then(|usable| match usable {
            Some(token) if self.is_fresh(&token) => Ok(token.token),
            _ => {
                self.discard(rejected)?;
                self.fetch_and_cache()
            }
        });
        if let Err(error) = kv::delete(&self.lease_key()) {
            log::warn(format!(
                "could not release the token refresh lease, it expires by itself: {error}"
            ));
        }
        token
    }

    /// Removes `rejected` from kv if kv holds it.
    fn discard(&self, rejected: Option<&str>) -> Result<(), Error> {
        let Some(rejected) = rejected else {
            return Ok(());
        };
        let cached: Option<CachedToken> = kv::get_json(&self.token_key())?;
        if cached.is_some_and(|cached| cached.token == rejected) {
            kv::delete(&self.token_key())?;
        }
        Ok(())
    }

    fn fetch_and_cache(&self) -> Result<String, Error> {
        let asked_at_ms = now_ms();
        let issued: Issued = self.request_token()?;
        let lifetime = Duration::from_secs(issued.expire_time);
        let cached = CachedToken {
            token: issued.access_token,
            expires_at_ms: asked_at_ms
                .saturating_add(u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX)),
        };
        kv::set_json(&self.token_key(), &cached, Some(lifetime))?;
        log::info(format!(
            "fetched an Easemob access token for tenant {}, valid {} s",
            self.tenant_id, issued.expire_time
        ));
        Ok(cached.token)
    }

    fn request_token(&self) -> Result<Issued, Error> {
        let client_id = config::require_secret("client_id")?;
        let secret_id = config::require_secret("secret_id")?;
        let body = TokenRequest {
            tenant_id: &self.tenant_id,
            client_id: &client_id,
            secret_id: &secret_id,
        };
        self.post_unauthorized("accessToken", &body)
    }

    fn token_key(&self) -> String {
        format!("token:{}", self.tenant_id)
    }

    fn lease_key(&self) -> String {
        format!("token_refresh:{}", self.tenant_id)
    }
}
