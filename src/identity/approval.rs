//! Dual control for a tenant's export and deletion (DESIGN §3): a request is carried out only
//! once distinct authenticated users of the tenant, other than the requester, with the required
//! roles have approved it. Approvals are recorded from the authenticated principal of the
//! approving request, never from claims in a body.
//!
//! Rules: an **export** needs two approvers, at least one a `compliance-officer`; a **deletion**
//! needs a `compliance-officer` and a `security-admin` (two different users: one user holding
//! both roles fills one place). An approver must be a user (a console session, not an API
//! token: tokens are not people), of the request's tenant, not its requester, not already an
//! approver, and must fill a place still open.

use serde::{Deserialize, Serialize};

use super::{Credential, Principal, Role};

/// What is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    /// An archive of the tenant's data.
    Export,
    /// A crypto-shred of the tenant's content.
    Deletion,
}

impl RequestKind {
    /// The rule in words (shown with every request and refusal).
    pub fn rule(self) -> &'static str {
        match self {
            Self::Export => {
                "two approvals from users of the tenant other than the requester, at least one a compliance-officer"
            }
            Self::Deletion => {
                "approvals from a compliance-officer and a security-admin of the tenant, two users other than the requester"
            }
        }
    }
}

/// One recorded approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The approving user (`usr_…`).
    pub user: String,
    /// The role whose place it fills (for a deletion, as assigned after the latest approval:
    /// a user holding both roles takes whichever place the others leave).
    pub role: Role,
    /// Unix seconds.
    pub at: i64,
    /// The places the approver could fill when approving (deletions; empty in records from
    /// before it was kept: then `role`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eligible: Vec<Role>,
}

/// The places a deletion needs, one user each.
const DELETION_PLACES: [Role; 2] = [Role::ComplianceOfficer, Role::SecurityAdmin];

/// A distinct place of `places` for every approver, each from its own set, if one exists
/// (backtracking over at most two places and a few approvers).
fn assign(sets: &[Vec<Role>], places: &[Role]) -> Option<Vec<Role>> {
    fn go(sets: &[Vec<Role>], used: &mut Vec<Role>, places: &[Role]) -> bool {
        let Some(set) = sets.get(used.len()) else {
            return true;
        };
        for place in places {
            if set.contains(place) && !used.contains(place) {
                used.push(*place);
                if go(sets, used, places) {
                    return true;
                }
                used.pop();
            }
        }
        false
    }
    let mut used = Vec::with_capacity(sets.len());
    go(sets, &mut used, places).then_some(used)
}

impl Approval {
    /// The places the approver could fill ([`Approval::eligible`], or `role` for records
    /// from before it was kept).
    fn eligible_roles(&self) -> Vec<Role> {
        if self.eligible.is_empty() {
            vec![self.role]
        } else {
            self.eligible.clone()
        }
    }
}

/// A dual-control request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DualControlRequest {
    /// `exp_…` or `del_…`.
    pub id: String,
    /// The tenant it concerns.
    pub tenant: String,
    /// Export or deletion.
    pub kind: RequestKind,
    /// The requester's principal id (`usr_…` or `tok_…`).
    pub requested_by: String,
    /// Unix seconds.
    pub requested_at: i64,
    /// Approvals so far, in order.
    pub approvals: Vec<Approval>,
}

/// Why an approval was refused (each a 403 naming the rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalRefusal {
    /// The request was made with an API token, not by a user.
    #[error("dual-control requests must come from a user's session, not an API token")]
    RequesterNotAUser,
    /// The approver authenticated with an API token, not as a user.
    #[error("approvals must come from a user's session, not an API token")]
    NotAUser,
    /// The approver is not a user of the request's tenant (appliance users included).
    #[error("approvals must come from users of the tenant the request concerns")]
    WrongTenant,
    /// The approver made the request.
    #[error("the requester cannot approve their own request")]
    SelfApproval,
    /// The approver already approved.
    #[error("each approver counts once: this user already approved")]
    Duplicate,
    /// The approver holds no role with a place still open.
    #[error("the approver holds no role this request still needs")]
    RoleNotNeeded,
    /// The request already has all its approvals.
    #[error("the request is already approved")]
    AlreadyApproved,
    /// The request is older than [`REQUEST_LIFETIME_SECS`]: approvals are no longer taken.
    #[error("the request expired (requests take approvals for 7 days); ask again")]
    Expired,
}

/// How long a dual-control request takes approvals after it was made, seconds (7 days): an
/// approval given weeks apart from the other is not a decision taken together.
pub const REQUEST_LIFETIME_SECS: i64 = 7 * 86_400;

impl DualControlRequest {
    /// A new request of `principal` at `now`.
    ///
    /// # Errors
    /// [`ApprovalRefusal::RequesterNotAUser`] when `principal` is an API token: a token is not
    /// traced to the person who made it, so that person could approve their own request.
    pub fn new(
        id: String,
        kind: RequestKind,
        tenant: &str,
        principal: &Principal,
        now: i64,
    ) -> Result<Self, ApprovalRefusal> {
        if !matches!(principal.credential, Credential::Session { .. }) {
            return Err(ApprovalRefusal::RequesterNotAUser);
        }
        Ok(Self {
            id,
            tenant: tenant.to_string(),
            kind,
            requested_by: principal.id.clone(),
            requested_at: now,
            approvals: Vec::new(),
        })
    }

