DROP TABLE read_markers;
DROP TABLE reactions;
DROP TABLE messages;
