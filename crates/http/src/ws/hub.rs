//! The hub: who is connected, which rooms their events come from, and the
//! fan-out of events to connections.
//!
//! One task owns the routing tables and handles commands (connect, the rooms
//! of a user, disconnect) and events from the bus in arrival order, so the
//! tables need no lock. A room's counted events are put back in version
//! order before delivery (publishers race between commit and publish, and
//! events from other nodes arrive when they arrive); a gap that does not
//! fill within [`GAP_WAIT`] is asked of the store ([`Refill`]: the
//! messages among the missing versions come back as events); what the
//! store cannot give back as events is given up on, and clients fill it
//! from `GET /rooms/{id}/changes` (they see the versions jump). Each
//! event is serialised once and the same bytes go into every recipient's
//! queue ([`super::outbound::Outbox`]), which the connection's response
//! body writes out; a connection too far behind (by bytes or by time) is
//! closed with 1013, and nobody else waits for it. The hub never writes to
//! a socket.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_ws::CloseCode;
use bytestring::ByteString;
use chat_domain::{RoomId, SessionId, UserId};
use chat_ports::{Event, EventStream, Interest, Topic};
use tokio::sync::{Notify, mpsc};

use super::frames;
use super::outbound::Refused;

/// How long a room's later events wait for a missing earlier one.
pub const GAP_WAIT: Duration = Duration::from_secs(1);

/// How long the store gets to give a gap back before the hub goes on
/// without it.
pub const REFILL_WAIT: Duration = Duration::from_secs(2);

/// Where the hub gets a room's lost events back from: the store.
#[async_trait::async_trait]
pub trait Refill: Send + Sync + 'static {
    /// The events among the room's versions after `since`, up to `upto`,
    /// that can be told again; `last_seq` is the newest message this
    /// node's listeners have seen. Empty when there are none or the store
    /// cannot answer.
    async fn missed(&self, room: RoomId, since: u64, upto: u64, last_seq: u64) -> Vec<Event>;
}

#[async_trait::async_trait]
impl Refill for chat_app::Rooms {
    async fn missed(&self, room: RoomId, since: u64, upto: u64, last_seq: u64) -> Vec<Event> {
        match self.missed_events(room, since, upto, last_seq).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, room = %room.0, "could not read a gap's events back");
                Vec::new()
            }
        }
    }
}

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
    pub out: super::outbound::Outbox,
    pub closer: Arc<Closer>,
}

enum Cmd {
    Connect(Conn),
    Rooms {
        user: UserId,
        rooms: Vec<RoomId>,
    },
    Disconnect(u64),
    CloseAll(CloseWhy),
    /// The store's answer for a room's gap up to `upto`.
    Refilled {
        room: RoomId,
        upto: u64,
        events: Vec<Event>,
    },
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
    /// Room gaps not (wholly) filled: some versions never delivered.
    pub gaps: AtomicU64,
    /// Events read back from the store to fill gaps.
    pub refilled: AtomicU64,
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
    /// Starts the hub's task, fed by `events`, filling gaps from `refill`
    /// (without one, a gap is given up on after [`GAP_WAIT`]). Needs a
    /// tokio runtime.
    pub fn start(events: Box<dyn EventStream>, refill: Option<Arc<dyn Refill>>) -> Self {
        let interest = events.interest();
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
        tokio::spawn(
            State::new(stats, interest, refill, hub.tx.clone(), announced).run(rx, events),
        );
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
    /// The highest message seq delivered here.
    last_seq: u64,
    /// Whether the store is being asked for the gap.
    refilling: bool,
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
    /// Told which rooms and users have someone here (keys of `rooms` and
    /// `users`), on a bus that sends each node only what it needs.
    interest: Option<Arc<dyn Interest>>,
    refill: Option<Arc<dyn Refill>>,
    /// The hub's own queue, for the store's answers.
    tx: mpsc::UnboundedSender<Cmd>,
    /// Who the last `presence` event said is online (shared with [`Hub`]).
    announced: Arc<Mutex<HashSet<UserId>>>,
}

impl State {
    fn new(
        stats: Arc<HubStats>,
        interest: Option<Arc<dyn Interest>>,
        refill: Option<Arc<dyn Refill>>,
        tx: mpsc::UnboundedSender<Cmd>,
        announced: Arc<Mutex<HashSet<UserId>>>,
    ) -> Self {
        Self {
            conns: HashMap::new(),
            users: HashMap::new(),
            rooms: HashMap::new(),
            order: HashMap::new(),
            stats,
            closing: None,
            interest,
            refill,
            tx,
            announced,
        }
    }

