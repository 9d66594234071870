// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "tsvector", schema = "pg_catalog"))]
    pub struct Tsvector;
}

diesel::table! {
    attachments (id) {
        id -> Uuid,
        uploader_id -> Uuid,
        filename -> Text,
        content_type -> Text,
        size -> Int8,
        storage_key -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    bans (room_id, user_id) {
        room_id -> Uuid,
        user_id -> Uuid,
        banned_by -> Uuid,
        banned_at -> Timestamptz,
    }
}

diesel::table! {
    blocks (blocker_id, blocked_id) {
        blocker_id -> Uuid,
        blocked_id -> Uuid,
        blocked_at -> Timestamptz,
    }
}

diesel::table! {
    memberships (room_id, user_id) {
        room_id -> Uuid,
        user_id -> Uuid,
        role -> Text,
        joined_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Tsvector;

    messages (id) {
        id -> Uuid,
        room_id -> Uuid,
        seq -> Int8,
        sender_id -> Uuid,
        kind -> Text,
        content -> Text,
        attachment_id -> Nullable<Uuid>,
        reply_to_id -> Nullable<Uuid>,
        client_msg_id -> Nullable<Text>,
        created_at -> Timestamptz,
        edited_at -> Nullable<Timestamptz>,
        deleted -> Bool,
        version -> Int8,
        search -> Nullable<Tsvector>,
    }
}

diesel::table! {
    reactions (message_id, user_id, emoji) {
        message_id -> Uuid,
        user_id -> Uuid,
        emoji -> Text,
        created_at -> Timestamptz,
        emoji_since -> Timestamptz,
    }
}

diesel::table! {
    read_markers (room_id, user_id) {
        room_id -> Uuid,
        user_id -> Uuid,
        last_read_seq -> Int8,
        last_delivered_seq -> Int8,
    }
}

diesel::table! {
    room_departures (room_id, user_id) {
        room_id -> Uuid,
        user_id -> Uuid,
        version -> Int8,
    }
}

diesel::table! {
    rooms (id) {
        id -> Uuid,
        kind -> Text,
        name -> Text,
        description -> Text,
        created_by -> Uuid,
        created_at -> Timestamptz,
        member_count -> Int4,
        last_seq -> Int8,
        version -> Int8,
        last_activity_at -> Timestamptz,
        direct_user_a -> Nullable<Uuid>,
        direct_user_b -> Nullable<Uuid>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        generation -> Int8,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked -> Bool,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        username -> Text,
        email -> Text,
        display_name -> Text,
        avatar_attachment_id -> Nullable<Uuid>,
        password_hash -> Text,
        created_at -> Timestamptz,
        last_seen_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(bans -> rooms (room_id));
diesel::joinable!(memberships -> rooms (room_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(messages -> attachments (attachment_id));
diesel::joinable!(messages -> rooms (room_id));
diesel::joinable!(messages -> users (sender_id));
diesel::joinable!(reactions -> messages (message_id));
diesel::joinable!(reactions -> users (user_id));
diesel::joinable!(read_markers -> rooms (room_id));
diesel::joinable!(read_markers -> users (user_id));
diesel::joinable!(room_departures -> rooms (room_id));
diesel::joinable!(room_departures -> users (user_id));
diesel::joinable!(sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    attachments,
    bans,
    blocks,
    memberships,
    messages,
    reactions,
    read_markers,
    room_departures,
    rooms,
    sessions,
    users,
);
