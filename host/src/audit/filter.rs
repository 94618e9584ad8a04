//! Which audit records a query asks for.

use crate::store::AuditRecord;

/// Filters of `GET /v1/audit` and its export; every one given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Written at or after this time, in milliseconds since the Unix epoch.
    pub since_ms: Option<u64>,
    /// Written before this time, in milliseconds since the Unix epoch.
    pub until_ms: Option<u64>,
    /// `admin`, `call`, `webhook` or `delivery`.
    pub kind: Option<String>,
    /// This connector's.
    pub connector: Option<String>,
    /// This operation's (or hook's, or delivery target's).
    pub operation: Option<String>,
    /// `ok` or `error`.
    pub status: Option<String>,
    /// This error code.
    pub code: Option<String>,
    /// For this agent.
    pub agent: Option<String>,
    /// For this tenant.
    pub tenant: Option<String>,
    /// By this key id, or the host's own actor name.
    pub actor: Option<String>,
}

impl AuditFilter {
    /// Whether `record` matches every filter given.
    pub fn matches(&self, record: &AuditRecord) -> bool {
        fn same(wanted: &Option<String>, actual: Option<&str>) -> bool {
            wanted.as_deref().is_none_or(|w| Some(w) == actual)
        }
        self.since_ms.is_none_or(|t| record.time_ms >= t)
            && self.until_ms.is_none_or(|t| record.time_ms < t)
            && same(&self.kind, Some(record.kind.as_str()))
            && same(&self.connector, Some(&record.connector))
            && same(&self.operation, record.operation.as_deref())
            && same(&self.status, record.status.as_deref())
            && same(&self.code, record.code.as_deref())
            && same(&self.agent, record.agent.as_deref())
            && same(&self.tenant, record.tenant.as_deref())
            && same(&self.actor, Some(&record.actor))
    }

    /// Checks the values that have a fixed set of answers.
    pub fn check(&self) -> Result<(), String> {
        if let Some(kind) = &self.kind
            && !["admin", "call", "webhook", "delivery"].contains(&kind.as_str())
        {
            return Err(format!(
                "kind `{kind}` is not one of admin, call, webhook and delivery"
            ));
        }
        if let Some(status) = &self.status
            && !["ok", "error"].contains(&status.as_str())
        {
            return Err(format!("status `{status}` is not ok or error"));
        }
        if let (Some(since), Some(until)) = (self.since_ms, self.until_ms)
            && since > until
        {
            return Err(format!("since_ms {since} is after until_ms {until}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AuditKind;

    fn call() -> AuditRecord {
        AuditRecord {
            time_ms: 5_000,
            kind: AuditKind::Call,
            actor: "sbk_1".into(),
            action: "call".into(),
            connector: "crm".into(),
            tenant: Some("acme".into()),
            operation: Some("lookup".into()),
            agent: Some("a-7".into()),
            status: Some("error".into()),
            code: Some("upstream_unavailable".into()),
            ..AuditRecord::default()
        }
    }

    #[test]
    fn every_filter_given_must_match() {
        let record = call();
        assert!(AuditFilter::default().matches(&record));
        let filter = AuditFilter {
            since_ms: Some(5_000),
            until_ms: Some(5_001),
            kind: Some("call".into()),
            connector: Some("crm".into()),
            status: Some("error".into()),
            code: Some("upstream_unavailable".into()),
            agent: Some("a-7".into()),
            tenant: Some("acme".into()),
            ..AuditFilter::default()
        };
        assert!(filter.matches(&record));
        for miss in [
            AuditFilter {
                until_ms: Some(5_000),
                ..filter.clone()
            },
            AuditFilter {
                agent: Some("a-8".into()),
                ..filter.clone()
            },
            AuditFilter {
                status: Some("ok".into()),
                ..filter.clone()
            },
            AuditFilter {
                kind: Some("admin".into()),
                ..filter.clone()
            },
        ] {
            assert!(!miss.matches(&record), "{miss:?}");
        }
    }

    #[test]
    fn unknown_kinds_and_statuses_and_backwards_ranges_are_refused() {
        let kind = AuditFilter {
            kind: Some("calls".into()),
            ..AuditFilter::default()
        };
        assert!(kind.check().is_err());
        let status = AuditFilter {
            status: Some("failed".into()),
            ..AuditFilter::default()
        };
        assert!(status.check().is_err());
        let range = AuditFilter {
            since_ms: Some(2),
            until_ms: Some(1),
            ..AuditFilter::default()
        };
        assert!(range.check().is_err());
    }
}
