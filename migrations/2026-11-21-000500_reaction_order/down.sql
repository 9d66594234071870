ALTER TABLE reactions DROP COLUMN emoji_since;
