//! Group commit: every send of this process goes through a few writer tasks
//! ("lanes", a room always to the same one), and each writer persists
//! whatever is queued when it is free in ONE transaction: one statement
//! locks the batch's rooms, one checks every send, one `UPDATE` allocates
//! each room's k seqs and versions, one multi-row `INSERT` writes the
//! messages, and one commit — one WAL flush — makes them durable together.
//!
//! There is no timer: an idle writer takes a lone send at once, and under
//! load sends pile up while the writer waits for the disk, so batches form
//! by themselves. The queue and the batch are bounded; a full queue fails
//! the send at once with `Unavailable` (503 with `Retry-After`).
//!
//! The promises of [`chat_ports::MessageRepo::append`] hold per send:
//! - each send is decided on its own under the room locks (room, member,
//!   block, replay, id, attachment, kind, reply): a refused send is
//!   refused alone and the others commit;
//! - seqs are gapless in commit order, also across processes: the rooms'
//!   row locks are taken in id order before anything is read, as every
//!   other change of a room takes that lock;
//! - an answer is given only after the commit. When the transaction fails
//!   on a database error that is not the database going away, the batch is
//!   retried one send at a time so that only the culprit fails; when the
//!   database goes away, every send of the batch fails as `Unavailable`,
//!   none is acknowledged (a retry with the same `client_msg_id` is safe);
//! - two sends of one batch with the same `client_msg_id` (or message id)
//!   are never decided together: the later one waits for the next batch,
//!   where it sees the first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat_domain::attachment::{kind_fits, kind_for};
use chat_domain::{Message, MessageId, MessageKind, Timestamp};
use chat_ports::{AppendError, Appended, NewMessage, SendRefused, StoreError};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::deadpool::Pool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::error::{TxError, breaks_client_msg_id};
use crate::messages::{by_client_id, find_in};
use crate::prepared::Prepared;
use crate::rows::{AttachmentRow, MessageRow, SenderRow, message_kind_str, to_message};
use crate::{Conn, Mode, run_on};

/// How the writers are sized.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Writer tasks, each with its own queue and at most one transaction in
    /// flight. A room always goes to the same lane.
    pub lanes: usize,
    /// Sends in one transaction at most.
    pub max_batch: usize,
    /// Sends waiting per lane at most; past it a send fails at once.
    pub queue: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            // One measured best on two cores (docs/PERFORMANCE.md): bigger
            // batches beat two transactions in flight.
            lanes: 1,
            max_batch: 256,
            queue: 4096,
        }
    }
}

/// What the writers have done, for metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Sends those transactions decided (stored, replayed or refused).
    pub sends: AtomicU64,
    /// Sends refused at once because their lane's queue was full.
    pub rejected: AtomicU64,
}

type Answer = Result<Appended, AppendError>;

struct Job {
    new: NewMessage,
    done: oneshot::Sender<Answer>,
}

/// The sending half: hands a send to its room's lane and waits for the
/// commit.
pub(crate) struct Writers {
    lanes: Vec<mpsc::Sender<Job>>,
    hasher: std::collections::hash_map::RandomState,
    stats: Arc<WriterStats>,
}

impl Writers {
    /// Starts the writer tasks on the current tokio runtime. They stop when
    /// the last `Writers` is dropped, after answering what was queued.
    pub(crate) fn start(pool: Pool<Conn>, deadline: Duration, config: WriterConfig) -> Self {
        let stats = Arc::new(WriterStats::default());
        let lanes = (0..config.lanes.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(config.queue.max(1));
                tokio::spawn(lane(
                    pool.clone(),
                    deadline,
                    config.max_batch.max(1),
                    rx,
                    stats.clone(),
                ));
                tx
            })
            .collect();
        Self {
            lanes,
            hasher: std::collections::hash_map::RandomState::new(),
            stats,
        }
    }

    pub(crate) fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Sends waiting in the lanes' queues, not yet taken into a transaction.
    pub(crate) fn queued(&self) -> usize {
        self.lanes
            .iter()
            .map(|lane| lane.max_capacity() - lane.capacity())
            .sum()
    }

    /// Queues the send on its room's lane and waits for its answer.
    pub(crate) async fn append(&self, new: &NewMessage) -> Answer {
        let hash = self.hasher.hash_one(new.room_id.0);
        let lane = &self.lanes[(hash % self.lanes.len() as u64) as usize];
        let (done, answer) = oneshot::channel();
        let job = Job {
            new: new.clone(),
            done,
        };
        if let Err(e) = lane.try_send(job) {
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => {
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                    StoreError::unavailable("the send queue is full")
                }
                mpsc::error::TrySendError::Closed(_) => {
                    StoreError::unavailable("the message writer has stopped")
                }
            }
            .into());
        }
        answer.await.map_err(|_| {
            AppendError::Store(StoreError::unavailable(
                "the message writer stopped before answering",
            ))
        })?
    }
}

