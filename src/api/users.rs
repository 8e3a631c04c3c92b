//! People over HTTP: user management (`/api/users`, `/api/tenants/{t}/users`) and console
//! sessions (`/api/auth/login`, `logout`, `me`, `password`). The decisions live in
//! [`crate::identity::login`], [`crate::identity::user`] and [`crate::identity::session`];
//! this module maps HTTP to them.

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::auth::ApiAuth;
use super::code::Code;
use super::dto::{RoleName, TenantRoleName, ts};
use super::json::StrictJson;
use super::problem::{ApiResult, Problem, status};
use super::{AppState, ReqCtx, ctx};
use crate::authz::{self, Action, Resource};
use crate::identity::login::{self, LoginContext, LoginRefusal};
use crate::identity::session::{self, COOKIE_NAME, COOKIE_NAME_TLS};
use crate::identity::user::{self, UserRecord};
use crate::identity::{Credential, Principal, Role};
use crate::store::UserCreation;

#[derive(Tags)]
enum ApiTags {
    /// People: users of a tenant or of the appliance.
    Users,
    /// Console sessions: login, logout, the caller, password change.
    Auth,
}

/// `POST /api/tenants/{tenant}/users` body.
#[derive(Object, serde::Deserialize)]
#[oai(example, deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Login name, unique across the appliance: 3–64 of `a-z 0-9 . _ - @`, starting with a
    /// letter or digit (upper case is accepted and folded to lower case).
    #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$"))]
    pub username: String,
    /// Initial password: 12 to 256 characters.
    #[oai(validator(min_length = 12, max_length = 256))]
    pub password: String,
    /// Tenant roles, 1–8. A principal grants only roles it may grant (a tenant-admin every
    /// tenant role).
    #[oai(validator(min_items = 1, max_items = 8))]
    pub roles: Vec<TenantRoleName>,
}

impl poem_openapi::types::Example for CreateUser {
    fn example() -> Self {
        Self {
            username: "carol@acme.example".into(),
            password: "correct horse battery staple".into(),
            roles: vec![TenantRoleName::ComplianceOfficer],
        }
    }
}

/// `POST /api/users` body: an appliance user (its only role is `appliance-admin`).
#[derive(Object, serde::Deserialize)]
#[oai(example, deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct CreateApplianceUser {
    /// Login name, unique across the appliance: 3–64 of `a-z 0-9 . _ - @`, starting with a
    /// letter or digit (upper case is accepted and folded to lower case).
    #[oai(validator(pattern = "^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$"))]
    pub username: String,
    /// Initial password: 12 to 256 characters.
    #[oai(validator(min_length = 12, max_length = 256))]
    pub password: String,
}

impl poem_openapi::types::Example for CreateApplianceUser {
    fn example() -> Self {
        Self {
            username: "root@evidentia.example".into(),
            password: "correct horse battery staple".into(),
        }
    }
}

/// A user as listed (the password hash is never shown).
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserDto {
    /// User id (`usr_` and 16 hex digits).
    pub id: String,
    /// Login name.
    pub username: String,
    /// Tenant; absent for appliance users.
    pub tenant: Option<String>,
    /// Roles granted.
    pub roles: Vec<RoleName>,
    /// When the user was created.
    pub created_at: time::OffsetDateTime,
    /// When the password was last set.
    pub password_changed_at: time::OffsetDateTime,
    /// Last successful login; absent if never.
    pub last_login_at: Option<time::OffsetDateTime>,
    /// When the user was disabled; absent while enabled.
    pub disabled_at: Option<time::OffsetDateTime>,
}

impl From<UserRecord> for UserDto {
    fn from(u: UserRecord) -> Self {
        Self {
            id: u.id,
            username: u.username,
            tenant: u.tenant,
            roles: u.roles.iter().map(|r| RoleName::from(*r)).collect(),
            created_at: ts(u.created_at),
            password_changed_at: ts(u.password_changed_at),
            last_login_at: u.last_login_at.map(ts),
            disabled_at: u.disabled_at.map(ts),
        }
    }
}

/// A list of users, by username.
#[derive(Object)]
pub struct UserList {
    /// Users.
    pub items: Vec<UserDto>,
}

/// `POST /api/auth/login` body.
#[derive(Object, serde::Deserialize)]
#[oai(example, deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login name (case-insensitive).
    #[oai(validator(max_length = 256))]
    pub username: String,
    /// Password.
    #[oai(validator(max_length = 1024))]
    pub password: String,
}

