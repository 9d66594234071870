//! The gateway's wire format: `{"type", "payload", "ref"?}` JSON text frames.

use bytestring::ByteString;
use chat_domain::{Role, Timestamp};
use chat_ports::Event;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ApiError;
use crate::dto::{MessageDto, PublicUserDto, RoleDto, RoomDto, SendMessageRequest, SenderDto};
use crate::extract::from_value;
use chat_app::SendMessage;
use chat_domain::RoomId;

/// A frame as the server writes it.
#[derive(Serialize)]
struct Out<'a, P: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    payload: P,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    reference: Option<&'a str>,
}

/// Serialises a frame. Serialising these types cannot fail (no maps with
/// non-string keys, no custom serialisers that error); if it ever did, the
/// frame would be an `error` saying so rather than a panic.
pub fn frame<P: Serialize>(kind: &str, payload: P, reference: Option<&str>) -> ByteString {
    match serde_json::to_string(&Out {
        kind,
        payload,
        reference,
    }) {
        Ok(s) => ByteString::from(s),
        Err(_) => ByteString::from_static(
            r#"{"type":"error","payload":{"code":"internal","error":"Could not encode an event"}}"#,
        ),
    }
}

/// The `error` frame for a refusal, with the REST code (and `fields`).
pub fn error(e: &ApiError, reference: Option<&str>) -> ByteString {
    frame("error", e.body(), reference)
}

/// A frame as a client writes it.
#[derive(Deserialize)]
pub struct In {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub payload: serde_json::Value,
    #[serde(rename = "ref")]
    pub reference: Option<String>,
}

/// What a client asks, by frame type, its payload read and checked.
#[derive(Debug)]
pub enum ClientFrame {
    /// `message:send`: the draft checked as REST checks it.
    Send {
        room: RoomId,
        draft: SendMessage,
    },
    Typing {
        room: RoomId,
    },
    Read {
        room: RoomId,
        seq: u64,
    },
    Delivered {
        room: RoomId,
        seq: u64,
    },
    Join {
        room: RoomId,
    },
    Ping,
}

impl ClientFrame {
    /// Reads the payload of a frame of type `kind`: `unknown_type` for a
    /// type the gateway does not take, `validation` for a bad payload.
    pub fn read(kind: &str, payload: serde_json::Value) -> Result<Self, ApiError> {
        Ok(match kind {
            "message:send" => {
                let send: SendPayload = from_value(payload)?;
                Self::Send {
                    room: RoomId(send.room_id),
                    draft: crate::send::draft(send.message)?,
                }
            }
            "typing" => Self::Typing {
                room: from_value::<RoomRef>(payload)?.room(),
            },
            "read" => {
                let r: SeqRef = from_value(payload)?;
                Self::Read {
                    room: RoomId(r.room_id),
                    seq: r.seq()?,
                }
            }
            "delivered" => {
                let r: SeqRef = from_value(payload)?;
                Self::Delivered {
                    room: RoomId(r.room_id),
                    seq: r.seq()?,
                }
            }
            "room:join" => Self::Join {
                room: from_value::<RoomRef>(payload)?.room(),
            },
            "ping" => Self::Ping,
            other => {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    "unknown_type",
                    format!("Unknown frame type {other:?}"),
                ));
            }
        })
    }
}

#[derive(Deserialize)]
struct SendPayload {
    room_id: Uuid,
    #[serde(flatten)]
    message: SendMessageRequest,
}

#[derive(Deserialize)]
struct RoomRef {
    room_id: Uuid,
}

impl RoomRef {
    fn room(&self) -> RoomId {
        RoomId(self.room_id)
    }
}

#[derive(Deserialize)]
struct SeqRef {
    room_id: Uuid,
    seq: i64,
}

impl SeqRef {
    fn seq(&self) -> Result<u64, ApiError> {
        u64::try_from(self.seq)
            .map_err(|_| ApiError::field("seq", "must be a non-negative integer"))
    }
}

#[derive(Serialize)]
struct MessageNew {
    room_id: Uuid,
    version: u64,
    message: MessageDto,
}

#[derive(Serialize)]
struct MessageUpdated {
    room_id: Uuid,
    version: u64,
    message: MessageDto,
}

#[derive(Serialize)]
struct MessageDeleted {
    room_id: Uuid,
    version: u64,
    id: Uuid,
    seq: u64,
}

#[derive(Serialize)]
struct ReactionCount {
    emoji: String,
    count: u32,
}

#[derive(Serialize)]
struct ReactionUpdated {
    room_id: Uuid,
    version: u64,
    message_id: Uuid,
    emoji: String,
    user_id: Uuid,
    added: bool,
    reactions: Vec<ReactionCount>,
}

#[derive(Serialize)]
struct RoomUpdated {
    room_id: Uuid,
    version: u64,
    room: RoomDto,
}

#[derive(Serialize)]
struct RoomDeleted {
    room_id: Uuid,
}