/// One lane: take whatever is queued (at least one send, at most a batch),
/// commit it, answer, repeat.
async fn lane(
    pool: Pool<Conn>,
    deadline: Duration,
    max_batch: usize,
    mut rx: mpsc::Receiver<Job>,
    stats: Arc<WriterStats>,
) {
    let mut jobs = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let mut pending = std::mem::take(&mut jobs);
        // Sends that must not share a batch with an earlier one go next.
        while !pending.is_empty() {
            let (now, later) = split_repeats(pending);
            commit(&pool, deadline, now, &stats).await;
            pending = later;
        }
    }
}

/// Splits off every send that repeats the `client_msg_id` (per room and
/// sender) or the message id of an earlier send in the list.
fn split_repeats(jobs: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
    let mut keys = HashSet::new();
    let mut ids = HashSet::new();
    let (mut now, mut later) = (Vec::with_capacity(jobs.len()), Vec::new());
    for job in jobs {
        let n = &job.new;
        let key_free = n
            .client_msg_id
            .as_ref()
            .is_none_or(|k| keys.insert((n.room_id, n.sender, k.as_str().to_owned())));
        if key_free && ids.insert(n.id) {
            now.push(job);
        } else {
            later.push(job);
        }
    }
    (now, later)
}

/// Commits one batch and answers each of its sends.
async fn commit(pool: &Pool<Conn>, deadline: Duration, jobs: Vec<Job>, stats: &WriterStats) {
    // The sends go to the transaction's task; their answers stay here.
    let (news, dones): (Vec<NewMessage>, Vec<oneshot::Sender<Answer>>) =
        jobs.into_iter().map(|j| (j.new, j.done)).unzip();
    let news = Arc::new(news);
    let batch = news.clone();
    let result = run_on(pool, deadline, Mode::Write, move |c| {
        Box::pin(async move { decide_and_write(c, &batch).await })
    })
    .await;
    match result {
        Ok(answers) => {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats.sends.fetch_add(dones.len() as u64, Ordering::Relaxed);
            for (done, answer) in dones.into_iter().zip(answers) {
                let _ = done.send(answer.map_err(AppendError::from));
            }
        }
        Err(e) => {
            // Only a batch that failed needs its sends back (a task that
            // timed out may still hold them: then a copy).
            let news = Arc::try_unwrap(news).unwrap_or_else(|shared| (*shared).clone());
            let lone = news.len() == 1;
            // A lone send that broke the idempotency index raced an
            // identical one (another process's) that is committed now.
            let raced = lone && breaks_client_msg_id(&e);
            let e = e.into_store();
            if lone || matches!(e, StoreError::Unavailable(_)) {
                // Nothing of the batch is known to be durable: nobody gets
                // an ack.
                for (new, done) in news.iter().zip(dones) {
                    let answer = if raced {
                        replayed(pool, deadline, new).await
                    } else {
                        Err(AppendError::Store(same_error(&e)))
                    };
                    let _ = done.send(answer);
                }
            } else {
                // Some send broke a rule the checks did not foresee: find it
                // by committing one at a time.
                tracing::warn!(error = %e, sends = news.len(), "a send batch failed; retrying its sends one by one");
                for (new, done) in news.into_iter().zip(dones) {
                    Box::pin(commit(pool, deadline, vec![Job { new, done }], stats)).await;
                }
            }
        }
    }
}

