//! API tokens (stored as SHA-256 only; see [`crate::identity`]).

use redb::ReadableTable;

use super::audit::put_audit;
use super::codec::{dec, enc};
use super::*;
use crate::audit::AuditRecord;
use crate::identity::TokenRecord;

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

    /// Tokens of a tenant.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn list_tokens(&self, tenant: &str) -> Result<Vec<TokenRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(TOKENS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (_, v) = item?;
            let rec: TokenRecord = dec("tokens", v.value())?;
            if rec.tenant.as_deref() == Some(tenant) {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Revokes a token of `tenant`; `false` when it does not exist there.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn revoke_token(
        &self,
        tenant: String,
        id: String,
        now: i64,
        mut audit: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        self.write(WriteClass::Data(0), move |txn| {
            let mut t = txn.open_table(TOKENS)?;
            let Some(mut rec) = t
                .get(id.as_str())?
                .map(|v| dec::<TokenRecord>("tokens", v.value()))
                .transpose()?
            else {
                return Ok(false);
            };
            if rec.tenant.as_deref() != Some(tenant.as_str()) {
                return Ok(false);
            }
            if rec.revoked_at.is_none() {
                rec.revoked_at = Some(now);
            }
            t.insert(id.as_str(), enc(&rec)?.as_slice())?;
            drop(t);
            put_audit(txn, &mut audit)?;
            Ok(true)
        })
        .await
    }
}
