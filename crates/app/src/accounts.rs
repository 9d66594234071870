//! Registering, logging in and out, refreshing, and checking access tokens.

use std::sync::{Arc, Mutex};

use chat_domain::{
    DisplayName, Email, GlobalRole, Login, Password, SessionId, User, UserId, Username,
};
use chat_ports::{
    AccessClaims, Conflict, Event, IssuedToken, NewUser, RefreshClaims, Rotation, Session,
    StoreError,
};

use crate::{AppError, Ctx, Taken};

/// A new account's details, already validated.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: Username,
    pub email: Email,
    pub password: Password,
    pub display_name: Option<DisplayName>,
}

/// A user as they see themself.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub user: User,
    pub role: GlobalRole,
}

/// What login and refresh hand out.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: IssuedToken,
    pub refresh: IssuedToken,
    pub session_id: SessionId,
    pub profile: Profile,
}

/// Who is calling, once their access token checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthContext {
    pub user_id: UserId,
    pub session_id: SessionId,
}

#[derive(Clone)]
pub struct Accounts {
    ctx: Arc<Ctx>,
    /// A hash of a random password, checked when a login names nobody, so an
    /// unknown name takes as long to refuse as a wrong password.
    decoy: Arc<Mutex<Option<String>>>,
}

impl Accounts {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            decoy: Arc::default(),
        }
    }

    /// Creates an account. Its display name defaults to its username.
    pub async fn register(&self, account: NewAccount) -> Result<Profile, AppError> {
        let c = &self.ctx;
        let password_hash = c.hasher.hash(&account.password).await?;
        let display_name = account
            .display_name
            .unwrap_or_else(|| DisplayName::from_username(&account.username));
        let new = NewUser {
            id: c.ids.new_id().into(),
            username: account.username,
            email: account.email,
            display_name,
            password_hash,
            created_at: c.clock.now(),
        };
        let user = c.stores.users.create(&new).await.map_err(|e| match e {
            StoreError::Conflict(Conflict::Username) => AppError::Taken(Taken::Username),
            StoreError::Conflict(Conflict::Email) => AppError::Taken(Taken::Email),
            other => other.into(),
        })?;
        tracing::info!(user_id = %user.id, "user registered");
        Ok(self.profile(user))
    }

    /// Checks the credentials and opens a session. Every kind of wrong answer
    /// is the same [`AppError::InvalidCredentials`].
    pub async fn login(&self, login: &Login, password: &Password) -> Result<Tokens, AppError> {
        let c = &self.ctx;
        let Some((user, hash)) = c.stores.users.find_credentials(login).await? else {
            let decoy = self.decoy_hash().await?;
            let _ = c.hasher.verify(password, &decoy).await?;
            return Err(AppError::InvalidCredentials);
        };
        if !c.hasher.verify(password, &hash).await? {
            return Err(AppError::InvalidCredentials);
        }
        let now = c.clock.now();
        let session = Session {
            id: c.ids.new_id().into(),
            user_id: user.id,
            generation: 0,
            created_at: now,
            expires_at: now + c.tokens.refresh_ttl(),
            revoked: false,
        };
        c.stores.sessions.create(&session).await?;
        tracing::info!(user_id = %user.id, session_id = %session.id, "logged in");
        self.tokens_for(user, &session)
    }

    /// Trades a refresh token for a new pair. Each refresh token is good
    /// once; presenting a used one revokes its whole session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, AppError> {
        let c = &self.ctx;
        let now = c.clock.now();
        let claims = c
            .tokens
            .verify_refresh(refresh_token, now)
            .map_err(|_| AppError::Unauthorized)?;
        let expires_at = now + c.tokens.refresh_ttl();
        match c
            .stores
            .sessions
            .rotate(claims.session_id, claims.generation, now, expires_at)
            .await?
        {
            Rotation::Rotated { session } => {
                let user = c
                    .stores
                    .users
                    .find(session.user_id)
                    .await?
                    .ok_or(AppError::Unauthorized)?;
                self.tokens_for(user, &session)
            }
            Rotation::Reused => {
                tracing::warn!(session_id = %claims.session_id, "refresh token reused: session revoked");
                if let Some(s) = c.stores.sessions.find(claims.session_id).await? {
                    c.events
                        .publish(Event::SessionEnded {
                            user_id: s.user_id,
                            session_id: s.id,
                        })
                        .await;
                }
                Err(AppError::Unauthorized)
            }
            Rotation::Inactive => Err(AppError::Unauthorized),
        }
    }

    /// Ends the caller's session: its access and refresh tokens stop working
    /// at once.
    pub async fn logout(&self, auth: AuthContext) -> Result<(), AppError> {
        let c = &self.ctx;
        if c.stores.sessions.revoke(auth.session_id).await? {
            tracing::info!(user_id = %auth.user_id, session_id = %auth.session_id, "logged out");
            c.events
                .publish(Event::SessionEnded {
                    user_id: auth.user_id,
                    session_id: auth.session_id,
                })
                .await;
        }
        Ok(())
    }

    /// Checks an access token: signature, expiry, and that its session is
    /// still open, so a logout takes effect at once.
    pub async fn authenticate(&self, access_token: &str) -> Result<AuthContext, AppError> {
        let c = &self.ctx;
        let now = c.clock.now();
        let claims = c
            .tokens
            .verify_access(access_token, now)
            .map_err(|_| AppError::Unauthorized)?;
        match c.stores.sessions.find(claims.session_id).await? {
            Some(s) if s.user_id == claims.user_id && s.is_active(now) => Ok(AuthContext {
                user_id: claims.user_id,
                session_id: claims.session_id,
            }),
            _ => Err(AppError::Unauthorized),
        }
    }

    fn profile(&self, user: User) -> Profile {
        Profile {
            role: self.ctx.role_of(&user),
            user,
        }
    }

    fn tokens_for(&self, user: User, session: &Session) -> Result<Tokens, AppError> {
        let c = &self.ctx;
        let now = c.clock.now();
        let access = c.tokens.issue_access(&AccessClaims {
            user_id: user.id,
            session_id: session.id,
            expires_at: now + c.tokens.access_ttl(),
        })?;
        let refresh = c.tokens.issue_refresh(&RefreshClaims {
            session_id: session.id,
            generation: session.generation,
            expires_at: session.expires_at,
        })?;
        Ok(Tokens {
            access,
            refresh,
            session_id: session.id,
            profile: self.profile(user),
        })
    }

    async fn decoy_hash(&self) -> Result<String, AppError> {
        if let Some(h) = self.decoy.lock().ok().and_then(|d| d.clone()) {
            return Ok(h);
        }
        let random = Password::presented(&self.ctx.ids.new_id().to_string());
        let hash = self.ctx.hasher.hash(&random).await?;
        if let Ok(mut d) = self.decoy.lock() {
            *d = Some(hash.clone());
        }
        Ok(hash)
    }
}