/// The answer to a lone send that broke the `client_msg_id` index: the
/// message that won the race.
async fn replayed(pool: &Pool<Conn>, deadline: Duration, new: &NewMessage) -> Answer {
    let Some(key) = new.client_msg_id.as_ref().map(|k| k.as_str().to_owned()) else {
        return Err(StoreError::other("a send without a key broke a unique rule").into());
    };
    let (room, sender) = (new.room_id, new.sender);
    let first = run_on(pool, deadline, Mode::Read, move |c| {
        Box::pin(async move { by_client_id(c, room, sender, &key).await })
    })
    .await
    .map_err(TxError::into_store)?;
    first
        .map(Appended::Existing)
        .ok_or_else(|| StoreError::other("an idempotent send lost its first message").into())
}

/// A copy of a batch's error for each of its sends (the source is not
/// `Clone`, so its text stands in for it).
pub(crate) fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict(c) => StoreError::Conflict(*c),
        StoreError::InvalidCursor => StoreError::InvalidCursor,
        StoreError::Unavailable(s) => StoreError::unavailable(s.to_string()),
        StoreError::Other(s) => StoreError::other(s.to_string()),
    }
}

// ---------------------------------------------------------------- the batch

/// A room of the batch, locked.
#[derive(QueryableByName)]
struct LockedRoom {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Bool)]
    blocked: bool,
}

/// What the database says about one send, under the locks.
#[derive(QueryableByName)]
struct Facts {
    #[diesel(sql_type = BigInt)]
    i: i64,
    #[diesel(sql_type = Bool)]
    member: bool,
    #[diesel(sql_type = Nullable<Text>)]
    username: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    display_name: Option<String>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    existing: Option<Uuid>,
    #[diesel(sql_type = Bool)]
    id_taken: bool,
    #[diesel(sql_type = Bool)]
    reply_ok: bool,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    a_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    a_uploader: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    a_filename: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    a_content_type: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    a_size: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    a_created_at: Option<Timestamp>,
}

/// A room's new `last_seq` and `version` after the batch.
#[derive(QueryableByName)]
struct Bumped {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = BigInt)]
    last_seq: i64,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

// Every lookup below is a `LATERAL` subquery with `LIMIT 1`: PostgreSQL
// then always runs it as a lookup per send (an index scan), never as a
// hash of the whole table, whatever the statistics said when the statement
// was planned (a server started on an empty table would otherwise keep a
// plan that scans every message of every batch).

/// Locks the batch's rooms, given in id order (so that two batches never
/// wait on each other in a cycle), and reads what a send needs of them.
pub(crate) const LOCK_ROOMS: &str = "\
SELECT r.id, r.kind, r.blocked \
  FROM unnest($1::uuid[]) WITH ORDINALITY AS q(id, n) \
 CROSS JOIN LATERAL ( \
       SELECT r.id, r.kind, \
              COALESCE(r.direct_user_a <> r.direct_user_b AND EXISTS ( \
                  SELECT 1 FROM blocks b \
                   WHERE (b.blocker_id = r.direct_user_a AND b.blocked_id = r.direct_user_b) \
                      OR (b.blocker_id = r.direct_user_b AND b.blocked_id = r.direct_user_a)), \
                  false) AS blocked \
         FROM rooms r WHERE r.id = q.id LIMIT 1 FOR NO KEY UPDATE) r \
 ORDER BY q.n";

