//! The hub: who is connected, which rooms their events come from, and the
//! fan-out of events to connections.
//!
//! One task owns the routing tables and handles commands (connect, the rooms
//! of a user, disconnect) and events from the bus in arrival order, so the
//! tables need no lock. A room's counted events are put back in version
//! order before delivery (publishers race between commit and publish, and
//! events from other nodes arrive when they arrive); a gap that does not
//! fill within [`GAP_WAIT`] is given up on, and clients fill it from
//! `GET /rooms/{id}/changes`. Each event is serialised once and the same
//! bytes go into every recipient's bounded queue with `try_send`: a full
//! queue closes that connection with 1013, and nobody else waits for it.
//! The hub never writes to a socket: each connection's own task does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_ws::CloseCode;
use bytestring::ByteString;
use chat_domain::{RoomId, SessionId, UserId};
use chat_ports::{Event, EventStream};
use tokio::sync::{Notify, mpsc};

use super::frames;

/// How long a room's later events wait for a missing earlier one.
pub const GAP_WAIT: Duration = Duration::from_secs(1);

/// Why a connection is being closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseWhy {
    /// It did not read its events fast enough (1013).
    SlowConsumer,
    /// Its session ended: logout or a revoked session (1008).
    SessionEnded,
    /// The server is shutting down (1001).
    GoingAway,
}

impl CloseWhy {
    pub fn code(self) -> CloseCode {
        match self {
            CloseWhy::SlowConsumer => CloseCode::Again,
            CloseWhy::SessionEnded => CloseCode::Policy,
            CloseWhy::GoingAway => CloseCode::Away,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            CloseWhy::SlowConsumer => "too slow reading events",
            CloseWhy::SessionEnded => "session ended",
            CloseWhy::GoingAway => "server shutting down",
        }
    }
}

/// Tells a connection's task to close. Set once; the first reason wins.
#[derive(Default)]
pub struct Closer {
    why: Mutex<Option<CloseWhy>>,
    notify: Notify,
}

impl Closer {
    pub fn close(&self, why: CloseWhy) {
        if let Ok(mut w) = self.why.lock()
            && w.is_none()
        {
            *w = Some(why);
        }
        self.notify.notify_one();
    }

    /// Waits until the hub asks the connection to close, and says why.
    pub async fn closed(&self) -> CloseWhy {
        loop {
            if let Some(why) = self.why.lock().ok().and_then(|w| *w) {
                return why;
            }
            self.notify.notified().await;
        }
    }
}

/// What the hub keeps of a connection.
pub struct Conn {
    pub id: u64,
    pub user: UserId,
    pub session: SessionId,
    pub out: mpsc::Sender<ByteString>,
    pub closer: Arc<Closer>,
}

enum Cmd {
    Connect(Conn),
    Rooms { user: UserId, rooms: Vec<RoomId> },
    Disconnect(u64),
    Event(Box<Event>),
    CloseAll(CloseWhy),
}

/// Counters, for metrics and tests.
#[derive(Default, Debug)]
pub struct HubStats {
    /// Frames put into a connection's queue.
    pub delivered: AtomicU64,
    /// Frames that found a connection's queue full (it was then closed).
    pub dropped: AtomicU64,
    /// Connections closed for not keeping up.
    pub slow_consumers: AtomicU64,
    /// Room gaps given up on after [`GAP_WAIT`].
    pub gaps: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
}

/// A handle to the hub; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    tx: mpsc::UnboundedSender<Cmd>,
    /// Open connections per user, shared with the handlers that show presence.
    online: Arc<Mutex<HashMap<UserId, usize>>>,
    /// Users the last `presence` event said are online, whichever node
    /// holds their connections (with several nodes, ones elsewhere).
    announced: Arc<Mutex<HashSet<UserId>>>,
    next_id: Arc<AtomicU64>,
    pub stats: Arc<HubStats>,
}

impl Hub {
    /// Starts the hub's task, fed by `events`. Needs a tokio runtime.
    pub fn start(mut events: Box<dyn EventStream>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(HubStats::default());
        let announced: Arc<Mutex<HashSet<UserId>>> = Arc::default();
        let hub = Self {
            tx: tx.clone(),
            online: Arc::default(),
            announced: announced.clone(),
            next_id: Arc::new(AtomicU64::new(1)),
            stats: stats.clone(),
        };
        // The bus's subscription feeds the same queue as the commands, so the
        // hub sees both in one order.
        tokio::spawn(async move {
            while let Some(e) = events.next().await {
                if let Event::Presence {
                    user_id, online, ..
                } = &e
                    && let Ok(mut announced) = announced.lock()
                {
                    if *online {
                        announced.insert(*user_id);
                    } else {
                        announced.remove(user_id);
                    }
                }
                if tx.send(Cmd::Event(Box::new(e))).is_err() {
                    break;
                }
            }
        });
        tokio::spawn(State::new(stats).run(rx));
        hub
    }

