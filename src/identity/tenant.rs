//! Tenant settings and status (DESIGN §3 `/api/tenants/*`).
//!
//! Settings override appliance defaults for one tenant: how long raw event bodies are kept,
//! how old a signed pipeline receipt may be when it is submitted, and the per-minute API quotas
//! of the tenant's principals per rate class ([`crate::ratelimit::ApiClass`]). An unset setting
//! follows the appliance configuration, so a changed default reaches every tenant that did not
//! choose its own. A suspended tenant's ingestion and API answer 403 `TENANT_SUSPENDED`;
//! appliance-admins keep reading it and can reactivate it.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::ratelimit::{ApiClass, ApiQuotas};

/// Longest raw-body retention a tenant may choose, days (10 years).
pub const MAX_BODY_RETENTION_DAYS: i64 = 3650;
/// Largest receipt freshness window a tenant may choose, seconds (7 days).
pub const MAX_RECEIPT_FRESHNESS_SECS: i64 = 7 * 86_400;
/// Largest per-minute API quota a tenant may choose for one class.
pub const MAX_API_QUOTA_PER_MINUTE: u32 = 100_000;
/// Longest suspension reason, characters.
pub const MAX_STATUS_REASON_CHARS: usize = 500;

/// A tenant's own choices; `None` follows the appliance configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TenantSettings {
    /// Days raw event bodies are kept before they are purged (metadata and digests stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_retention_days: Option<i64>,
    /// Oldest a signed pipeline receipt's `createdAt` may be when submitted, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_freshness_secs: Option<i64>,
    /// Per-minute API quotas of the tenant's principals, per class.
    #[serde(default, skip_serializing_if = "RateOverrides::is_empty")]
    pub rate_limits: RateOverrides,
}

/// Per-class quota overrides, requests per minute per principal and operation.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RateOverrides {
    /// Logins and password changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<u32>,
    /// Exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<u32>,
    /// Reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<u32>,
    /// Everything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<u32>,
}

impl RateOverrides {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn get(&self, class: ApiClass) -> Option<u32> {
        match class {
            ApiClass::Auth => self.auth,
            ApiClass::Export => self.export,
            ApiClass::Query => self.query,
            ApiClass::Default => self.default,
        }
    }
}

/// The settings in force for a tenant: its own where set, the appliance's otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveSettings {
    /// Raw-body retention, days.
    pub body_retention_days: i64,
    /// Receipt freshness window, seconds.
    pub receipt_freshness_secs: i64,
    /// API quotas per class, per minute.
    pub rate_limits: ApiQuotas,
}

/// A setting outside its bounds; the message names the field and the bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// `body_retention_days` outside 1 to [`MAX_BODY_RETENTION_DAYS`].
    #[error("body_retention_days must be 1 to {MAX_BODY_RETENTION_DAYS}")]
    Retention,
    /// `receipt_freshness_secs` outside 1 to [`MAX_RECEIPT_FRESHNESS_SECS`].
    #[error("receipt_freshness_secs must be 1 to {MAX_RECEIPT_FRESHNESS_SECS}")]
    Freshness,
    /// A quota outside 1 to [`MAX_API_QUOTA_PER_MINUTE`].
    #[error("rate_limits.{0} must be 1 to {MAX_API_QUOTA_PER_MINUTE} requests per minute")]
    Quota(&'static str),
}

impl TenantSettings {
    /// Checks every bound.
    ///
    /// # Errors
    /// The first [`SettingsError`] found.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if let Some(d) = self.body_retention_days
            && !(1..=MAX_BODY_RETENTION_DAYS).contains(&d)
        {
            return Err(SettingsError::Retention);
        }
        if let Some(s) = self.receipt_freshness_secs
            && !(1..=MAX_RECEIPT_FRESHNESS_SECS).contains(&s)
        {
            return Err(SettingsError::Freshness);
        }
        for class in ApiClass::ALL {
            if let Some(q) = self.rate_limits.get(class)
                && !(1..=MAX_API_QUOTA_PER_MINUTE).contains(&q)
            {
                return Err(SettingsError::Quota(class.name()));
            }
        }
        Ok(())
    }

    /// Whether a principal may replace `current` with these settings: the rate quotas
    /// protect the appliance as a whole, so only an appliance-admin changes them.
    pub fn change_permitted(&self, current: &TenantSettings, appliance_admin: bool) -> bool {
        appliance_admin || self.rate_limits == current.rate_limits
    }

    /// The settings in force under `config`.
    pub fn effective(&self, config: &Config) -> EffectiveSettings {
        let r = &config.ratelimit;
        let o = &self.rate_limits;
        EffectiveSettings {
            body_retention_days: self
                .body_retention_days
                .unwrap_or(config.ingest.body_retention_days),
            receipt_freshness_secs: self
                .receipt_freshness_secs
                .unwrap_or(config.evidence.receipt_freshness_secs),
            rate_limits: ApiQuotas {
                auth: o.auth.unwrap_or(r.api_auth_per_minute),
                export: o.export.unwrap_or(r.api_export_per_minute),
                query: o.query.unwrap_or(r.api_query_per_minute),
                default: o.default.unwrap_or(r.api_default_per_minute),
            },
        }
    }
}