    fn listen(&self, topic: Topic) {
        if let Some(i) = &self.interest {
            i.listen(topic);
        }
    }

    fn unlisten(&self, topic: Topic) {
        if let Some(i) = &self.interest {
            i.unlisten(topic);
        }
    }

    /// `user`, connected here, is in `room`.
    fn add_listener(&mut self, room: RoomId, user: UserId) {
        let members = self.rooms.entry(room).or_default();
        let first = members.is_empty();
        members.insert(user);
        if first {
            self.listen(Topic::Room(room));
        }
    }

    /// `user` no longer hears `room` here.
    fn remove_listener(&mut self, room: RoomId, user: UserId) {
        if let Some(members) = self.rooms.get_mut(&room) {
            members.remove(&user);
            if members.is_empty() {
                self.rooms.remove(&room);
                self.unlisten(Topic::Room(room));
            }
        }
    }

    /// Handles commands and the bus's events in one loop: the bus hands an
    /// event over only when the hub takes it (one hop, as bounded as the
    /// bus's subscription), so a hub that falls behind slows the
    /// publishers down rather than letting a queue grow.
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>, mut events: Box<dyn EventStream>) {
        let mut bus_open = true;
        let mut tick = tokio::time::interval(GAP_WAIT / 4);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                _ = tick.tick() => self.give_up_on_gaps(),
                event = events.next(), if bus_open => match event {
                    Some(e) => {
                        // Commands given before the event was published come
                        // first (a connection's rooms, registered before its
                        // `hello`, must hear every event after it).
                        while let Ok(cmd) = rx.try_recv() {
                            self.handle(cmd);
                        }
                        self.bus_event(e);
                    }
                    None => bus_open = false,
                },
            }
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Connect(conn) => {
                if let Some(why) = self.closing {
                    conn.closer.close(why);
                }
                if !self.users.contains_key(&conn.user) {
                    self.listen(Topic::User(conn.user));
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
            Cmd::Refilled { room, upto, events } => self.refilled(room, upto, events),
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
        user.rooms = rooms.clone();
        for room in rooms {
            self.add_listener(room, id);
        }
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
            let rooms = std::mem::take(&mut user.rooms);
            self.users.remove(&conn.user);
            for room in rooms {
                self.remove_listener(room, conn.user);
            }
            self.unlisten(Topic::User(conn.user));
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
            self.add_listener(room, id);
        } else {
            user.rooms.remove(&room);
            self.remove_listener(room, id);
        }
    }

    fn bus_event(&mut self, e: Event) {
        if let Event::Presence {
            user_id, online, ..
        } = &e
            && let Ok(mut announced) = self.announced.lock()
        {
            if *online {
                announced.insert(*user_id);
            } else {
                announced.remove(user_id);
            }
        }
        self.event(e);
    }