    /// A fresh connection id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a connection; `true` when it is its user's first.
    pub fn connect(&self, conn: Conn) -> bool {
        let first = match self.online.lock() {
            Ok(mut online) => {
                let n = online.entry(conn.user).or_insert(0);
                *n += 1;
                *n == 1
            }
            Err(_) => false,
        };
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(Cmd::Connect(conn));
        first
    }

    /// Closes every connection with `why` (the server is going away).
    pub fn close_all(&self, why: CloseWhy) {
        let _ = self.tx.send(Cmd::CloseAll(why));
    }

    /// The rooms `user` is in, as read after their connection registered.
    pub fn set_rooms(&self, user: UserId, rooms: Vec<RoomId>) {
        let _ = self.tx.send(Cmd::Rooms { user, rooms });
    }

    /// Forgets a connection; `true` when it was its user's last.
    pub fn disconnect(&self, user: UserId, conn: u64) -> bool {
        let last = match self.online.lock() {
            Ok(mut online) => match online.get_mut(&user) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    online.remove(&user);
                    true
                }
                None => false,
            },
            Err(_) => false,
        };
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        let _ = self.tx.send(Cmd::Disconnect(conn));
        last
    }

    /// Whether the user holds a connection to this server, or the last
    /// `presence` event said they are online (on another node).
    pub fn is_online(&self, user: UserId) -> bool {
        self.online.lock().is_ok_and(|o| o.contains_key(&user))
            || self.announced.lock().is_ok_and(|a| a.contains(&user))
    }
}

/// A connected user: their connections and the rooms they are in.
struct User {
    conns: Vec<u64>,
    rooms: HashSet<RoomId>,
    /// Until their rooms are read: the membership changes seen since they
    /// connected (room → member now?), which win over the read.
    pending: Option<HashMap<RoomId, bool>>,
}

/// A room's delivery order.
#[derive(Default)]
struct Order {
    /// The version the next delivered event should have.
    next: Option<u64>,
    /// Events that came early, by version.
    early: BTreeMap<u64, Event>,
    /// Since when the oldest early event has waited.
    waiting_since: Option<Instant>,
}

struct State {
    conns: HashMap<u64, Conn>,
    users: HashMap<UserId, User>,
    /// Room → its members connected here.
    rooms: HashMap<RoomId, HashSet<UserId>>,
    order: HashMap<RoomId, Order>,
    stats: Arc<HubStats>,
    /// Set once the server is going away: newcomers are closed at once.
    closing: Option<CloseWhy>,
}

