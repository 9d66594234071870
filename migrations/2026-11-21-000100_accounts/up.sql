-- Accounts: users, their uploads, login sessions and blocks.
--
-- Users are never deleted: every foreign key to `users` is ON DELETE RESTRICT,
-- so an attempt fails loudly instead of silently taking history with it.

-- Case folding for everything compared "ignoring case" (usernames, emails,
-- display names, room names): Unicode full lower-casing by ICU's root locale,
-- as Rust's `str::to_lowercase` does, whatever locale the database was created
-- with. The result keeps the collation of the argument, so `casefold(username)`
-- sorts in byte order (`username` is COLLATE "C").
CREATE FUNCTION casefold(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT lower(t COLLATE "und-x-icu") $$;

CREATE TABLE users (
    id                   uuid        PRIMARY KEY,
    -- As typed. ASCII only, so byte order is its order and lower-casing it is
    -- ASCII lower-casing.
    username             text        COLLATE "C" NOT NULL
                                     CONSTRAINT users_username_format
                                     CHECK (username ~ '^[A-Za-z0-9_.-]{3,32}$'),
    email                text        NOT NULL,
    display_name         text        NOT NULL,
    -- The foreign key is added below, once `attachments` exists.
    avatar_attachment_id uuid,
    password_hash        text        NOT NULL,
    created_at           timestamptz NOT NULL,
    last_seen_at         timestamptz
);

-- Unique ignoring case. The username index (C collation) is also the order of
-- user search and serves its prefix match. It is created before the email
-- index, so when one new row breaks both rules, the username is reported.
CREATE UNIQUE INDEX users_username_key ON users (casefold(username));
CREATE UNIQUE INDEX users_email_key ON users (casefold(email));
-- User search also matches a prefix of the display name.
CREATE INDEX users_display_name_prefix_idx ON users (casefold(display_name) text_pattern_ops);

CREATE TABLE attachments (
    id           uuid        PRIMARY KEY,
    uploader_id  uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    filename     text        NOT NULL,
    content_type text        NOT NULL,
    size         bigint      NOT NULL CHECK (size >= 0),
    -- Where the bytes live in the attachment storage.
    storage_key  text        NOT NULL CONSTRAINT attachments_storage_key_key UNIQUE,
    created_at   timestamptz NOT NULL
);
CREATE INDEX attachments_uploader_id_idx ON attachments (uploader_id);

-- Deleting an attachment clears the avatars that show it.
ALTER TABLE users
    ADD CONSTRAINT users_avatar_attachment_id_fkey
    FOREIGN KEY (avatar_attachment_id) REFERENCES attachments (id) ON DELETE SET NULL;

-- One row per login. The refresh token of the current `generation` is the
-- only good one.
CREATE TABLE sessions (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    generation bigint      NOT NULL DEFAULT 0 CHECK (generation >= 0),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked    boolean     NOT NULL DEFAULT false
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TABLE blocks (
    blocker_id uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    blocked_id uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    blocked_at timestamptz NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
-- A blocker's list, most recently blocked first.
CREATE INDEX blocks_list_idx ON blocks (blocker_id, blocked_at DESC, blocked_id DESC);