    /// When the request stops taking approvals (unix seconds).
    pub fn expires_at(&self) -> i64 {
        self.requested_at.saturating_add(REQUEST_LIFETIME_SECS)
    }

    /// Whether every place is filled.
    pub fn approved(&self) -> bool {
        match self.kind {
            RequestKind::Export => {
                self.approvals.len() >= 2
                    && self
                        .approvals
                        .iter()
                        .any(|a| a.role == Role::ComplianceOfficer)
            }
            RequestKind::Deletion => DELETION_PLACES
                .iter()
                .all(|r| self.approvals.iter().any(|a| a.role == *r)),
        }
    }

    /// The place an export approval by a holder of `roles` would fill, if one is open for it
    /// (deletions assign places in [`approve`](Self::approve)).
    fn export_place_for(&self, roles: &[Role]) -> Option<Role> {
        let officer = roles.contains(&Role::ComplianceOfficer);
        if self.approvals.is_empty() {
            // The first place: any approver the policies admit; an officer fills the officer
            // place.
            return Some(if officer {
                Role::ComplianceOfficer
            } else {
                *roles.first()?
            });
        }
        if self
            .approvals
            .iter()
            .any(|a| a.role == Role::ComplianceOfficer)
        {
            roles
                .first()
                .copied()
                .map(|r| if officer { Role::ComplianceOfficer } else { r })
        } else if officer {
            Some(Role::ComplianceOfficer)
        } else {
            None
        }
    }

    /// Drops the approvals their users can no longer give: `current_roles` answers a user's
    /// roles now (`None` when the user is gone, disabled or moved out of the tenant); an
    /// approval stays only while its user still holds a role it could fill, and then with
    /// just those roles.
    pub fn drop_stale_approvals(
        &mut self,
        mut current_roles: impl FnMut(&str) -> Option<Vec<Role>>,
    ) {
        self.approvals.retain_mut(|a| {
            let Some(roles) = current_roles(&a.user) else {
                return false;
            };
            let still: Vec<Role> = a
                .eligible_roles()
                .into_iter()
                .filter(|r| roles.contains(r))
                .collect();
            if still.is_empty() {
                return false;
            }
            a.eligible = still;
            true
        });
    }

    /// Records `principal`'s approval at `now`; returns whether the request is now approved.
    ///
    /// # Errors
    /// The first [`ApprovalRefusal`] that applies, in the order of the variants.
    pub fn approve(&mut self, principal: &Principal, now: i64) -> Result<bool, ApprovalRefusal> {
        if !matches!(principal.credential, Credential::Session { .. }) {
            return Err(ApprovalRefusal::NotAUser);
        }
        if principal.tenant.as_deref() != Some(self.tenant.as_str()) {
            return Err(ApprovalRefusal::WrongTenant);
        }
        if principal.id == self.requested_by {
            return Err(ApprovalRefusal::SelfApproval);
        }
        if self.approvals.iter().any(|a| a.user == principal.id) {
            return Err(ApprovalRefusal::Duplicate);
        }
        if self.approved() {
            return Err(ApprovalRefusal::AlreadyApproved);
        }
        if now > self.expires_at() {
            return Err(ApprovalRefusal::Expired);
        }
        if self.kind == RequestKind::Deletion {
            // Accepted when every approver, this one included, can still hold a place of its
            // own; the places are then reassigned, so the order of approvals never matters.
            let eligible: Vec<Role> = DELETION_PLACES
                .into_iter()
                .filter(|r| principal.roles.contains(r))
                .collect();
            let mut sets: Vec<Vec<Role>> = self
                .approvals
                .iter()
                .map(Approval::eligible_roles)
                .collect();
            sets.push(eligible.clone());
            let places = assign(&sets, &DELETION_PLACES).ok_or(ApprovalRefusal::RoleNotNeeded)?;
            self.approvals.push(Approval {
                user: principal.id.clone(),
                role: Role::ComplianceOfficer,
                at: now,
                eligible,
            });
            for (a, place) in self.approvals.iter_mut().zip(places) {
                a.role = place;
            }
            return Ok(self.approved());
        }
        let role = self
            .export_place_for(&principal.roles)
            .ok_or(ApprovalRefusal::RoleNotNeeded)?;
        self.approvals.push(Approval {
            user: principal.id.clone(),
            role,
            at: now,
            eligible: Vec::new(),
        });
        Ok(self.approved())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, tenant: &str, roles: &[Role]) -> Principal {
        Principal {
            id: id.into(),
            credential: Credential::Session {
                id_sha256: "x".into(),
            },
            tenant: Some(tenant.into()),
            roles: roles.to_vec(),
        }
    }

    use Role::{ComplianceOfficer as Co, SecurityAdmin as Sa, TenantAdmin as Ta};