impl State {
    fn new(stats: Arc<HubStats>) -> Self {
        Self {
            conns: HashMap::new(),
            users: HashMap::new(),
            rooms: HashMap::new(),
            order: HashMap::new(),
            stats,
            closing: None,
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        let mut tick = tokio::time::interval(GAP_WAIT / 4);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                _ = tick.tick() => self.give_up_on_gaps(),
            }
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Connect(conn) => {
                if let Some(why) = self.closing {
                    conn.closer.close(why);
                }
                let user = self.users.entry(conn.user).or_insert_with(|| User {
                    conns: Vec::new(),
                    rooms: HashSet::new(),
                    pending: Some(HashMap::new()),
                });
                user.conns.push(conn.id);
                self.conns.insert(conn.id, conn);
            }
            Cmd::Rooms { user, rooms } => self.set_rooms(user, rooms),
            Cmd::Disconnect(id) => self.drop_conn(id),
            Cmd::Event(e) => self.event(*e),
            Cmd::CloseAll(why) => {
                self.closing = Some(why);
                for conn in self.conns.values() {
                    conn.closer.close(why);
                }
            }
        }
    }

    fn set_rooms(&mut self, id: UserId, read: Vec<RoomId>) {
        let Some(user) = self.users.get_mut(&id) else {
            return;
        };
        let Some(seen) = user.pending.take() else {
            return; // already known, and kept current by events since
        };
        let mut rooms: HashSet<RoomId> = read.into_iter().collect();
        for (room, member) in seen {
            if member {
                rooms.insert(room);
            } else {
                rooms.remove(&room);
            }
        }
        for room in &rooms {
            self.rooms.entry(*room).or_default().insert(id);
        }
        user.rooms = rooms;
    }

    fn drop_conn(&mut self, id: u64) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        let Some(user) = self.users.get_mut(&conn.user) else {
            return;
        };
        user.conns.retain(|c| *c != id);
        if user.conns.is_empty() {
            for room in &user.rooms {
                if let Some(members) = self.rooms.get_mut(room) {
                    members.remove(&conn.user);
                    if members.is_empty() {
                        self.rooms.remove(room);
                    }
                }
            }
            self.users.remove(&conn.user);
        }
    }

    /// Records that `user` (if connected here) is or is not in `room`.
    fn set_member(&mut self, room: RoomId, id: UserId, member: bool) {
        let Some(user) = self.users.get_mut(&id) else {
            return;
        };
        if let Some(pending) = user.pending.as_mut() {
            pending.insert(room, member);
        }
        if member {
            user.rooms.insert(room);
            self.rooms.entry(room).or_default().insert(id);
        } else {
            user.rooms.remove(&room);
            if let Some(members) = self.rooms.get_mut(&room) {
                members.remove(&id);
                if members.is_empty() {
                    self.rooms.remove(&room);
                }
            }
        }
    }

    fn event(&mut self, e: Event) {
        let (Some(room), Some(version)) = (e.room_id(), e.version()) else {
            return self.deliver(e);
        };
        let order = self.order.entry(room).or_default();
        let next = *order.next.get_or_insert(version);
        if version > next {
            order.early.insert(version, e);
            order.waiting_since.get_or_insert_with(Instant::now);
            return;
        }
        if version == next {
            order.next = Some(version + 1);
        }
        // An event older than expected came after its gap was given up on:
        // late, but still worth delivering.
        self.deliver(e);
        self.release(room);
    }

    /// Delivers the room's early events that are now in order.
    fn release(&mut self, room: RoomId) {
        loop {
            let Some(order) = self.order.get_mut(&room) else {
                return;
            };
            let Some(next) = order.next else { return };
            let Some(e) = order.early.remove(&next) else {
                if order.early.is_empty() {
                    order.waiting_since = None;
                    // Nobody here listens to the room and nothing waits: its
                    // order starts afresh from the next event, so the table
                    // stays as small as the set of rooms with listeners.
                    if !self.rooms.contains_key(&room) {
                        self.order.remove(&room);
                    }
                }
                return;
            };
            order.next = Some(next + 1);
            self.deliver(e);
        }
    }

    /// Rooms whose gap has lasted [`GAP_WAIT`]: deliver what came, in order.
    fn give_up_on_gaps(&mut self) {
        let stale: Vec<RoomId> = self
            .order
            .iter()
            .filter(|(_, o)| o.waiting_since.is_some_and(|t| t.elapsed() >= GAP_WAIT))
            .map(|(r, _)| *r)
            .collect();
        for room in stale {
            if let Some(order) = self.order.get_mut(&room)
                && let Some((&first, _)) = order.early.first_key_value()
            {
                order.next = Some(first);
                self.stats.gaps.fetch_add(1, Ordering::Relaxed);
            }
            self.release(room);
        }
    }

    fn deliver(&mut self, e: Event) {
        match &e {
            Event::SessionEnded { session_id, .. } => {
                for conn in self.conns.values().filter(|c| c.session == *session_id) {
                    conn.closer.close(CloseWhy::SessionEnded);
                }
                return;
            }
            Event::RoomCreated { room, member_ids } => {
                for id in member_ids {
                    self.set_member(room.id, *id, true);
                }
                // A new room's next counted change is version 2.
                self.order.entry(room.id).or_default().next = Some(room.version + 1);
            }
            Event::MemberJoined { membership, .. } => {
                self.set_member(membership.room_id, membership.user_id, true);
            }
            _ => {}
        }
        if let Event::MessageUpdated { message, reactors } = &e
            && !reactors.is_empty()
        {
            self.deliver_edit(message, reactors);
            return;
        }
        let Some(bytes) = frames::of_event(&e, |u| self.users.contains_key(&u)) else {
            return;
        };
        match &e {
            Event::Typing { room_id, user } => {
                let to: Vec<UserId> = self.members(*room_id).filter(|u| *u != user.id).collect();
                self.send_to(&to, &bytes);
            }
            Event::Presence {
                user_id, room_ids, ..
            } => {
                let mut to: HashSet<UserId> = HashSet::new();
                for room in room_ids {
                    to.extend(self.members(*room));
                }
                to.remove(user_id);
                let to: Vec<UserId> = to.into_iter().collect();
                self.send_to(&to, &bytes);
            }
            Event::RoomDeleted {
                room_id,
                member_ids,
            } => {
                let mut to: HashSet<UserId> = self.members(*room_id).collect();
                to.extend(member_ids.iter().copied());
                let to: Vec<UserId> = to.into_iter().collect();
                self.send_to(&to, &bytes);
                for id in to {
                    self.set_member(*room_id, id, false);
                }
                self.order.remove(room_id);
            }
            Event::MemberLeft {
                room_id, user_id, ..
            } => {
                // The one who left hears it too, and hears nothing after.
                let to: Vec<UserId> = self.members(*room_id).collect();
                self.send_to(&to, &bytes);
                self.set_member(*room_id, *user_id, false);
            }
            other => {
                if let Some(room) = other.room_id() {
                    let to: Vec<UserId> = self.members(room).collect();
                    self.send_to(&to, &bytes);
                }
            }
        }
    }

    /// An edited message with reactions: each recipient's copy says which
    /// of them are theirs (`me`). Recipients who reacted the same way share
    /// one serialised frame; those who did not react share one.
    fn deliver_edit(&mut self, message: &chat_domain::Message, reactors: &[chat_ports::Reactors]) {
        let mut groups: HashMap<Vec<&str>, Vec<UserId>> = HashMap::new();
        for user in self.members(message.room_id) {
            if !self.users.contains_key(&user) {
                continue;
            }
            let mine: Vec<&str> = reactors
                .iter()
                .filter(|r| r.user_ids.contains(&user))
                .map(|r| r.emoji.as_str())
                .collect();
            groups.entry(mine).or_default().push(user);
        }
        let frames: Vec<(ByteString, Vec<UserId>)> = groups
            .into_iter()
            .map(|(mine, users)| (frames::message_updated_for(message, &mine), users))
            .collect();
        for (bytes, users) in frames {
            self.send_to(&users, &bytes);
        }
    }

    fn members(&self, room: RoomId) -> impl Iterator<Item = UserId> + '_ {
        self.rooms.get(&room).into_iter().flatten().copied()
    }

    /// Queues the frame on every connection of these users. A full queue
    /// closes that connection (1013); nobody waits for it.
    fn send_to(&mut self, users: &[UserId], bytes: &ByteString) {
        let mut gone = Vec::new();
        for id in users {
            let Some(user) = self.users.get(id) else {
                continue;
            };
            for conn_id in &user.conns {
                let Some(conn) = self.conns.get(conn_id) else {
                    continue;
                };
                match conn.out.try_send(bytes.clone()) {
                    Ok(()) => {
                        self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                        conn.closer.close(CloseWhy::SlowConsumer);
                        gone.push(*conn_id);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => gone.push(*conn_id),
                }
            }
        }
        for id in gone {
            self.drop_conn(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_domain::Role;
    use uuid::Uuid;

    /// A bus subscription fed by the test.
    struct Feed(mpsc::UnboundedReceiver<Event>);

    #[async_trait::async_trait]
    impl EventStream for Feed {
        async fn next(&mut self) -> Option<Event> {
            self.0.recv().await
        }
    }

    /// A counted event of the room (another member's role changes).
    fn counted(room: RoomId, version: u64) -> Event {
        Event::MemberUpdated {
            room_id: room,
            user_id: UserId(Uuid::from_u128(99)),
            role: Role::Member,
            version,
        }
    }

    fn version_of(frame: &ByteString) -> u64 {
        let v: serde_json::Value = serde_json::from_str(frame).unwrap();
        v["payload"]["version"].as_u64().unwrap()
    }

    async fn listener() -> (
        Hub,
        mpsc::UnboundedSender<Event>,
        mpsc::Receiver<ByteString>,
        RoomId,
    ) {
        let (feed, rx) = mpsc::unbounded_channel();
        let hub = Hub::start(Box::new(Feed(rx)));
        let (out, queue) = mpsc::channel(16);
        let user = UserId(Uuid::from_u128(1));
        let room = RoomId(Uuid::from_u128(7));
        hub.connect(Conn {
            id: hub.next_id(),
            user,
            session: SessionId(Uuid::from_u128(2)),
            out,
            closer: Arc::default(),
        });
        hub.set_rooms(user, vec![room]);
        (hub, feed, queue, room)
    }

    #[tokio::test]
    async fn a_rooms_events_are_delivered_in_version_order() {
        let (_hub, feed, mut queue, room) = listener().await;
        for v in [10, 12, 11, 13] {
            feed.send(counted(room, v)).unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(version_of(&queue.recv().await.unwrap()));
        }
        assert_eq!(got, vec![10, 11, 12, 13]);
    }

    #[tokio::test]
    async fn a_gap_that_does_not_fill_is_given_up_on() {
        let (hub, feed, mut queue, room) = listener().await;
        feed.send(counted(room, 1)).unwrap();
        feed.send(counted(room, 3)).unwrap(); // 2 never comes
        assert_eq!(version_of(&queue.recv().await.unwrap()), 1);
        let started = Instant::now();
        assert_eq!(version_of(&queue.recv().await.unwrap()), 3);
        assert!(started.elapsed() >= GAP_WAIT / 2, "3 waited for 2 first");
        assert_eq!(hub.stats.gaps.load(Ordering::Relaxed), 1);
    }
}
