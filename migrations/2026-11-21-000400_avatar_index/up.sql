-- Who may download an attachment: anyone signed in when it is some user's
-- current avatar. This index answers "is it anyone's avatar?" without a scan
-- of `users`, and serves the ON DELETE SET NULL of the avatar's foreign key.
CREATE INDEX users_avatar_attachment_id_idx ON users (avatar_attachment_id)
    WHERE avatar_attachment_id IS NOT NULL;