impl poem_openapi::types::Example for LoginRequest {
    fn example() -> Self {
        Self {
            username: "carol@acme.example".into(),
            password: "correct horse battery staple".into(),
        }
    }
}

/// A started session. The session id itself is only in the `HttpOnly` cookie.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LoginDto {
    /// The user.
    pub user: UserDto,
    /// Send it as `X-CSRF-Token` on every cookie-authenticated request that is not `GET`,
    /// `HEAD`, `OPTIONS` or `TRACE`.
    pub csrf_token: String,
    /// When the session ends at the latest (absolute lifetime, 12 hours); it ends earlier
    /// after 30 minutes unused.
    pub expires_at: time::OffsetDateTime,
}

/// `POST /api/auth/password` body.
#[derive(Object, serde::Deserialize)]
#[oai(example, deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The password now.
    #[oai(validator(max_length = 1024))]
    pub current_password: String,
    /// The new password: 12 to 256 characters.
    #[oai(validator(min_length = 12, max_length = 256))]
    pub new_password: String,
}

impl poem_openapi::types::Example for ChangePassword {
    fn example() -> Self {
        Self {
            current_password: "correct horse battery staple".into(),
            new_password: "a longer passphrase for 2027".into(),
        }
    }
}

/// Who is calling.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MeDto {
    /// `user` (a console session) or `token`.
    pub kind: String,
    /// `usr_…` or `tok_…`.
    pub id: String,
    /// The user's login name (sessions only).
    pub username: Option<String>,
    /// Tenant; absent for appliance principals.
    pub tenant: Option<String>,
    /// Roles held.
    pub roles: Vec<RoleName>,
    /// When the session ends at the latest (sessions only).
    pub session_expires_at: Option<time::OffsetDateTime>,
}

#[derive(ApiResponse)]
enum UserCreated {
    /// Created.
    #[oai(status = 201)]
    Created(Json<UserDto>),
}

#[derive(ApiResponse)]
enum LoginAnswer {
    /// Logged in: `Set-Cookie` installs the session (`HttpOnly; SameSite=Strict; Path=/`,
    /// `Secure` and the `__Host-` prefix under TLS).
    #[oai(status = 200)]
    Ok(
        Json<LoginDto>,
        #[oai(header = "Set-Cookie")] String,
        #[oai(header = "Cache-Control")] String,
    ),
}

#[derive(ApiResponse)]
enum SessionEnded {
    /// Done; `Set-Cookie` removes the session cookie.
    #[oai(status = 204)]
    NoContent(#[oai(header = "Set-Cookie")] String),
}

#[derive(ApiResponse)]
enum Disabled {
    /// Disabled; the user's sessions ended.
    #[oai(status = 204)]
    NoContent,
}

/// The session id the request's cookie carries, if any (a login replaces it).
fn presented_session(req: &Request) -> Option<String> {
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME || *name == COOKIE_NAME_TLS)
        .map(|(_, value)| value.to_string())
}

impl AppState {
    fn tls(&self) -> bool {
        self.config.tls.enabled
    }

    /// A user of `tenant` (404 for users of other tenants and unknown ids alike).
    fn user_in(&self, tenant: &str, id: &str) -> Result<UserRecord, Problem> {
        self.store
            .get_user(id)?
            .filter(|u| u.tenant.as_deref() == Some(tenant))
            .ok_or_else(|| Problem::not_found("user"))
    }
}

/// The principal's own resource (for `auth.*` actions).
fn myself(p: &Principal) -> Resource {
    authz::Principal::from(p).as_resource()
}

/// Records the locks a failed login started, one audit record each (the failures themselves
/// are the request's own record).
async fn audit_locks(state: &AppState, ctx: &ReqCtx, refusal: &LoginRefusal, now: i64) {
    let LoginRefusal::Failed { started } = refusal else {
        return;
    };
    let records: Vec<_> = started
        .iter()
        .map(|lock| {
            let mut r = ctx.record("/api/auth/login", 0, Some("LOGIN_LOCKED"), now);
            r.action = "auth.lockout".into();
            r.detail = Some(format!(
                "logins locked for {} until {}",
                match &lock.key {
                    crate::identity::lockout::LockKey::Username(u) => format!("username {u}"),
                    crate::identity::lockout::LockKey::Peer(ip) => format!("address {ip}"),
                },
                crate::clock::rfc3339(lock.until)
            ));
            r.bound()
        })
        .collect();
    if !records.is_empty()
        && let Err(e) = state.store.append_audit(records).await
    {
        tracing::error!(error = %e, "lockout audit write failed");
    }
}