    #[test]
    fn export_needs_two_distinct_approvers_one_an_officer() {
        let requester = user("usr_req", "acme", &[Ta]);
        let mut r =
            DualControlRequest::new("exp_1".into(), RequestKind::Export, "acme", &requester, 0)
                .unwrap();
        // Self, token, other tenant, appliance user.
        assert_eq!(r.approve(&requester, 1), Err(ApprovalRefusal::SelfApproval));
        let mut token = user("tok_1", "acme", &[Co]);
        token.credential = Credential::Token;
        assert_eq!(
            DualControlRequest::new("exp_t".into(), RequestKind::Export, "acme", &token, 0),
            Err(ApprovalRefusal::RequesterNotAUser)
        );
        assert_eq!(r.approve(&token, 1), Err(ApprovalRefusal::NotAUser));
        assert_eq!(
            r.approve(&user("usr_x", "other", &[Co]), 1),
            Err(ApprovalRefusal::WrongTenant)
        );
        let mut root = user("usr_root", "acme", &[Role::ApplianceAdmin]);
        root.tenant = None;
        assert_eq!(r.approve(&root, 1), Err(ApprovalRefusal::WrongTenant));
        // A security-admin first, then a second non-officer is refused, an officer completes.
        assert_eq!(r.approve(&user("usr_sa", "acme", &[Sa]), 2), Ok(false));
        assert_eq!(
            r.approve(&user("usr_sa", "acme", &[Sa]), 3),
            Err(ApprovalRefusal::Duplicate)
        );
        assert_eq!(
            r.approve(&user("usr_ta", "acme", &[Ta]), 3),
            Err(ApprovalRefusal::RoleNotNeeded)
        );
        assert!(!r.approved());
        assert_eq!(r.approve(&user("usr_co", "acme", &[Co]), 4), Ok(true));
        assert!(r.approved());
        assert_eq!(
            r.approve(&user("usr_co2", "acme", &[Co]), 5),
            Err(ApprovalRefusal::AlreadyApproved)
        );
        // An officer first, anyone second.
        let mut r =
            DualControlRequest::new("exp_2".into(), RequestKind::Export, "acme", &requester, 0)
                .unwrap();
        assert_eq!(r.approve(&user("usr_co", "acme", &[Co]), 1), Ok(false));
        assert_eq!(r.approve(&user("usr_ta", "acme", &[Ta]), 2), Ok(true));
    }

    #[test]
    fn deletion_needs_an_officer_and_a_security_admin() {
        let requester = user("usr_req", "acme", &[Ta]);
        let mut r =
            DualControlRequest::new("del_1".into(), RequestKind::Deletion, "acme", &requester, 0)
                .unwrap();
        assert_eq!(
            r.approve(&user("usr_ta", "acme", &[Ta]), 1),
            Err(ApprovalRefusal::RoleNotNeeded)
        );
        // One user with both roles fills one place only, whichever the others leave: after
        // them an officer or a security-admin completes the rule, in either order.
        assert_eq!(
            r.approve(&user("usr_both", "acme", &[Co, Sa]), 1),
            Ok(false)
        );
        assert_eq!(
            r.approve(&user("usr_both", "acme", &[Co, Sa]), 2),
            Err(ApprovalRefusal::Duplicate)
        );
        let mut by_officer = r.clone();
        assert_eq!(
            by_officer.approve(&user("usr_co", "acme", &[Co]), 2),
            Ok(true)
        );
        assert_eq!(
            by_officer
                .approvals
                .iter()
                .map(|a| a.role)
                .collect::<Vec<_>>(),
            [Sa, Co]
        );
        assert_eq!(r.approve(&user("usr_sa", "acme", &[Sa]), 3), Ok(true));
        assert_eq!(
            r.approvals.iter().map(|a| a.role).collect::<Vec<_>>(),
            [Co, Sa]
        );
        // Approvals are taken for 7 days after the request.
        let mut late =
            DualControlRequest::new("del_3".into(), RequestKind::Deletion, "acme", &requester, 0)
                .unwrap();
        assert_eq!(
            late.approve(&user("usr_co", "acme", &[Co]), REQUEST_LIFETIME_SECS + 1),
            Err(ApprovalRefusal::Expired)
        );
        assert_eq!(
            late.approve(&user("usr_co", "acme", &[Co]), REQUEST_LIFETIME_SECS),
            Ok(false)
        );
        // Two officers cannot fill both places.
        let mut r =
            DualControlRequest::new("del_2".into(), RequestKind::Deletion, "acme", &requester, 0)
                .unwrap();
        assert_eq!(r.approve(&user("usr_co", "acme", &[Co]), 1), Ok(false));
        assert_eq!(
            r.approve(&user("usr_co2", "acme", &[Co]), 2),
            Err(ApprovalRefusal::RoleNotNeeded)
        );
        assert_eq!(r.approve(&user("usr_both", "acme", &[Co, Sa]), 3), Ok(true));
        assert_eq!(
            r.approvals.iter().map(|a| a.role).collect::<Vec<_>>(),
            [Co, Sa]
        );
    }
}