/// Whether a tenant is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// Ingestion and API work.
    #[default]
    Active,
    /// Ingestion and the API answer 403 `TENANT_SUSPENDED`; appliance-admins still read.
    Suspended,
    /// Deleted under dual control: its content crypto-shredded, its logs and audit trail
    /// kept. The API answers 403 `TENANT_DELETED` but to appliance-admins' reads; final.
    Deleted,
}

impl TenantStatus {
    /// The wire name (`active`, `suspended`, `deleted`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }

    /// Whether a suspended tenant still admits this request: appliance-admins' reads (`read`:
    /// a GET or HEAD) and the status change itself (`status_change`), so a suspension can be
    /// lifted; and anyone ending their own session (`logout`). A deleted tenant admits
    /// appliance-admins' reads (its logs stay verifiable) and logouts, nothing else.
    pub fn admits(
        self,
        appliance_admin: bool,
        read: bool,
        status_change: bool,
        logout: bool,
    ) -> bool {
        match self {
            Self::Active => true,
            Self::Suspended => logout || appliance_admin && (read || status_change),
            Self::Deleted => logout || appliance_admin && read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_inheritance() {
        let config = Config::default();
        let s = TenantSettings::default();
        let e = s.effective(&config);
        assert_eq!(e.body_retention_days, config.ingest.body_retention_days);
        assert_eq!(e.rate_limits.query, config.ratelimit.api_query_per_minute);
        let s = TenantSettings {
            body_retention_days: Some(7),
            receipt_freshness_secs: None,
            rate_limits: RateOverrides {
                export: Some(2),
                ..RateOverrides::default()
            },
        };
        assert_eq!(s.validate(), Ok(()));
        let e = s.effective(&config);
        assert_eq!((e.body_retention_days, e.rate_limits.export), (7, 2));
        assert_eq!(e.rate_limits.auth, config.ratelimit.api_auth_per_minute);
        for bad in [0, MAX_BODY_RETENTION_DAYS + 1] {
            let s = TenantSettings {
                body_retention_days: Some(bad),
                ..TenantSettings::default()
            };
            assert_eq!(s.validate(), Err(SettingsError::Retention));
        }
        let s = TenantSettings {
            rate_limits: RateOverrides {
                query: Some(0),
                ..RateOverrides::default()
            },
            ..TenantSettings::default()
        };
        assert_eq!(s.validate(), Err(SettingsError::Quota("query")));
        let raised = TenantSettings {
            rate_limits: RateOverrides {
                query: Some(5000),
                ..RateOverrides::default()
            },
            ..TenantSettings::default()
        };
        let current = TenantSettings::default();
        assert!(!raised.change_permitted(&current, false));
        assert!(raised.change_permitted(&current, true));
        assert!(raised.change_permitted(&raised.clone(), false));
    }

    #[test]
    fn suspension_admits_only_admin_reads_and_reactivation() {
        let s = TenantStatus::Suspended;
        assert!(s.admits(true, true, false, false));
        assert!(s.admits(true, false, true, false));
        assert!(!s.admits(true, false, false, false));
        assert!(!s.admits(false, true, false, false));
        assert!(!s.admits(false, false, true, false));
        assert!(s.admits(false, false, false, true));
        assert!(TenantStatus::Active.admits(false, false, false, false));
        let d = TenantStatus::Deleted;
        assert!(d.admits(true, true, false, false));
        assert!(!d.admits(true, false, true, false));
        assert!(!d.admits(false, true, false, false));
        assert!(d.admits(false, false, false, true));
    }
}
