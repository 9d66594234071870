//! Read and delivered markers and last-seen times, written in batches.
//!
//! These are the writes every reader and every connection makes (a `read`
//! frame per message read, a last-seen time per disconnect): one statement
//! and one commit each would crowd out the sends. Like the sends (see the
//! `writer` module), they go through one writer task that commits whatever
//! is queued in one transaction, with no timer: alone when idle, together
//! under load. Each call still gets its own answer after the commit:
//! whether its marker moved, or `NotFound` for a room or user that does not
//! exist (the others in the batch are unaffected).
//!
//! In a batch, one user's marks of one room are applied in the order they
//! came, so "moved" means what it would have meant one call at a time; the
//! row is written once, with the final values.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chat_domain::Timestamp;
use chat_ports::StoreError;
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::deadpool::Pool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::error::TxError;
use crate::prepared::Prepared;
use crate::writer::same_error;
use crate::{Conn, Mode, run_on};

/// One write.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mark {
    /// The read marker (and with it the delivered one) forward to `seq`.
    Read { room: Uuid, user: Uuid, seq: i64 },
    /// The delivered marker forward to `seq`.
    Delivered { room: Uuid, user: Uuid, seq: i64 },
    /// The user was last seen at `at`.
    Seen { user: Uuid, at: Timestamp },
}

type Answer = Result<bool, StoreError>;

struct Job {
    mark: Mark,
    done: oneshot::Sender<Answer>,
}

/// The sending half of the marker writer.
pub(crate) struct Marks {
    tx: mpsc::Sender<Job>,
}

/// Marks in one transaction at most.
const MAX_BATCH: usize = 512;
/// Marks waiting at most; past it a mark fails at once as `Unavailable`.
const QUEUE: usize = 16_384;

impl Marks {
    /// Starts the writer task on the current tokio runtime.
    pub(crate) fn start(pool: Pool<Conn>, deadline: Duration) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(lane(pool, deadline, rx));
        Self { tx }
    }

    /// Writes the mark and says whether it moved anything (`true` for a
    /// last-seen time written).
    pub(crate) async fn mark(&self, mark: Mark) -> Answer {
        let (done, answer) = oneshot::channel();
        self.tx.try_send(Job { mark, done }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                StoreError::unavailable("the marker queue is full")
            }
            mpsc::error::TrySendError::Closed(_) => {
                StoreError::unavailable("the marker writer has stopped")
            }
        })?;
        answer
            .await
            .map_err(|_| StoreError::unavailable("the marker writer stopped before answering"))?
    }
}

async fn lane(pool: Pool<Conn>, deadline: Duration, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        commit(&pool, deadline, std::mem::take(&mut jobs)).await;
    }
}

/// Commits one batch and answers each mark; a batch that fails on anything
/// but the database going away is retried one mark at a time, so that only
/// the culprit fails.
async fn commit(pool: &Pool<Conn>, deadline: Duration, jobs: Vec<Job>) {
    let marks: Arc<Vec<Mark>> = Arc::new(jobs.iter().map(|j| j.mark).collect());
    let batch = marks.clone();
    let result = run_on(pool, deadline, Mode::Write, move |c| {
        Box::pin(async move { write(c, &batch).await })
    })
    .await;
    match result {
        Ok(answers) => {
            for (job, answer) in jobs.into_iter().zip(answers) {
                let _ = job.done.send(answer);
            }
        }
        Err(e) => {
            let e = e.into_store();
            if jobs.len() == 1 || matches!(e, StoreError::Unavailable(_)) {
                for job in jobs {
                    let _ = job.done.send(Err(same_error(&e)));
                }
            } else {
                for job in jobs {
                    Box::pin(commit(pool, deadline, vec![job])).await;
                }
            }
        }
    }
}

