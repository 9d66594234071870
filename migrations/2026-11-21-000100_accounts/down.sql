DROP TABLE blocks;
DROP TABLE sessions;
ALTER TABLE users DROP CONSTRAINT users_avatar_attachment_id_fkey;
DROP TABLE attachments;
DROP TABLE users;
DROP FUNCTION casefold(text);
