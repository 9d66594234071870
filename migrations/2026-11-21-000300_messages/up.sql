-- Messages, their reactions, and each member's read and delivered markers.

CREATE TABLE messages (
    id            uuid        PRIMARY KEY,
    room_id       uuid        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    -- Per room: 1, 2, 3, ... gapless in commit order (see rooms.last_seq).
    seq           bigint      NOT NULL CHECK (seq >= 1),
    sender_id     uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    kind          text        NOT NULL
                              CHECK (kind IN ('text', 'image', 'video', 'audio', 'file', 'system')),
    content       text        NOT NULL,
    -- Deleting an attachment leaves the message without it.
    attachment_id uuid        REFERENCES attachments (id) ON DELETE SET NULL,
    -- A message of the same room (see messages_reply_to_fkey).
    reply_to_id   uuid,
    -- The sender's idempotency key, if the send had one.
    client_msg_id text,
    created_at    timestamptz NOT NULL,
    edited_at     timestamptz,
    -- Soft delete: a deleted message keeps its id and seq.
    deleted       boolean     NOT NULL DEFAULT false,
    -- The room version of this message's latest change (send, edit, delete, reaction).
    version       bigint      NOT NULL CHECK (version >= 1),
    -- Full-text search. The 'simple' configuration: plain words, no stemming
    -- and no stop words, whatever the language of the chat.
    search        tsvector    GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, content)) STORED,
    -- History by seq.
    CONSTRAINT messages_room_id_seq_key UNIQUE (room_id, seq),
    -- The target of messages_reply_to_fkey.
    CONSTRAINT messages_room_id_id_key UNIQUE (room_id, id),
    -- Idempotent sends; rows without a key (NULL) never collide.
    CONSTRAINT messages_client_msg_id_key UNIQUE (room_id, sender_id, client_msg_id),
    -- A reply names a message of its own room. Messages are only ever removed
    -- with their room; should one go alone, its replies stay and lose the link.
    CONSTRAINT messages_reply_to_fkey FOREIGN KEY (room_id, reply_to_id)
        REFERENCES messages (room_id, id) ON DELETE SET NULL (reply_to_id)
);
-- "Changes since version V".
CREATE INDEX messages_room_id_version_idx ON messages (room_id, version);
-- Search never shows a deleted message.
CREATE INDEX messages_search_idx ON messages USING gin (search) WHERE NOT deleted;
-- Which messages carry an attachment (who may read it; ON DELETE SET NULL).
CREATE INDEX messages_attachment_id_idx ON messages (attachment_id) WHERE attachment_id IS NOT NULL;

CREATE TABLE reactions (
    message_id uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    emoji      text        NOT NULL CHECK (octet_length(emoji) BETWEEN 1 AND 64),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);

-- Markers only move forward, and reading implies delivery.
CREATE TABLE read_markers (
    room_id            uuid   NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id            uuid   NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    last_read_seq      bigint NOT NULL DEFAULT 0 CHECK (last_read_seq >= 0),
    last_delivered_seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id),
    CONSTRAINT read_markers_delivered_check CHECK (last_delivered_seq >= last_read_seq)
);