/// Everything each send is decided on, read after the locks (read
/// committed: each statement sees what committed before it began).
pub(crate) const FACTS: &str = "\
SELECT s.i, \
       (m.member IS NOT NULL) AS member, \
       u.username, u.display_name, \
       e.id AS existing, \
       (x.taken IS NOT NULL) AS id_taken, \
       (s.reply IS NULL OR p.found IS NOT NULL) AS reply_ok, \
       a.id AS a_id, a.uploader_id AS a_uploader, a.filename AS a_filename, \
       a.content_type AS a_content_type, a.size AS a_size, a.created_at AS a_created_at \
  FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[]) \
           WITH ORDINALITY AS s(id, room, sender, reply, attachment, key, i) \
  LEFT JOIN LATERAL (SELECT true AS member FROM memberships \
                      WHERE room_id = s.room AND user_id = s.sender LIMIT 1) m ON true \
  LEFT JOIN LATERAL (SELECT username, display_name FROM users \
                      WHERE id = s.sender LIMIT 1) u ON true \
  LEFT JOIN LATERAL (SELECT id FROM messages \
                      WHERE room_id = s.room AND sender_id = s.sender AND client_msg_id = s.key \
                      LIMIT 1) e ON true \
  LEFT JOIN LATERAL (SELECT true AS taken FROM messages WHERE id = s.id LIMIT 1) x ON true \
  LEFT JOIN LATERAL (SELECT true AS found FROM messages \
                      WHERE room_id = s.room AND id = s.reply LIMIT 1) p ON true \
  LEFT JOIN LATERAL (SELECT id, uploader_id, filename, content_type, size, created_at \
                       FROM attachments WHERE id = s.attachment LIMIT 1) a ON true";

/// Allocates each room's k seqs and versions in one statement.
const BUMP: &str = "\
UPDATE rooms r \
   SET last_seq = r.last_seq + v.k, version = r.version + v.k, last_activity_at = v.at \
  FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[]) AS v(id, k, at) \
 WHERE r.id = v.id \
RETURNING r.id, r.last_seq, r.version";

/// Every accepted message in one statement.
const INSERT: &str = "\
INSERT INTO messages (id, room_id, seq, sender_id, kind, content, attachment_id, reply_to_id, \
                      client_msg_id, created_at, version) \
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::text[], \
                     $7::uuid[], $8::uuid[], $9::text[], $10::timestamptz[], $11::bigint[])";

/// One accepted send on its way to the insert.
struct Accepted {
    at: usize,
    kind: MessageKind,
    sender: SenderRow,
    attachment: Option<AttachmentRow>,
}

/// How one send was decided inside the transaction.
enum Decided {
    Refused(SendRefused),
    Replay(Uuid),
    Accepted(Accepted),
}

