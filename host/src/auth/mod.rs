//! Who may call the API: API keys and the OAuth2 tokens issued for them,
//! each with scopes and, unless host-wide, one tenant.
//!
//! Scopes: `read` (every `GET`), `invoke` (calling operations), `admin`
//! (every change); `admin` includes the other two. A key bound to a tenant
//! calls, reads events and audit records, and manages keys only for that
//! tenant; routes about the whole host (connectors' settings and lifecycle,
//! rules, subscriptions, deliveries, metrics, alerts, the master key) need
//! a host-wide key.

mod keys;
mod token;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::TenantId;

pub use keys::{ApiKeys, CreatedKey, KeyError, KeyView, NewKey};
pub use token::{IssuedToken, TokenError, TokenIssuer};

tokio::task_local! {
    /// The key id of the API request being served.
    static REQUEST_CALLER: String;
}

/// Runs `work` as serving a request of the key `id`; records written on the
/// way (such as the registry's audit records) name it.
pub async fn serving<F: std::future::Future>(id: String, work: F) -> F::Output {
    REQUEST_CALLER.scope(id, work).await
}

/// The key id of the API request being served on this task, if any.
pub fn request_caller() -> Option<String> {
    REQUEST_CALLER.try_with(Clone::clone).ok()
}

/// What a credential allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read anything the tenant may see.
    Read,
    /// Call operations.
    Invoke,
    /// Change anything the tenant may change; includes `read` and `invoke`.
    Admin,
}

impl Scope {
    /// Every scope, weakest first.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Invoke, Scope::Admin];

    /// The scope called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Invoke => "invoke",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of scopes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    /// Whether these scopes allow `scope` (`admin` allows everything).
    pub fn allows(self, scope: Scope) -> bool {
        self.0 & (scope.bit() | Scope::Admin.bit()) != 0
    }

    /// Whether every scope of `other` is allowed by these.
    pub fn covers(self, other: Scopes) -> bool {
        other.iter().all(|scope| self.allows(scope))
    }

    /// The scopes in the set, weakest first.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |s| self.0 & s.bit() != 0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses space- or comma-separated scope names; an unknown one is an error.
    pub fn parse(text: &str) -> Result<Self, String> {
        text.split([' ', ','])
            .filter(|name| !name.is_empty())
            .map(|name| {
                Scope::parse(name).ok_or_else(|| {
                    format!("unknown scope `{name}`; the scopes are read, invoke and admin")
                })
            })
            .collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Self {
        Self(scopes.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vec::<Scope>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

/// Who is calling, as established from the request's credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key id (`sbk_…`), which is also the OAuth2 client id.
    pub id: String,
    /// The one tenant it acts for; `None` for a host-wide key.
    pub tenant: Option<TenantId>,
    /// What it may do.
    pub scopes: Scopes,
}

impl Caller {
    /// Whether it may act on `tenant`'s data.
    pub fn sees_tenant(&self, tenant: &str) -> bool {
        self.tenant
            .as_ref()
            .is_none_or(|own| own.as_str() == tenant)
    }

    /// Whether it may reach routes about the whole host.
    pub fn is_host_wide(&self) -> bool {
        self.tenant.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_allows_every_scope_and_the_others_only_themselves() {
        let admin: Scopes = [Scope::Admin].into_iter().collect();
        assert!(Scope::ALL.iter().all(|s| admin.allows(*s)));
        let read: Scopes = [Scope::Read].into_iter().collect();
        assert!(read.allows(Scope::Read));
        assert!(!read.allows(Scope::Invoke));
        assert!(!read.allows(Scope::Admin));
        assert!(admin.covers(Scopes::parse("read invoke").expect("parse")));
        assert!(!read.covers(admin));
    }

    #[test]
    fn scopes_parse_and_print_in_a_stable_order() {
        let scopes = Scopes::parse("admin,read").expect("parse");
        assert_eq!(scopes.to_string(), "read admin");
        assert_eq!(
            serde_json::to_string(&scopes).expect("json"),
            r#"["read","admin"]"#
        );
        let err = Scopes::parse("read write").expect_err("unknown");
        assert!(err.contains("`write`"), "{err}");
    }
}