#[derive(Serialize)]
struct MemberJoined {
    room_id: Uuid,
    version: u64,
    user: PublicUserDto,
    role: RoleDto,
}

#[derive(Serialize)]
struct MemberUpdated {
    room_id: Uuid,
    version: u64,
    user_id: Uuid,
    role: RoleDto,
}

#[derive(Serialize)]
struct MemberLeft {
    room_id: Uuid,
    version: u64,
    user_id: Uuid,
}

#[derive(Serialize)]
struct Read {
    room_id: Uuid,
    user_id: Uuid,
    seq: u64,
}

#[derive(Serialize)]
struct Typing {
    room_id: Uuid,
    user: SenderDto,
}

#[derive(Serialize)]
struct Presence {
    user_id: Uuid,
    presence: &'static str,
    last_seen_at: Option<Timestamp>,
}

fn role(r: Role) -> RoleDto {
    r.into()
}

/// A `message:updated` frame. Its reactions' `me` is as `message` has it:
/// the hub sets it for each group of recipients (see
/// [`message_updated_for`]).
pub fn message_updated(message: chat_domain::Message) -> ByteString {
    frame(
        "message:updated",
        MessageUpdated {
            room_id: message.room_id.0,
            version: message.version,
            message: message.into(),
        },
        None,
    )
}

/// The `message:updated` frame as a recipient who reacted with exactly
/// `mine` (emoji) sees it.
pub fn message_updated_for(message: &chat_domain::Message, mine: &[&str]) -> ByteString {
    let mut message = message.clone();
    for r in &mut message.reactions {
        r.me = mine.contains(&r.emoji.as_str());
    }
    message_updated(message)
}

/// The frame an event becomes, serialised once for every recipient.
/// `None` for events that are not sent to clients as such.
pub fn of_event(event: &Event, online: impl Fn(chat_domain::UserId) -> bool) -> Option<ByteString> {
    Some(match event.clone() {
        Event::MessageNew { message } => frame(
            "message:new",
            MessageNew {
                room_id: message.room_id.0,
                version: message.version,
                message: message.into(),
            },
            None,
        ),
        Event::MessageUpdated { message, .. } => message_updated(message),
        Event::MessageDeleted {
            room_id,
            id,
            seq,
            version,
        } => frame(
            "message:deleted",
            MessageDeleted {
                room_id: room_id.0,
                version,
                id: id.0,
                seq,
            },
            None,
        ),
        Event::ReactionUpdated {
            room_id,
            message_id,
            emoji,
            user_id,
            added,
            reactions,
            version,
        } => frame(
            "reaction:updated",
            ReactionUpdated {
                room_id: room_id.0,
                version,
                message_id: message_id.0,
                emoji,
                user_id: user_id.0,
                added,
                reactions: reactions
                    .into_iter()
                    .map(|(emoji, count)| ReactionCount { emoji, count })
                    .collect(),
            },
            None,
        ),
        Event::RoomCreated { room, .. } | Event::RoomUpdated { room } => frame(
            "room:updated",
            RoomUpdated {
                room_id: room.id.0,
                version: room.version,
                room: room.into(),
            },
            None,
        ),
        Event::RoomDeleted { room_id, .. } => {
            frame("room:deleted", RoomDeleted { room_id: room_id.0 }, None)
        }
        Event::MemberJoined {
            membership,
            user,
            version,
        } => {
            let is_online = online(user.id);
            frame(
                "member:joined",
                MemberJoined {
                    room_id: membership.room_id.0,
                    version,
                    user: PublicUserDto::with_presence(user, is_online),
                    role: role(membership.role),
                },
                None,
            )
        }
        Event::MemberUpdated {
            room_id,
            user_id,
            role: r,
            version,
        } => frame(
            "member:updated",
            MemberUpdated {
                room_id: room_id.0,
                version,
                user_id: user_id.0,
                role: role(r),
            },
            None,
        ),
        Event::MemberLeft {
            room_id,
            user_id,
            version,
        } => frame(
            "member:left",
            MemberLeft {
                room_id: room_id.0,
                version,
                user_id: user_id.0,
            },
            None,
        ),
        Event::Read {
            room_id,
            user_id,
            seq,
        } => frame(
            "read",
            Read {
                room_id: room_id.0,
                user_id: user_id.0,
                seq,
            },
            None,
        ),
        Event::Typing { room_id, user } => frame(
            "typing",
            Typing {
                room_id: room_id.0,
                user: SenderDto {
                    id: user.id.0,
                    username: user.username.as_str().to_owned(),
                    display_name: user.display_name,
                },
            },
            None,
        ),
        Event::Presence {
            user_id,
            online,
            last_seen_at,
            ..
        } => frame(
            "presence",
            Presence {
                user_id: user_id.0,
                presence: if online { "online" } else { "offline" },
                last_seen_at,
            },
            None,
        ),
        Event::SessionEnded { .. } => return None,
    })
}