/// The batch's transaction: decide every send, write the accepted ones,
/// read back the replays. Answers in the batch's order.
async fn decide_and_write(
    c: &mut Conn,
    batch: &[NewMessage],
) -> Result<Vec<Result<Appended, SendRefused>>, TxError> {
    // In id order: the order the locks are taken in.
    let room_ids: Vec<Uuid> = {
        let set: std::collections::BTreeSet<Uuid> = batch.iter().map(|n| n.room_id.0).collect();
        set.into_iter().collect()
    };
    let rooms: HashMap<Uuid, LockedRoom> = Prepared::new(LOCK_ROOMS)
        .bind::<Array<SqlUuid>, _>(room_ids)
        .load::<LockedRoom>(c)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();

    let facts: Vec<Facts> = Prepared::new(FACTS)
        .bind::<Array<SqlUuid>, _>(batch.iter().map(|n| n.id.0).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(batch.iter().map(|n| n.room_id.0).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(batch.iter().map(|n| n.sender.0).collect::<Vec<_>>())
        .bind::<Array<Nullable<SqlUuid>>, _>(
            batch
                .iter()
                .map(|n| n.reply_to.map(|m| m.0))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<SqlUuid>>, _>(
            batch
                .iter()
                .map(|n| n.attachment.map(|a| a.0))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            batch
                .iter()
                .map(|n| n.client_msg_id.as_ref().map(|k| k.as_str().to_owned()))
                .collect::<Vec<_>>(),
        )
        .load(c)
        .await?;
    let mut by_index: Vec<Option<Facts>> = (0..batch.len()).map(|_| None).collect();
    for f in facts {
        let slot = usize::try_from(f.i - 1)
            .ok()
            .and_then(|i| by_index.get_mut(i))
            .ok_or_else(|| StoreError::other("a send's facts came back out of range"))?;
        *slot = Some(f);
    }

    let mut decided = Vec::with_capacity(batch.len());
    for (at, (new, facts)) in batch.iter().zip(by_index).enumerate() {
        let facts = facts.ok_or_else(|| StoreError::other("a send's facts went missing"))?;
        decided.push(decide(at, new, rooms.get(&new.room_id.0), facts));
    }

    // Each room's accepted sends, in batch order: seqs in that order.
    let mut per_room: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for d in &decided {
        if let Decided::Accepted(a) = d {
            per_room
                .entry(batch[a.at].room_id.0)
                .or_default()
                .push(a.at);
        }
    }
    let mut numbered: HashMap<usize, (i64, i64)> = HashMap::new();
    if !per_room.is_empty() {
        let ids: Vec<Uuid> = per_room.keys().copied().collect();
        let ks: Vec<i64> = per_room.values().map(|v| v.len() as i64).collect();
        let ats: Vec<Timestamp> = per_room
            .values()
            .map(|v| batch[v[v.len() - 1]].created_at)
            .collect();
        let bumped: Vec<Bumped> = Prepared::new(BUMP)
            .bind::<Array<SqlUuid>, _>(ids)
            .bind::<Array<BigInt>, _>(ks)
            .bind::<Array<Timestamptz>, _>(ats)
            .load(c)
            .await?;
        for b in bumped {
            let sends = per_room
                .get(&b.id)
                .ok_or_else(|| StoreError::other("a room bumped that was not asked for"))?;
            let k = sends.len() as i64;
            for (j, at) in sends.iter().enumerate() {
                let j = j as i64;
                numbered.insert(*at, (b.last_seq - k + 1 + j, b.version - k + 1 + j));
            }
        }
        insert(c, batch, &decided, &numbered).await?;
    }

    let mut answers = Vec::with_capacity(batch.len());
    for (new, d) in batch.iter().zip(decided) {
        answers.push(match d {
            Decided::Refused(why) => Err(why),
            Decided::Replay(first) => {
                let message = find_in(c, MessageId(first), new.sender)
                    .await?
                    .ok_or_else(|| StoreError::other("a replayed message vanished"))?;
                Ok(Appended::Existing(message))
            }
            Decided::Accepted(a) => {
                let &(seq, version) = numbered
                    .get(&a.at)
                    .ok_or_else(|| StoreError::other("an accepted send got no seq"))?;
                Ok(Appended::New(stored(new, a, seq, version)?))
            }
        });
    }
    Ok(answers)
}

/// Decides one send on what the database said, in the port's order.
fn decide(at: usize, new: &NewMessage, room: Option<&LockedRoom>, f: Facts) -> Decided {
    use Decided::Refused;
    let Some(room) = room else {
        return Refused(SendRefused::NoRoom);
    };
    let (Some(username), Some(display_name)) = (f.username, f.display_name) else {
        return Refused(not_a_member(room));
    };
    if !f.member {
        return Refused(not_a_member(room));
    }
    if room.blocked {
        return Refused(SendRefused::Blocked);
    }
    if let Some(first) = f.existing {
        return Decided::Replay(first);
    }
    if f.id_taken {
        return Refused(SendRefused::IdTaken);
    }
    let attachment = match (new.attachment, f.a_id) {
        (None, _) => None,
        (Some(_), Some(id)) if f.a_uploader == Some(new.sender.0) => Some(AttachmentRow {
            id,
            uploader_id: new.sender.0,
            filename: f.a_filename.unwrap_or_default(),
            content_type: f.a_content_type.unwrap_or_default(),
            size: f.a_size.unwrap_or_default(),
            created_at: f.a_created_at.unwrap_or(new.created_at),
        }),
        (Some(_), _) => return Refused(SendRefused::NoSuchAttachment),
    };
    let kind = match (&attachment, new.kind) {
        (None, kind) => kind.unwrap_or(MessageKind::Text),
        (Some(a), None) => kind_for(&a.content_type),
        (Some(a), Some(kind)) if kind_fits(kind, &a.content_type) => kind,
        (Some(a), Some(kind)) => {
            return Refused(SendRefused::KindMismatch {
                kind,
                content_type: a.content_type.clone(),
            });
        }
    };
    if !f.reply_ok {
        return Refused(SendRefused::NoSuchReply);
    }
    Decided::Accepted(Accepted {
        at,
        kind,
        sender: SenderRow {
            id: new.sender.0,
            username,
            display_name,
        },
        attachment,
    })
}

fn not_a_member(room: &LockedRoom) -> SendRefused {
    match crate::rows::parse_room_kind(&room.kind) {
        Ok(room_kind) => SendRefused::NotAMember { room_kind },
        // A corrupt kind reads as the most private one: say nothing.
        Err(_) => SendRefused::NoRoom,
    }
}

/// Writes the accepted sends in one statement.
async fn insert(
    c: &mut Conn,
    batch: &[NewMessage],
    decided: &[Decided],
    numbered: &HashMap<usize, (i64, i64)>,
) -> Result<(), TxError> {
    let accepted: Vec<&Accepted> = decided
        .iter()
        .filter_map(|d| match d {
            Decided::Accepted(a) => Some(a),
            _ => None,
        })
        .collect();
    let n = |a: &Accepted| &batch[a.at];
    let seq_version = |a: &Accepted| numbered.get(&a.at).copied().unwrap_or((0, 0));
    Prepared::new(INSERT)
        .bind::<Array<SqlUuid>, _>(accepted.iter().map(|a| n(a).id.0).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(accepted.iter().map(|a| n(a).room_id.0).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(
            accepted
                .iter()
                .map(|a| seq_version(a).0)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<SqlUuid>, _>(accepted.iter().map(|a| n(a).sender.0).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            accepted
                .iter()
                .map(|a| message_kind_str(a.kind))
                .collect::<Vec<&'static str>>(),
        )
        .bind::<Array<Text>, _>(
            accepted
                .iter()
                .map(|a| n(a).content.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<SqlUuid>>, _>(
            accepted
                .iter()
                .map(|a| a.attachment.as_ref().map(|f| f.id))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<SqlUuid>>, _>(
            accepted
                .iter()
                .map(|a| n(a).reply_to.map(|m| m.0))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            accepted
                .iter()
                .map(|a| n(a).client_msg_id.as_ref().map(|k| k.as_str().to_owned()))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Timestamptz>, _>(accepted.iter().map(|a| n(a).created_at).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(
            accepted
                .iter()
                .map(|a| seq_version(a).1)
                .collect::<Vec<_>>(),
        )
        .execute(c)
        .await?;
    Ok(())
}

/// The message as stored, as its sender sees it (no reactions yet).
fn stored(new: &NewMessage, a: Accepted, seq: i64, version: i64) -> Result<Message, StoreError> {
    let row = MessageRow {
        id: new.id.0,
        room_id: new.room_id.0,
        seq,
        kind: message_kind_str(a.kind).to_owned(),
        content: new.content.as_str().to_owned(),
        reply_to_id: new.reply_to.map(|m| m.0),
        created_at: new.created_at,
        edited_at: None,
        deleted: false,
        version,
    };
    to_message((row, a.sender, a.attachment), Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_domain::{ClientMsgId, MessageContent, RoomId, UserId};

    fn job(room: u128, sender: u128, key: Option<&str>) -> Job {
        let (done, _) = oneshot::channel();
        Job {
            new: NewMessage {
                id: MessageId(Uuid::now_v7()),
                room_id: RoomId(Uuid::from_u128(room)),
                sender: UserId(Uuid::from_u128(sender)),
                kind: None,
                content: MessageContent::parse("hi", false).unwrap(),
                attachment: None,
                reply_to: None,
                client_msg_id: key.map(|k| ClientMsgId::parse(k).unwrap()),
                created_at: chrono::Utc::now(),
            },
            done,
        }
    }

    #[test]
    fn a_repeated_key_waits_for_the_next_batch() {
        let jobs = vec![
            job(1, 1, Some("a")),
            job(1, 1, Some("a")),
            job(1, 2, Some("a")), // another sender: its own key
            job(2, 1, Some("a")), // another room: its own key
            job(1, 1, None),
            job(1, 1, None),
            job(1, 1, Some("a")),
        ];
        let (now, later) = split_repeats(jobs);
        assert_eq!(now.len(), 5);
        assert_eq!(later.len(), 2);
        let (again, last) = split_repeats(later);
        assert_eq!((again.len(), last.len()), (1, 1));
    }
}