/// A member's markers as they are, locked, and whether the room exists.
#[derive(QueryableByName)]
struct Now {
    #[diesel(sql_type = Bool)]
    room_exists: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_read_seq: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_delivered_seq: Option<i64>,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// The batch's (room, user) pairs, given in order: do the rooms exist, and
/// where are the markers now (locked, in the pairs' order).
const MARKERS_NOW: &str = "\
SELECT (r.id IS NOT NULL) AS room_exists, m.last_read_seq, m.last_delivered_seq \
  FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS q(room, usr, n) \
  LEFT JOIN LATERAL (SELECT id FROM rooms WHERE id = q.room LIMIT 1) r ON true \
  LEFT JOIN LATERAL (SELECT last_read_seq, last_delivered_seq FROM read_markers \
                      WHERE room_id = q.room AND user_id = q.usr LIMIT 1 FOR UPDATE) m ON true \
 ORDER BY q.n";

/// The markers that moved, each pair once. Never back, also against a
/// concurrent writer of the same pair (another node).
const UPSERT: &str = "\
INSERT INTO read_markers AS m (room_id, user_id, last_read_seq, last_delivered_seq) \
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[]) \
    ON CONFLICT (room_id, user_id) DO UPDATE \
   SET last_read_seq = GREATEST(m.last_read_seq, EXCLUDED.last_read_seq), \
       last_delivered_seq = GREATEST(m.last_delivered_seq, EXCLUDED.last_delivered_seq)";

/// Last-seen times, each user once; the users that exist come back.
const SEEN: &str = "\
UPDATE users u SET last_seen_at = v.at \
  FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, at) \
 WHERE u.id = v.id \
RETURNING u.id";

/// Where a pair's markers stand while the batch is applied.
struct Pair {
    room_exists: bool,
    read: i64,
    delivered: i64,
    moved: bool,
}

async fn write(c: &mut Conn, marks: &[Mark]) -> Result<Vec<Answer>, TxError> {
    // Pairs in (room, user) order: the order their rows are locked in.
    let mut pairs: BTreeMap<(Uuid, Uuid), Option<Pair>> = BTreeMap::new();
    let mut seen: HashMap<Uuid, Timestamp> = HashMap::new();
    for m in marks {
        match *m {
            Mark::Read { room, user, .. } | Mark::Delivered { room, user, .. } => {
                pairs.insert((room, user), None);
            }
            Mark::Seen { user, at } => {
                seen.insert(user, at);
            }
        }
    }

    if !pairs.is_empty() {
        let (rooms, users): (Vec<Uuid>, Vec<Uuid>) = pairs.keys().copied().unzip();
        let now: Vec<Now> = Prepared::new(MARKERS_NOW)
            .bind::<Array<SqlUuid>, _>(rooms)
            .bind::<Array<SqlUuid>, _>(users)
            .load(c)
            .await?;
        if now.len() != pairs.len() {
            return Err(StoreError::other("markers came back short").into());
        }
        for (slot, n) in pairs.values_mut().zip(now) {
            *slot = Some(Pair {
                room_exists: n.room_exists,
                read: n.last_read_seq.unwrap_or(0),
                delivered: n.last_delivered_seq.unwrap_or(0),
                moved: false,
            });
        }
    }

    let mut answers = Vec::with_capacity(marks.len());
    for m in marks {
        answers.push(match *m {
            Mark::Read { room, user, seq } | Mark::Delivered { room, user, seq } => {
                let read = matches!(m, Mark::Read { .. });
                match pairs.get_mut(&(room, user)).and_then(Option::as_mut) {
                    Some(p) if p.room_exists => {
                        let moved = if read {
                            seq > p.read
                        } else {
                            seq > p.delivered
                        };
                        if read {
                            p.read = p.read.max(seq);
                        }
                        p.delivered = p.delivered.max(seq);
                        p.moved |= moved;
                        Ok(moved)
                    }
                    _ => Err(StoreError::NotFound),
                }
            }
            // Answered below, once the users are written.
            Mark::Seen { .. } => Ok(true),
        });
    }

    let moved: Vec<(&(Uuid, Uuid), &Pair)> = pairs
        .iter()
        .filter_map(|(k, p)| p.as_ref().filter(|p| p.moved).map(|p| (k, p)))
        .collect();
    if !moved.is_empty() {
        // An unknown user breaks a foreign key: the batch is retried one
        // mark at a time, and that one is `NotFound`.
        Prepared::new(UPSERT)
            .bind::<Array<SqlUuid>, _>(moved.iter().map(|(k, _)| k.0).collect::<Vec<_>>())
            .bind::<Array<SqlUuid>, _>(moved.iter().map(|(k, _)| k.1).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(moved.iter().map(|(_, p)| p.read).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(moved.iter().map(|(_, p)| p.delivered).collect::<Vec<_>>())
            .execute(c)
            .await?;
    }

    if !seen.is_empty() {
        let (users, ats): (Vec<Uuid>, Vec<Timestamp>) = seen.into_iter().unzip();
        let found: Vec<Id> = Prepared::new(SEEN)
            .bind::<Array<SqlUuid>, _>(users)
            .bind::<Array<Timestamptz>, _>(ats)
            .load(c)
            .await?;
        let found: std::collections::HashSet<Uuid> = found.into_iter().map(|r| r.id).collect();
        for (m, answer) in marks.iter().zip(answers.iter_mut()) {
            if let Mark::Seen { user, .. } = m
                && !found.contains(user)
            {
                *answer = Err(StoreError::NotFound);
            }
        }
    }
    Ok(answers)
}
