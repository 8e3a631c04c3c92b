//! API tokens (stored as SHA-256 only; see [`crate::identity`]).

use redb::ReadableTable;

use super::audit::put_audit;
use super::codec::{dec, enc};
use super::*;
use crate::audit::AuditRecord;
use crate::identity::{self, TokenRecord};

/// What [`Store::revoke_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// Revoked now, or already.
    Revoked,
    /// No such token in that scope (another tenant's answers the same).
    NotFound,
    /// Refused: it is the last working appliance-admin token.
    LastAdmin,
}

fn scoped(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    scope: Option<&str>,
) -> Result<Vec<TokenRecord>, StoreError> {
    let mut out = Vec::new();
    for item in t.iter()? {
        let (_, v) = item?;
        let rec: TokenRecord = dec("tokens", v.value())?;
        if rec.tenant.as_deref() == scope {
            out.push(rec);
        }
    }
    Ok(out)
}

impl Store {
    /// Stores a new token.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_token(
        &self,
        token: TokenRecord,
        mut audit: Vec<AuditRecord>,
    ) -> Result<(), StoreError> {
        self.write(WriteClass::Data(0), move |txn| {
            txn.open_table(TOKENS)?
                .insert(token.id.as_str(), enc(&token)?.as_slice())?;
            put_audit(txn, &mut audit)?;
            Ok(())
        })
        .await
    }

    /// One token by id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(TOKENS)?;
        t.get(id)?.map(|v| dec("tokens", v.value())).transpose()
    }

    /// Records token uses (`id`, Unix seconds) in one transaction: each record's `last_used_at`
    /// becomes the later of what it held and the use. Ids no longer stored are skipped.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn record_token_use(&self, uses: Vec<(String, i64)>) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        self.write(WriteClass::Data(0), move |txn| {
            let mut t = txn.open_table(TOKENS)?;
            for (id, at) in uses {
                let Some(mut rec) = t
                    .get(id.as_str())?
                    .map(|v| dec::<TokenRecord>("tokens", v.value()))
                    .transpose()?
                else {
                    continue;
                };
                if rec.last_used_at.is_none_or(|t| t < at) {
                    rec.last_used_at = Some(at);
                    t.insert(id.as_str(), enc(&rec)?.as_slice())?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Tokens of a tenant (`Some`) or of the appliance scope (`None`: appliance-admin tokens),
    /// by id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_tokens(&self, scope: Option<&str>) -> Result<Vec<TokenRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(TOKENS)?;
        scoped(&t, scope)
    }

    /// Revokes token `id` of `scope` (a tenant, or `None` for the appliance scope). An
    /// appliance-admin token is revoked only while another one still works
    /// ([`identity::revocation_keeps_an_admin`]), decided in the same transaction, unless
    /// `allow_last` (the host's break-glass command). Revoking a revoked token changes nothing
    /// and answers [`Revocation::Revoked`].
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn revoke_token(
        &self,
        scope: Option<String>,
        id: String,
        now: i64,
        allow_last: bool,
        mut audit: Vec<AuditRecord>,
    ) -> Result<Revocation, StoreError> {
        self.write(WriteClass::Data(0), move |txn| {
            let mut t = txn.open_table(TOKENS)?;
            let Some(mut rec) = t
                .get(id.as_str())?
                .map(|v| dec::<TokenRecord>("tokens", v.value()))
                .transpose()?
            else {
                return Ok(Revocation::NotFound);
            };
            if rec.tenant != scope {
                return Ok(Revocation::NotFound);
            }
            if scope.is_none()
                && !allow_last
                && !identity::revocation_keeps_an_admin(&rec, &scoped(&t, None)?, now)
            {
                return Ok(Revocation::LastAdmin);
            }
            if rec.revoked_at.is_none() {
                rec.revoked_at = Some(now);
            }
            t.insert(id.as_str(), enc(&rec)?.as_slice())?;
            drop(t);
            put_audit(txn, &mut audit)?;
            Ok(Revocation::Revoked)
        })
        .await
    }
}
