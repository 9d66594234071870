-- The order of a message's reactions: each emoji in the order it was first
-- used, kept while anyone still reacts so. Every reaction carries its
-- emoji's first use: the `emoji_since` of the emoji's reactions already on
-- the message (all of them share it), else its own `created_at`. When the
-- emoji's last reaction goes, nothing remembers it, so used again it comes
-- last.
ALTER TABLE reactions ADD COLUMN emoji_since timestamptz;

-- Reactions from before: the earliest still standing is the best we know.
UPDATE reactions r
   SET emoji_since = f.first_used
  FROM (SELECT message_id, emoji, min(created_at) AS first_used
          FROM reactions
         GROUP BY message_id, emoji) f
 WHERE r.message_id = f.message_id
   AND r.emoji = f.emoji;

ALTER TABLE reactions ALTER COLUMN emoji_since SET NOT NULL;
