//! `UserRepo`.

use async_trait::async_trait;
use chat_domain::{Login, Timestamp, User, UserId};
use chat_ports::{
    Conflict, Cursor, NewUser, Page, PageRequest, ProfilePatch, StoreError, UserRepo,
};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::PgStore;
use crate::markers::Mark;
use crate::page::overfetch;
use crate::rows::{NewUserRow, UserRow};
use crate::schema::users;
use crate::sql::{casefold, like_prefix};

#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct ProfileChanges<'a> {
    display_name: Option<&'a str>,
    avatar_attachment_id: Option<Option<Uuid>>,
}

#[async_trait]
impl UserRepo for PgStore {
    async fn create(&self, new: &NewUser) -> Result<User, StoreError> {
        let new = new.clone();
        self.write(move |c| {
            Box::pin(async move {
                // The username is checked before the email, as the port asks.
                // When two registrations race, the unique indexes decide, in
                // the same order (the username's index is older).
                let (name, email) = (new.username.as_str(), new.email.as_str());
                let clashes: Vec<(bool, bool)> = users::table
                    .filter(
                        casefold(users::username)
                            .eq(casefold(name))
                            .or(casefold(users::email).eq(casefold(email))),
                    )
                    .select((
                        casefold(users::username).eq(casefold(name)),
                        casefold(users::email).eq(casefold(email)),
                    ))
                    .load(c)
                    .await?;
                if clashes.iter().any(|(name, _)| *name) {
                    return Err(StoreError::Conflict(Conflict::Username).into());
                }
                if clashes.iter().any(|(_, email)| *email) {
                    return Err(StoreError::Conflict(Conflict::Email).into());
                }
                let row = diesel::insert_into(users::table)
                    .values(NewUserRow {
                        id: new.id.0,
                        username: name,
                        email,
                        display_name: new.display_name.as_str(),
                        password_hash: &new.password_hash,
                        created_at: new.created_at,
                    })
                    .returning(UserRow::as_returning())
                    .get_result(c)
                    .await?;
                Ok(User::try_from(row)?)
            })
        })
        .await
    }

    async fn find(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                let row = users::table
                    .find(id.0)
                    .select(UserRow::as_select())
                    .first(c)
                    .await
                    .optional()?;
                Ok(row.map(User::try_from).transpose()?)
            })
        })
        .await
    }

    async fn find_credentials(&self, login: &Login) -> Result<Option<(User, String)>, StoreError> {
        // PostgreSQL text cannot hold NUL, and no stored name or email has one.
        if matches!(login, Login::Username(s) | Login::Email(s) if s.contains('\0')) {
            return Ok(None);
        }
        let login = login.clone();
        self.query(move |c| {
            Box::pin(async move {
                let query = users::table
                    .select((UserRow::as_select(), users::password_hash))
                    .into_boxed();
                let query = match &login {
                    // Usernames are ASCII: ASCII lower case is their key.
                    Login::Username(name) => {
                        query.filter(casefold(users::username).eq(name.to_ascii_lowercase()))
                    }
                    Login::Email(email) => {
                        query.filter(casefold(users::email).eq(casefold(email.trim().to_owned())))
                    }
                };
                let row: Option<(UserRow, String)> = query.first(c).await.optional()?;
                Ok(row
                    .map(|(user, hash)| User::try_from(user).map(|u| (u, hash)))
                    .transpose()?)
            })
        })
        .await
    }

    async fn search(&self, prefix: &str, page: &PageRequest) -> Result<Page<User>, StoreError> {
        // PostgreSQL text cannot hold NUL, and no username or display name
        // has one: such a prefix matches nobody.
        if prefix.contains('\0') {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let pattern = like_prefix(&prefix.to_lowercase());
        // Nor can a cursor key hold NUL. Cut there: no username has a NUL,
        // so "after `abc\0…`" and "after `abc`" are the same place.
        let after = page
            .after
            .as_ref()
            .map(|c| c.key.split('\0').next().unwrap_or_default().to_owned());
        let limit = page.limit();
        let fetch = overfetch(page);
        self.query(move |c| {
            Box::pin(async move {
                // Usernames are unique ignoring case, so the folded username
                // alone orders the list (in byte order: the column is
                // COLLATE "C"); the id only completes the cursor.
                let mut query = users::table
                    .filter(
                        casefold(users::username)
                            .like(pattern.clone())
                            .or(casefold(users::display_name).like(pattern)),
                    )
                    .select(UserRow::as_select())
                    .order(casefold(users::username).asc())
                    .limit(fetch)
                    .into_boxed();
                if let Some(after) = after {
                    query = query.filter(casefold(users::username).gt(after));
                }
                let rows = query.load(c).await?;
                let users = rows
                    .into_iter()
                    .map(User::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Page::from_overfetch(users, limit, |u| {
                    Cursor::new(u.username.key(), u.id.0)
                }))
            })
        })
        .await
    }

    async fn update_profile(&self, id: UserId, patch: &ProfilePatch) -> Result<User, StoreError> {
        let patch = patch.clone();
        self.query(move |c| {
            Box::pin(async move {
                let row = if patch.display_name.is_none() && patch.avatar.is_none() {
                    users::table
                        .find(id.0)
                        .select(UserRow::as_select())
                        .first(c)
                        .await
                        .optional()?
                } else {
                    diesel::update(users::table.find(id.0))
                        .set(ProfileChanges {
                            display_name: patch.display_name.as_ref().map(|n| n.as_str()),
                            avatar_attachment_id: patch.avatar.map(|a| a.map(|a| a.0)),
                        })
                        .returning(UserRow::as_returning())
                        .get_result(c)
                        .await
                        .optional()?
                };
                let row = row.ok_or(StoreError::NotFound)?;
                Ok(User::try_from(row)?)
            })
        })
        .await
    }

    async fn set_last_seen(&self, user: UserId, at: Timestamp) -> Result<(), StoreError> {
        // Batched with the marker writes: see the `markers` module.
        self.marks
            .mark(Mark::Seen { user: user.0, at })
            .await
            .map(|_| ())
    }
}
