DROP TABLE bans;
DROP TABLE room_departures;
DROP TABLE memberships;
DROP TABLE rooms;