/// Checks, hashes and stores a new user (201), with its audit record in the same commit.
async fn store_user(
    state: &AppState,
    ctx: &ReqCtx,
    tenant: Option<&str>,
    username: &str,
    password: &str,
    roles: &[Role],
    route: &str,
) -> Result<UserCreated, Problem> {
    let now = state.now();
    // Rules first, so a refused request costs no hash.
    let mut record = user::new_user(tenant, username, roles, String::new(), now)?;
    record.password_phc = state.hasher.hash(password).await?;
    ctx.set_resource(&record.id);
    ctx.set_detail(format!("username {}", record.username));
    let audit = vec![ctx.record(route, 201, None, now)];
    match state.store.create_user(record.clone(), audit).await? {
        UserCreation::Created => {
            ctx.mark_audited();
            Ok(UserCreated::Created(Json(record.into())))
        }
        UserCreation::UsernameTaken => Err(Problem::new(
            Code::UsernameTaken,
            "another user has this username",
        )),
    }
}

/// Users and sessions.
pub struct UsersApi;

#[OpenApi]
impl UsersApi {
    /// Create an appliance user
    ///
    /// Roles: appliance-admin only. A user of no tenant holding `appliance-admin`. The
    /// password is stored only as an argon2id hash (19 MiB, t = 2).
    #[oai(
        path = "/api/users",
        method = "post",
        tag = "ApiTags::Users",
        operation_id = "createApplianceUser"
    )]
    async fn create_appliance_user(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Username and password.
        body: StrictJson<CreateApplianceUser>,
    ) -> ApiResult<UserCreated, { status::AUTH | status::BODY | status::S409 }> {
        let ctx = ctx(req);
        ctx.set_action(Action::UserCreate.id());
        let p = state.authenticate(&auth, &ctx)?;
        let roles = [Role::ApplianceAdmin];
        state.authorize_grant(&p, Action::UserCreate, &Resource::appliance(), &roles, &ctx)?;
        let CreateApplianceUser { username, password } = body.0;
        Ok(store_user(
            &state,
            &ctx,
            None,
            &username,
            &password,
            &roles,
            "/api/users",
        )
        .await?)
    }

    /// Create a user of a tenant
    ///
    /// Roles (default policies): tenant-admin, which may grant every tenant role;
    /// appliance-admin in every tenant. The password is stored only as an argon2id hash
    /// (19 MiB, t = 2).
    #[oai(
        path = "/api/tenants/:tenant/users",
        method = "post",
        tag = "ApiTags::Users",
        operation_id = "createUser"
    )]
    async fn create_user(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// Username, password and roles.
        body: StrictJson<CreateUser>,
    ) -> ApiResult<UserCreated, { status::TENANT | status::BODY | status::S409 }> {
        let ctx = ctx(req);
        ctx.set_action(Action::UserCreate.id());
        let p = state.authenticate(&auth, &ctx)?;
        let CreateUser {
            username,
            password,
            roles,
        } = body.0;
        let roles: Vec<Role> = roles.into_iter().map(Role::from).collect();
        state.authorize_grant(
            &p,
            Action::UserCreate,
            &Resource::tenant(&tenant),
            &roles,
            &ctx,
        )?;
        Ok(store_user(
            &state,
            &ctx,
            Some(&tenant),
            &username,
            &password,
            &roles,
            "/api/tenants/{tenant}/users",
        )
        .await?)
    }

    /// List appliance users
    ///
    /// Roles: appliance-admin only. Users without a tenant, by username.
    #[oai(
        path = "/api/users",
        method = "get",
        tag = "ApiTags::Users",
        operation_id = "listApplianceUsers"
    )]
    async fn list_appliance_users(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
    ) -> ApiResult<Json<UserList>, { status::AUTH }> {
        let ctx = ctx(req);
        ctx.set_action(Action::UserList.id());
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::UserList, &Resource::appliance(), &ctx)?;
        let items = state
            .store
            .list_users(None)?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Json(UserList { items }))
    }

    /// List a tenant's users
    ///
    /// Roles (default policies): tenant-admin, compliance-officer, security-admin;
    /// appliance-admin in every tenant. By username.
    #[oai(
        path = "/api/tenants/:tenant/users",
        method = "get",
        tag = "ApiTags::Users",
        operation_id = "listUsers"
    )]
    async fn list_users(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
    ) -> ApiResult<Json<UserList>, { status::TENANT }> {
        let ctx = ctx(req);
        ctx.set_action(Action::UserList.id());
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::UserList, &Resource::tenant(&tenant), &ctx)?;
        let items = state
            .store
            .list_users(Some(&tenant))?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Json(UserList { items }))
    }

    /// Disable a user
    ///
    /// Roles (default policies): tenant-admin; appliance-admin in every tenant. The user can
    /// no longer log in and every session of theirs ends now; the record stays listed with
    /// `disabled_at` (and the username stays taken). Disabling a disabled user is a no-op.
    #[oai(
        path = "/api/tenants/:tenant/users/:id",
        method = "delete",
        tag = "ApiTags::Users",
        operation_id = "disableUser"
    )]
    async fn disable_user(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// Tenant id.
        #[oai(validator(pattern = "^[a-z0-9-]{2,63}$"))]
        tenant: Path<String>,
        /// User id (`usr_…`).
        #[oai(validator(pattern = "^usr_[0-9a-f]{16}$"))]
        id: Path<String>,
    ) -> ApiResult<Disabled, { status::TENANT | status::S507 }> {
        let ctx = ctx(req);
        ctx.set_action(Action::UserDelete.id());
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(
            &p,
            Action::UserDelete,
            &Resource::user(id.0.as_str(), Some(&tenant), Vec::new()),
            &ctx,
        )?;
        let mut user = state.user_in(&tenant, &id)?;
        ctx.set_resource(&user.id);
        let now = state.now();
        user.disabled_at.get_or_insert(now);
        let audit = vec![ctx.record("/api/tenants/{tenant}/users/{id}", 204, None, now)];
        let ended = state.store.update_user(user, true, now, audit).await?;
        tracing::info!(sessions = ended, "user disabled");
        ctx.mark_audited();
        Ok(Disabled::NoContent)
    }

    /// Log in
    ///
    /// Public. Checks the username and password (argon2id; an unknown user costs the same
    /// time) and starts a console session with a new id, ending the session the request
    /// carried, if any (no session fixation). 5 failures within 5 minutes for a username or
    /// from an address lock it for 15 minutes (429 `LOGIN_LOCKED`, audited). A user of a
    /// suspended tenant gets 403 `TENANT_SUSPENDED` once the password verified.
    #[oai(
        path = "/api/auth/login",
        method = "post",
        tag = "ApiTags::Auth",
        operation_id = "login"
    )]
    async fn login(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        /// Username and password.
        body: StrictJson<LoginRequest>,
    ) -> ApiResult<
        LoginAnswer,
        { status::BASE | status::S401 | status::S403 | status::BODY | status::S429 },
    > {
        let ctx = ctx(req);
        ctx.set_action("auth.login");
        state.limit(
            crate::ratelimit::ApiClass::Auth,
            state.default_quotas().auth,
            &format!("{}|auth.login", ctx.peer),
        )?;
        let LoginRequest { username, password } = body.0;
        ctx.set_detail(format!("username {}", user::canonical_username(&username)));
        let now = state.now();
        let cx = LoginContext {
            store: &state.store,
            hasher: &state.hasher,
            lockout: &state.lockout,
            sessions: &state.sessions,
        };
        let success = match login::login(cx, &username, &password, ctx.peer.parse().ok(), now).await
        {
            Ok(s) => s,
            Err(refusal) => {
                audit_locks(&state, &ctx, &refusal, now).await;
                return Err(Problem::from(refusal).into());
            }
        };
        let user = success.user;
        ctx.set_actor(user.actor());
        if let Some(t) = &user.tenant {
            ctx.set_tenant(t);
        }
        ctx.set_resource(&user.id);
        if success.rehashed {
            ctx.set_detail("password rehashed with the current parameters".into());
        }
        let replaced = presented_session(req).and_then(|s| session::lookup_key(&s));
        let record = success.session.record.clone();
        let audit = vec![ctx.record("/api/auth/login", 200, None, now)];
        state
            .store
            .start_session(record.clone(), replaced, user.clone(), now, audit)
            .await?;
        ctx.mark_audited();
        let cookie = session::set_cookie(
            &success.session.session_id,
            state.tls(),
            state.sessions.absolute_seconds,
        );
        Ok(LoginAnswer::Ok(
            Json(LoginDto {
                user: user.into(),
                csrf_token: success.session.csrf_token,
                expires_at: ts(record.expires_at),
            }),
            cookie,
            "no-store".into(),
        ))
    }

    /// Log out
    ///
    /// Sessions only, on themselves. Ends the session server-side (the cookie no longer
    /// works, wherever it was copied) and removes the cookie.
    #[oai(
        path = "/api/auth/logout",
        method = "post",
        tag = "ApiTags::Auth",
        operation_id = "logout"
    )]
    async fn logout(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
    ) -> ApiResult<SessionEnded, { status::AUTH }> {
        let ctx = ctx(req);
        ctx.set_action(Action::AuthLogout.id());
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::AuthLogout, &myself(&p), &ctx)?;
        let Credential::Session { id_sha256 } = &p.credential else {
            return Err(Problem::forbidden("only a console session can log out").into());
        };
        let now = state.now();
        if let Some(mut s) = state.store.get_session(id_sha256)? {
            s.revoke(now);
            let audit = vec![ctx.record("/api/auth/logout", 204, None, now)];
            state.store.put_session(s, audit).await?;
            ctx.mark_audited();
        }
        Ok(SessionEnded::NoContent(session::clear_cookie(state.tls())))
    }

    /// Who am I
    ///
    /// Any principal, on itself: the user (with the session's end) or the token.
    #[oai(
        path = "/api/auth/me",
        method = "get",
        tag = "ApiTags::Auth",
        operation_id = "getMe"
    )]
    async fn me(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
    ) -> ApiResult<Json<MeDto>, { status::AUTH }> {
        let ctx = ctx(req);
        ctx.set_action(Action::AuthMe.id());
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::AuthMe, &myself(&p), &ctx)?;
        let (kind, username, session_expires_at) = match &p.credential {
            Credential::Token => ("token", None, None),
            Credential::Session { id_sha256 } => (
                "user",
                state.store.get_user(&p.id)?.map(|u| u.username),
                state
                    .store
                    .get_session(id_sha256)?
                    .map(|s| ts(s.expires_at)),
            ),
        };
        Ok(Json(MeDto {
            kind: kind.into(),
            id: p.id.clone(),
            username,
            tenant: p.tenant.clone(),
            roles: p.roles.iter().map(|r| RoleName::from(*r)).collect(),
            session_expires_at,
        }))
    }

    /// Change my password
    ///
    /// Sessions only, on themselves, with the current password (wrong ones count towards
    /// the login lock). Every session of the user ends, this one included: log in again.
    #[oai(
        path = "/api/auth/password",
        method = "post",
        tag = "ApiTags::Auth",
        operation_id = "changePassword"
    )]
    async fn change_password(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: ApiAuth,
        /// The current and the new password.
        body: StrictJson<ChangePassword>,
    ) -> ApiResult<SessionEnded, { status::AUTH | status::BODY | status::S429 }> {
        let ctx = ctx(req);
        ctx.set_action(Action::AuthPasswordChange.id());
        let p = state.authenticate(&auth, &ctx)?;
        state.authorize(&p, Action::AuthPasswordChange, &myself(&p), &ctx)?;
        let mut user = state
            .store
            .get_user(&p.id)?
            .ok_or_else(Problem::unauthenticated)?;
        let now = state.now();
        let peer = ctx.peer.parse().ok();
        if let Some(lock) = state.lockout.check(&user.username, peer, now) {
            return Err(Problem::from(LoginRefusal::Locked {
                retry_after: (lock.until - now).max(1),
                lock,
            })
            .into());
        }
        let ChangePassword {
            current_password,
            new_password,
        } = body.0;
        let verified = state
            .hasher
            .verify(&current_password, Some(&user.password_phc))
            .await?;
        if !verified.ok {
            state.lockout.record_failure(&user.username, peer, now);
            return Err(Problem::new(
                Code::CurrentPasswordInvalid,
                "the current password is wrong",
            )
            .into());
        }
        user.password_phc = state.hasher.hash(&new_password).await?;
        user.password_changed_at = now;
        ctx.set_resource(&user.id);
        let audit = vec![ctx.record("/api/auth/password", 204, None, now)];
        state.store.update_user(user, true, now, audit).await?;
        ctx.mark_audited();
        Ok(SessionEnded::NoContent(session::clear_cookie(state.tls())))
    }
}
