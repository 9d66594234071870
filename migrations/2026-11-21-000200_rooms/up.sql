-- Rooms and who is in them.
--
-- Deleting a room takes everything in it along (memberships, departures,
-- bans here; messages, reactions and read markers in the next migration).

CREATE TABLE rooms (
    id               uuid        PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('public', 'private', 'direct')),
    name             text        NOT NULL,
    description      text        NOT NULL DEFAULT '',
    created_by       uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    created_at       timestamptz NOT NULL,
    -- Kept in step with `memberships` by every change (all of which lock this row).
    member_count     integer     NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    -- The seq of the newest message. A sender takes the next one with
    -- `UPDATE rooms SET last_seq = last_seq + 1 ... RETURNING last_seq` in the
    -- transaction that inserts the message: the row lock serialises senders,
    -- so seqs are gapless in commit order, and a rolled-back send burns none.
    last_seq         bigint      NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    -- Counts every change in the room; raised in the same way.
    version          bigint      NOT NULL DEFAULT 1 CHECK (version >= 1),
    -- The newest message's created_at, else created_at: the order of "my rooms".
    last_activity_at timestamptz NOT NULL,
    -- A direct room's two users, sorted (the same id twice for notes to self).
    direct_user_a    uuid        REFERENCES users (id) ON DELETE RESTRICT,
    direct_user_b    uuid        REFERENCES users (id) ON DELETE RESTRICT,
    CONSTRAINT rooms_direct_pair_check CHECK (
        CASE WHEN kind = 'direct'
            THEN direct_user_a IS NOT NULL AND direct_user_b IS NOT NULL
                 AND direct_user_a <= direct_user_b
            ELSE direct_user_a IS NULL AND direct_user_b IS NULL
        END
    )
);
-- One direct room per pair of users.
CREATE UNIQUE INDEX rooms_direct_pair_key ON rooms (direct_user_a, direct_user_b)
    WHERE direct_user_a IS NOT NULL;
-- The directory of public rooms, newest first.
CREATE INDEX rooms_public_idx ON rooms (created_at DESC, id DESC) WHERE kind = 'public';
-- "My rooms", newest activity first.
CREATE INDEX rooms_last_activity_idx ON rooms (last_activity_at DESC, id DESC);

CREATE TABLE memberships (
    room_id   uuid        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    role      text        NOT NULL CHECK (role IN ('member', 'admin', 'owner')),
    joined_at timestamptz NOT NULL,
    -- The room version of this membership's latest change (join or role).
    version   bigint      NOT NULL CHECK (version >= 1),
    PRIMARY KEY (room_id, user_id)
);
-- A user's rooms.
CREATE INDEX memberships_user_id_idx ON memberships (user_id, room_id);
-- The member list, in the order they joined.
CREATE INDEX memberships_join_order_idx ON memberships (room_id, joined_at, user_id);
-- "Changes since version V".
CREATE INDEX memberships_room_id_version_idx ON memberships (room_id, version);

-- The room version at which each user last left, for "changes since V".
CREATE TABLE room_departures (
    room_id uuid   NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id uuid   NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    version bigint NOT NULL CHECK (version >= 1),
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_departures_room_id_version_idx ON room_departures (room_id, version);

CREATE TABLE bans (
    room_id   uuid        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    banned_by uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    banned_at timestamptz NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