    fn event(&mut self, e: Event) {
        let (Some(room), Some(version)) = (e.room_id(), e.version()) else {
            return self.deliver(e);
        };
        if !self.order.contains_key(&room) && !self.rooms.contains_key(&room) {
            // Nobody here hears the room: nothing to order. Should the
            // event bring someone here into it (they created or joined it),
            // its order starts after this event.
            self.deliver(e);
            if self.rooms.contains_key(&room) {
                self.order.entry(room).or_default().next = Some(version + 1);
            }
            return;
        }
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

    /// Rooms whose gap has lasted [`GAP_WAIT`]: ask the store for every
    /// version missing up to the last one that came (one question however
    /// many holes), or without a store, deliver what came, in order.
    fn give_up_on_gaps(&mut self) {
        let stale: Vec<RoomId> = self
            .order
            .iter()
            .filter(|(_, o)| {
                !o.refilling && o.waiting_since.is_some_and(|t| t.elapsed() >= GAP_WAIT)
            })
            .map(|(r, _)| *r)
            .collect();
        for room in stale {
            let Some(order) = self.order.get_mut(&room) else {
                continue;
            };
            let (Some(next), Some((&last, _))) = (order.next, order.early.last_key_value()) else {
                continue;
            };
            let Some(refill) = self.refill.clone() else {
                self.refilled(room, last, Vec::new());
                continue;
            };
            order.refilling = true;
            let (since, last_seq) = (next - 1, order.last_seq);
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let events =
                    tokio::time::timeout(REFILL_WAIT, refill.missed(room, since, last, last_seq))
                        .await
                        .unwrap_or_default();
                let _ = tx.send(Cmd::Refilled {
                    room,
                    upto: last,
                    events,
                });
            });
        }
    }

    /// The store's answer for a room's missing versions up to `upto`: put
    /// what it gave back among the events that came, deliver all of them
    /// in version order, count the holes left, and go on from `upto`.
    fn refilled(&mut self, room: RoomId, upto: u64, events: Vec<Event>) {
        let Some(order) = self.order.get_mut(&room) else {
            return;
        };
        order.refilling = false;
        let Some(next) = order.next else {
            return;
        };
        let mut found = 0;
        for e in events {
            // What arrived meanwhile is delivered or waiting already.
            if let Some(v) = e.version()
                && (next..=upto).contains(&v)
                && !order.early.contains_key(&v)
            {
                order.early.insert(v, e);
                found += 1;
            }
        }
        self.stats.refilled.fetch_add(found, Ordering::Relaxed);
        let later = order.early.split_off(&(upto + 1));
        let ready = std::mem::replace(&mut order.early, later);
        if (ready.len() as u64) < (upto + 1).saturating_sub(next) {
            self.stats.gaps.fetch_add(1, Ordering::Relaxed);
        }
        order.next = Some(next.max(upto + 1));
        order.waiting_since = None;
        for (_, e) in ready {
            self.deliver(e);
        }
        self.release(room);
        // A later gap, if any, waits its own while from now.
        if let Some(order) = self.order.get_mut(&room)
            && !order.early.is_empty()
        {
            order.waiting_since = Some(Instant::now());
        }
    }

    fn deliver(&mut self, e: Event) {
        if let Event::MessageNew { message } = &e
            && let Some(order) = self.order.get_mut(&message.room_id)
        {
            order.last_seq = order.last_seq.max(message.seq);
        }
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
                // A new room's next counted change is version 2: ordered
                // here if someone here is in it.
                if self.rooms.contains_key(&room.id) {
                    self.order.entry(room.id).or_default().next = Some(room.version + 1);
                }
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
        let now = super::outbound::now_ms();
        for id in users {
            let Some(user) = self.users.get(id) else {
                continue;
            };
            for conn_id in &user.conns {
                let Some(conn) = self.conns.get(conn_id) else {
                    continue;
                };
                match conn.out.push(bytes, now) {
                    Ok(()) => {
                        self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(Refused::Slow) => {
                        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                        conn.closer.close(CloseWhy::SlowConsumer);
                        gone.push(*conn_id);
                    }
                    Err(Refused::Closed) => gone.push(*conn_id),
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

    /// A feed whose interest the test reads: what is listened to now.
    struct Narrowing(mpsc::UnboundedReceiver<Event>, Arc<Listened>);

    #[derive(Default)]
    struct Listened(Mutex<HashMap<Topic, i64>>);

    impl Listened {
        fn now(&self) -> HashSet<Topic> {
            let counts = self.0.lock().unwrap();
            assert!(
                counts.values().all(|n| *n >= 0),
                "unlistened more than listened"
            );
            counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(t, _)| *t)
                .collect()
        }
    }

    impl Interest for Listened {
        fn listen(&self, topic: Topic) {
            *self.0.lock().unwrap().entry(topic).or_insert(0) += 1;
        }
        fn unlisten(&self, topic: Topic) {
            *self.0.lock().unwrap().entry(topic).or_insert(0) -= 1;
        }
    }

    #[async_trait::async_trait]
    impl EventStream for Narrowing {
        async fn next(&mut self) -> Option<Event> {
            self.0.recv().await
        }
        fn interest(&self) -> Option<Arc<dyn Interest>> {
            Some(self.1.clone())
        }
    }

    /// Waits until the hub has handled what was sent to it so far.
    async fn settled(listened: &Listened, want: &HashSet<Topic>) {
        for _ in 0..200 {
            if listened.now() == *want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(listened.now(), *want);
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
        crate::ws::outbound::TestQueue,
        RoomId,
    ) {
        listener_with(None).await
    }

    /// A hub with one connection, in one room, and the feed of its bus.
    async fn listener_with(
        refill: Option<Arc<dyn Refill>>,
    ) -> (
        Hub,
        mpsc::UnboundedSender<Event>,
        crate::ws::outbound::TestQueue,
        RoomId,
    ) {
        let (feed, rx) = mpsc::unbounded_channel();
        let hub = Hub::start(Box::new(Feed(rx)), refill);
        let (out, queue) = crate::ws::outbound::bare();
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

    /// The hub listens to a user's topic while they hold a connection here,
    /// and to a room's while any member connected here is in it, through
    /// joins, leaves and a second device.
    #[tokio::test]
    async fn the_hub_listens_to_the_rooms_and_users_it_has_someone_for() {
        let (feed, rx) = mpsc::unbounded_channel();
        let listened = Arc::new(Listened::default());
        let hub = Hub::start(Box::new(Narrowing(rx, listened.clone())), None);
        let (alice, bob) = (UserId(Uuid::from_u128(1)), UserId(Uuid::from_u128(2)));
        let (lobby, later) = (RoomId(Uuid::from_u128(7)), RoomId(Uuid::from_u128(8)));
        let connect = |user| {
            let (out, queue) = crate::ws::outbound::bare();
            let id = hub.next_id();
            hub.connect(Conn {
                id,
                user,
                session: SessionId(Uuid::from_u128(3)),
                out,
                closer: Arc::default(),
            });
            (id, queue)
        };
        let (a1, _qa1) = connect(alice);
        hub.set_rooms(alice, vec![lobby]);
        let (a2, _qa2) = connect(alice);
        let (b1, _qb1) = connect(bob);
        hub.set_rooms(bob, vec![lobby]);
        settled(
            &listened,
            &HashSet::from([Topic::User(alice), Topic::User(bob), Topic::Room(lobby)]),
        )
        .await;

        feed.send(Event::MemberJoined {
            membership: chat_domain::Membership {
                room_id: later,
                user_id: bob,
                role: Role::Member,
                joined_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            },
            user: chat_domain::User {
                id: bob,
                username: chat_domain::Username::parse("bob").unwrap(),
                email: chat_domain::Email::parse("bob@example.com").unwrap(),
                display_name: chat_domain::DisplayName::parse("Bob").unwrap(),
                avatar: None,
                created_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
                last_seen_at: None,
            },
            version: 2,
        })
        .unwrap();
        settled(
            &listened,
            &HashSet::from([
                Topic::User(alice),
                Topic::User(bob),
                Topic::Room(lobby),
                Topic::Room(later),
            ]),
        )
        .await;

        // Bob leaves `later`; Alice closes one of two devices: she stays.
        feed.send(Event::MemberLeft {
            room_id: later,
            user_id: bob,
            version: 3,
        })
        .unwrap();
        hub.disconnect(alice, a1);
        settled(
            &listened,
            &HashSet::from([Topic::User(alice), Topic::User(bob), Topic::Room(lobby)]),
        )
        .await;
        // Bob goes: the lobby still has Alice. Alice goes: nothing is left.
        hub.disconnect(bob, b1);
        settled(
            &listened,
            &HashSet::from([Topic::User(alice), Topic::Room(lobby)]),
        )
        .await;
        hub.disconnect(alice, a2);
        settled(&listened, &HashSet::new()).await;
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

    /// A store that gives back some of a gap's versions, and records what
    /// it was asked.
    struct Store {
        has: Vec<u64>,
        asked: Mutex<Vec<(u64, u64)>>,
    }

    #[async_trait::async_trait]
    impl Refill for Store {
        async fn missed(&self, room: RoomId, since: u64, upto: u64, _: u64) -> Vec<Event> {
            self.asked.lock().unwrap().push((since, upto));
            self.has
                .iter()
                .filter(|v| (since + 1..=upto).contains(*v))
                .map(|v| counted(room, *v))
                .collect()
        }
    }

    async fn refilled_listener(
        has: Vec<u64>,
    ) -> (
        Hub,
        Arc<Store>,
        mpsc::UnboundedSender<Event>,
        crate::ws::outbound::TestQueue,
        RoomId,
    ) {
        let store = Arc::new(Store {
            has,
            asked: Mutex::default(),
        });
        let (hub, feed, queue, room) = listener_with(Some(store.clone())).await;
        (hub, store, feed, queue, room)
    }

    #[tokio::test]
    async fn a_gap_is_filled_from_the_store_in_order() {
        let (hub, store, feed, mut queue, room) = refilled_listener(vec![2, 3, 4]).await;
        for v in [1, 5, 6] {
            feed.send(counted(room, v)).unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..6 {
            got.push(version_of(&queue.recv().await.unwrap()));
        }
        assert_eq!(got, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(*store.asked.lock().unwrap(), vec![(1, 6)]);
        assert_eq!(hub.stats.refilled.load(Ordering::Relaxed), 3);
        assert_eq!(hub.stats.gaps.load(Ordering::Relaxed), 0);
    }

    /// Several holes are one question to the store, and one wait.
    #[tokio::test]
    async fn every_hole_up_to_the_last_event_is_asked_at_once() {
        let (hub, store, feed, mut queue, room) = refilled_listener(vec![2, 6]).await;
        for v in [1, 3, 5, 7] {
            feed.send(counted(room, v)).unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..6 {
            got.push(version_of(&queue.recv().await.unwrap()));
        }
        assert_eq!(got, vec![1, 2, 3, 5, 6, 7], "4 is no message: skipped");
        assert_eq!(*store.asked.lock().unwrap(), vec![(1, 7)]);
        assert_eq!(hub.stats.gaps.load(Ordering::Relaxed), 1);
        feed.send(counted(room, 8)).unwrap();
        assert_eq!(version_of(&queue.recv().await.unwrap()), 8);
    }

    /// Events of a room nobody here hears are not ordered: when someone
    /// here comes to hear it later, its next event goes out at once rather
    /// than wait for versions this node was never sent.
    #[tokio::test]
    async fn a_room_heard_late_does_not_wait_for_what_it_missed() {
        let (feed, rx) = mpsc::unbounded_channel();
        let hub = Hub::start(Box::new(Feed(rx)), None);
        let room = RoomId(Uuid::from_u128(7));
        let typing = |room| Event::Typing {
            room_id: room,
            user: chat_domain::SenderInfo {
                id: UserId(Uuid::from_u128(5)),
                username: chat_domain::Username::parse("carol").unwrap(),
                display_name: "Carol".to_owned(),
            },
        };
        let connect = |user: UserId, rooms: Vec<RoomId>| {
            let (out, queue) = crate::ws::outbound::bare();
            hub.connect(Conn {
                id: hub.next_id(),
                user,
                session: SessionId(Uuid::from_u128(2)),
                out,
                closer: Arc::default(),
            });
            hub.set_rooms(user, rooms);
            queue
        };
        // Someone in another room, to know when the hub has handled what
        // was fed before.
        let elsewhere = RoomId(Uuid::from_u128(8));
        let mut watcher = connect(UserId(Uuid::from_u128(9)), vec![elsewhere]);
        // Before anyone here is in it: the room's early changes.
        for v in [3, 5] {
            feed.send(counted(room, v)).unwrap();
        }
        feed.send(typing(elsewhere)).unwrap();
        watcher.recv().await.unwrap();
        let mut queue = connect(UserId(Uuid::from_u128(1)), vec![room]);
        feed.send(counted(room, 10)).unwrap();
        // Unversioned, so never held: had 10 been held, this came first.
        feed.send(typing(room)).unwrap();
        assert_eq!(version_of(&queue.recv().await.unwrap()), 10);
        let typing: serde_json::Value = serde_json::from_str(&queue.recv().await.unwrap()).unwrap();
        assert_eq!(typing["type"], "typing");
        assert_eq!(hub.stats.gaps.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn what_the_store_cannot_give_back_is_counted_and_skipped() {
        // Version 3 is not a message: the store cannot tell it again.
        let (hub, _store, feed, mut queue, room) = refilled_listener(vec![2]).await;
        for v in [1, 4] {
            feed.send(counted(room, v)).unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(version_of(&queue.recv().await.unwrap()));
        }
        assert_eq!(got, vec![1, 2, 4]);
        assert_eq!(hub.stats.gaps.load(Ordering::Relaxed), 1);
        // The room goes on from after the gap.
        feed.send(counted(room, 5)).unwrap();
        assert_eq!(version_of(&queue.recv().await.unwrap()), 5);
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
