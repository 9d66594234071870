//! Running a scenario: set-up over REST, connecting, the measured phase, draining,
//! closing, and adding everything up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::api::Api;
use crate::cli::{Cli, Scenario, TrafficArgs, Via};
use crate::clock::{Clock, nanos};
use crate::conn::{
    ConnPlan, ConnReport, Live, Phase, RoomLive, SenderPlan, SenderReport, Shared, run_connection,
    run_rest_sender,
};
use crate::procfs;
use crate::report::{
    ClientReport, ConnectReport, ConnectionsReport, MeasureReport, Report, ServerReport,
    SetupReport, TrafficReport,
};
use crate::stats::{Aggregator, Counts, Latency, bump, merge_counts, per_sec, round2};
use crate::target::Target;

const PASSWORD: &str = "bench-password-1";

/// Clock reading for "not yet set": a century, far past any run and safe to add to an
/// `Instant`.
const NEVER: u64 = 100 * 365 * 24 * 3600 * 1_000_000_000;

/// Room `i` has `members[i]` members, the first `senders[i]` of whom send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub members: Vec<usize>,
    pub senders: Vec<usize>,
}

impl Layout {
    /// `n` users spread as evenly as possible over `rooms` rooms.
    pub fn spread(n: usize, rooms: usize, senders_per_room: usize) -> Result<Self> {
        if rooms == 0 || rooms > n {
            bail!("need 1 ≤ rooms ≤ connections (got {rooms} rooms for {n} connections)");
        }
        let members: Vec<usize> = (0..rooms)
            .map(|r| n / rooms + usize::from(r < n % rooms))
            .collect();
        if let Some(min) = members.iter().min()
            && senders_per_room > *min
        {
            bail!("{senders_per_room} senders per room, but a room has only {min} members");
        }
        Ok(Self {
            senders: vec![senders_per_room; rooms],
            members,
        })
    }

    pub fn users(&self) -> usize {
        self.members.iter().sum()
    }

    pub fn total_senders(&self) -> usize {
        self.senders.iter().sum()
    }
}

/// Per-sender pacing: each of `senders` sends every `senders / rate` seconds, the k-th
/// offset by k/senders of that interval; rate 0 is flat out.
pub fn pacing(rate: u64, senders: usize, k: usize) -> (Option<Duration>, Duration) {
    if rate == 0 || senders == 0 {
        return (None, Duration::ZERO);
    }
    let interval = Duration::from_secs_f64(senders as f64 / rate as f64);
    let offset = interval.mul_f64(k as f64 / senders as f64);
    (Some(interval), offset)
}

enum Kind {
    Idle {
        connections: usize,
        users: usize,
    },
    Traffic {
        name: &'static str,
        layout: Layout,
        args: TrafficArgs,
    },
}

pub async fn run(cli: &Cli) -> Result<Report> {
    let c = &cli.common;
    let (kind, params) = match &cli.scenario {
        Scenario::Idle(a) => {
            let connections = usize::try_from(a.connections)?;
            let users = usize::try_from(a.users.unwrap_or(a.connections.min(100)))?;
            if users > connections {
                bail!("--users ({users}) must not exceed --connections ({connections})");
            }
            (Kind::Idle { connections, users }, serde_json::to_value(a)?)
        }
        Scenario::Fanout(a) => {
            if a.senders > a.members {
                bail!(
                    "--senders ({}) must not exceed --members ({})",
                    a.senders,
                    a.members
                );
            }
            let layout = Layout {
                members: vec![usize::try_from(a.members)?],
                senders: vec![usize::try_from(a.senders)?],
            };
            (
                Kind::Traffic {
                    name: "fanout",
                    layout,
                    args: a.traffic.clone(),
                },
                serde_json::to_value(a)?,
            )
        }
        Scenario::Rooms(a) => {
            let layout = Layout::spread(
                usize::try_from(a.connections)?,
                usize::try_from(a.rooms)?,
                usize::try_from(a.senders_per_room)?,
            )?;
            (
                Kind::Traffic {
                    name: "rooms",
                    layout,
                    args: a.traffic.clone(),
                },
                serde_json::to_value(a)?,
            )
        }
    };
    let mut params = params;
    if let (Some(obj), Ok(common)) = (params.as_object_mut(), serde_json::to_value(c)) {
        obj.insert("common".into(), common);
    }

    let target = Target::resolve(&c.url).await?;
    let nofile = procfs::raise_nofile()?;
    let connections = match &kind {
        Kind::Idle { connections, .. } => *connections,
        Kind::Traffic { layout, .. } => layout.users(),
    };
    let need = connections as u64 + 64 + c.setup_concurrency;
    if nofile < need {
        bail!(
            "this process may open only {nofile} files but needs about {need}: \
             raise the hard limit (ulimit -Hn) and run again"
        );
    }
    let pid = c.server_pid.map(|p| p.to_string());
    if let Some(p) = &pid
        && procfs::mem(p).is_none()
    {
        bail!("--server-pid {p}: no such process (or /proc/{p}/status unreadable)");
    }
    let api = Api::new(target.clone(), usize::try_from(c.setup_concurrency)?)?;
    api.health().await?;

    let mut run_id = uuid::Uuid::new_v4().simple().to_string();
    run_id.truncate(6);
    let setup_limit = Duration::from_secs(c.setup_timeout);
    let conc = usize::try_from(c.setup_concurrency)?;

    // ---- set-up: accounts, rooms, memberships ----
    let (users, layout) = match &kind {
        Kind::Idle { users, .. } => (*users, None),
        Kind::Traffic { layout, .. } => (layout.users(), Some(layout.clone())),
    };
    let rooms_n = layout.as_ref().map_or(0, |l| l.members.len());
    eprintln!(
        "chat-bench run {run_id}: registering {users} users{} against {} ...",
        if rooms_n > 0 {
            format!(" in {rooms_n} room(s)")
        } else {
            String::new()
        },
        target.origin
    );
    let setup_start = Instant::now();
    let (tokens, room_ids) = tokio::time::timeout(setup_limit, async {
        let tokens = create_accounts(&api, &run_id, users, conc, c.progress > 0).await?;
        let room_ids = match &layout {
            Some(l) => create_rooms(&api, &run_id, l, &tokens, conc).await?,
            None => Vec::new(),
        };
        anyhow::Ok((tokens, room_ids))
    })
    .await
    .context("set-up took longer than --setup-timeout")??;
    let setup_secs = setup_start.elapsed().as_secs_f64();
    eprintln!(
        "set-up done in {setup_secs:.2} s; opening {connections} connections ({} at a time) ...",
        c.connect_concurrency
    );

    // ---- shared state, aggregators, samplers ----
    let (phase_tx, _) = watch::channel(Phase::Connecting);
    let traffic = match &kind {
        Kind::Traffic { args, .. } => Some(args.clone()),
        Kind::Idle { .. } => None,
    };
    let shared = Arc::new(Shared {
        clock: Clock::new(),
        run: run_id.clone(),
        target: target.clone(),
        phase: phase_tx,
        t0: AtomicU64::new(NEVER),
        t1: AtomicU64::new(NEVER),
        live: Live::default(),
        rooms: (0..rooms_n).map(|_| RoomLive::default()).collect(),
        pad: traffic.as_ref().map_or(0, |t| t.payload as usize),
        ack_timeout: Duration::from_secs(traffic.as_ref().map_or(10, |t| t.ack_timeout)),
        read_buffer: usize::try_from(c.read_buffer)?,
        connect_timeout: Duration::from_secs(c.connect_timeout),
    });
    let deliveries = Aggregator::spawn(Latency::new()?);
    let acks = Aggregator::spawn(Latency::new()?);
    let sampler = Sampler::spawn(shared.clone(), pid.clone());
    let progress = (c.progress > 0).then(|| {
        tokio::spawn(progress_lines(
            shared.clone(),
            pid.clone(),
            Duration::from_secs(c.progress),
        ))
    });
    let rss_before = pid.as_deref().and_then(procfs::mem).unwrap_or_default();

    // ---- plans ----
    let mut plans = Vec::with_capacity(connections);
    let mut rest_senders = Vec::new();
    match (&kind, &layout) {
        (Kind::Idle { connections, users }, _) => {
            for i in 0..*connections {
                plans.push(ConnPlan {
                    token: tokens[i % users].clone(),
                    room: None,
                    ws_sender: None,
                });
            }
        }
        (Kind::Traffic { args, .. }, Some(layout)) => {
            let total_senders = layout.total_senders();
            let per_sender_cap = args.max_messages.div_ceil(total_senders.max(1) as u64);
            let mut user = 0;
            let mut sender_id = 0;
            for (r, (&members, &senders)) in layout.members.iter().zip(&layout.senders).enumerate()
            {
                let room_id: Arc<str> = room_ids[r].clone();
                for j in 0..members {
                    let token = tokens[user].clone();
                    user += 1;
                    let sender = (j < senders).then(|| {
                        let (interval, offset) = pacing(args.rate, total_senders, sender_id);
                        sender_id += 1;
                        SenderPlan {
                            id: sender_id - 1,
                            interval,
                            offset,
                            max_messages: per_sender_cap,
                            window: args.window as usize,
                        }
                    });
                    let ws_sender = match (sender, args.via) {
                        (Some(p), Via::Ws) => Some(p),
                        (Some(p), Via::Rest) => {
                            rest_senders.push((token.clone(), r, room_id.clone(), p));
                            None
                        }
                        (None, _) => None,
                    };
                    plans.push(ConnPlan {
                        token,
                        room: Some((r, room_id.clone())),
                        ws_sender,
                    });
                }
            }
        }
        (Kind::Traffic { .. }, None) => bail!("traffic scenario without a layout"),
    }

    // ---- connect ----
    let connect_start = Instant::now();
    let sem = Arc::new(Semaphore::new(usize::try_from(c.connect_concurrency)?));
    let (conn_tx, mut conn_rx) = mpsc::unbounded_channel();
    let mut handles: Vec<JoinHandle<ConnReport>> = Vec::with_capacity(connections);
    let connecting = async {
        for plan in plans {
            let permit = sem.clone().acquire_owned().await?;
            handles.push(tokio::spawn(run_connection(
                shared.clone(),
                plan,
                permit,
                conn_tx.clone(),
                deliveries.sink(),
                acks.sink(),
            )));
        }
        let mut done = 0;
        while done < connections {
            if conn_rx.recv().await.is_none() {
                break;
            }
            done += 1;
        }
        anyhow::Ok(())
    };
    let connect_result = tokio::time::timeout(setup_limit, connecting).await;
    drop(conn_tx);
    let connect_secs = connect_start.elapsed().as_secs_f64();
    if connect_result.is_err() {
        let _ = shared.phase.send(Phase::Closing);
        for h in &handles {
            h.abort();
        }
        bail!(
            "connecting took longer than --setup-timeout ({} s)",
            c.setup_timeout
        );
    }
    let held_after_connect = shared.live.held.load(Relaxed);
    eprintln!("{held_after_connect} of {connections} connections open after {connect_secs:.2} s");
    let rss_connected = pid.as_deref().and_then(procfs::mem).unwrap_or_default();

    if let Some(t) = &traffic
        && t.settle > 0
    {
        tokio::time::sleep(Duration::from_secs(t.settle)).await;
    }

    // ---- measure ----
    let mut rest_handles = Vec::new();
    for (token, r, room_id, plan) in rest_senders {
        rest_handles.push(tokio::spawn(run_rest_sender(
            shared.clone(),
            api.clone(),
            token,
            r,
            room_id,
            plan,
            acks.sink(),
        )));
    }
    let self_pid = std::process::id().to_string();
    let cpu0 = (
        pid.as_deref().and_then(procfs::cpu_ticks),
        procfs::cpu_ticks(&self_pid),
    );
    let measure_start = Instant::now();
    let t0 = shared.clock.at(measure_start);
    shared.t0.store(t0, Relaxed);
    shared
        .t1
        .store(t0 + nanos(Duration::from_secs(c.duration)), Relaxed);
    let _ = shared.phase.send(Phase::Measuring);
    eprintln!(
        "measuring for {} s{} ...",
        c.duration,
        if traffic.is_some() { "" } else { " (holding)" }
    );
    let end = measure_start + Duration::from_secs(c.duration);
    let all_lost = async {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            if shared.live.held.load(Relaxed) == 0 {
                break;
            }
        }
    };
    let interrupted = tokio::select! {
        () = tokio::time::sleep_until(end.into()) => None,
        _ = tokio::signal::ctrl_c() => Some("interrupted"),
        () = all_lost => Some("every connection was lost"),
    };
    let measured_secs = measure_start.elapsed().as_secs_f64();
    if let Some(why) = interrupted {
        eprintln!("{why}: stopping early");
        shared.t1.store(shared.clock.now(), Relaxed);
    }
    let stopped_early = interrupted.map(str::to_owned);
    let interrupted = interrupted.is_some();
    let cpu1 = (
        pid.as_deref().and_then(procfs::cpu_ticks),
        procfs::cpu_ticks(&self_pid),
    );
    let cpu_pct = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if measured_secs > 0.0 => {
            round2(b.saturating_sub(a) as f64 / procfs::TICKS_PER_SEC / measured_secs * 100.0)
        }
        _ => 0.0,
    };
    let server_cpu = cpu_pct(cpu0.0, cpu1.0);
    let client_cpu = cpu_pct(cpu0.1, cpu1.1);

    // ---- drain: wait for outstanding acks and the deliveries they imply ----
    let drain_start = Instant::now();
    if let Some(t) = &traffic {
        let _ = shared.phase.send(Phase::Draining);
        let limit = drain_start + Duration::from_secs(if interrupted { 1 } else { t.drain });
        while Instant::now() < limit {
            let inflight = shared.live.inflight.load(Relaxed);
            if inflight == 0 && shared.live.deliveries.load(Relaxed) >= expected(&shared) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let drain_secs = drain_start.elapsed().as_secs_f64();
    let held_at_end = shared.live.held.load(Relaxed);
    let rss_end = pid.as_deref().and_then(procfs::mem).unwrap_or_default();

    // ---- close and collect ----
    let _ = shared.phase.send(Phase::Closing);
    eprintln!("closing {held_at_end} connections ...");
    let mut conn_reports = Vec::with_capacity(handles.len());
    let collect = async {
        for h in handles {
            if let Ok(r) = h.await {
                conn_reports.push(r);
            }
        }
        let mut rest_reports = Vec::new();
        for h in rest_handles {
            if let Ok(r) = h.await {
                rest_reports.push(r);
            }
        }
        rest_reports
    };
    let rest_reports = tokio::time::timeout(Duration::from_secs(60), collect)
        .await
        .context("connections did not close within 60 s")?;
    let delivery_lat = deliveries.finish().await?;
    let ack_lat = acks.finish().await?;
    let peaks = sampler.finish().await;
    if let Some(p) = progress {
        p.abort();
    }

    // ---- add up ----
    let mut failures = Counts::new();
    let mut close_codes = Counts::new();
    let mut errors = Counts::new();
    let mut events = Counts::new();
    let mut dropped = 0;
    let mut held = 0;
    let mut senders: Vec<SenderReport> = rest_reports;
    let (mut deliv, mut deliv_win, mut gaps, mut ooo, mut foreign) = (0, 0, 0, 0, 0);
    // Deliveries owed to, and received by, connections held from start to end.
    let (mut expected_deliveries, mut kept_deliveries) = (0, 0);
    for r in conn_reports {
        if let (None, None, Some(room)) = (&r.connect_error, &r.dropped, r.room) {
            expected_deliveries += shared.rooms[room].acked.load(Relaxed);
            kept_deliveries += r.deliveries;
        }
        match &r.connect_error {
            Some(why) => bump(&mut failures, why),
            None => held += 1,
        }
        if let Some(why) = &r.dropped {
            dropped += 1;
            bump(&mut close_codes, why);
        }
        merge_counts(&mut errors, &r.errors);
        merge_counts(&mut events, &r.events);
        deliv += r.deliveries;
        deliv_win += r.deliveries_in_window;
        gaps += r.seq_gaps;
        ooo += r.seq_out_of_order;
        foreign += r.foreign_messages;
        if let Some(s) = r.sender {
            senders.push(s);
        }
    }
    let window_secs = measured_secs;
    let traffic_report = match (&kind, &layout) {
        (Kind::Traffic { args, .. }, Some(layout)) => {
            let mut send_errors = Counts::new();
            let mut t = TrafficReport {
                rooms: layout.members.len() as u64,
                members_per_room_min: layout.members.iter().copied().min().unwrap_or(0) as u64,
                members_per_room_max: layout.members.iter().copied().max().unwrap_or(0) as u64,
                senders: layout.total_senders() as u64,
                via: args.via,
                target_rate: args.rate,
                window: args.window,
                sent: 0,
                sent_per_sec: 0.0,
                acked: 0,
                acked_in_window: 0,
                acked_per_sec: 0.0,
                send_errors: Counts::new(),
                ack_timeouts: 0,
                unacked_at_end: 0,
                behind_schedule: 0,
                deliveries: deliv,
                deliveries_in_window: deliv_win,
                deliveries_per_sec: per_sec(deliv_win, window_secs),
                expected_deliveries,
                missing_deliveries: expected_deliveries.saturating_sub(kept_deliveries),
                seq_gaps: gaps,
                seq_out_of_order: ooo,
                foreign_messages: foreign,
                latency: delivery_lat.summary(),
                ack_latency: ack_lat.summary(),
            };
            for s in &senders {
                t.sent += s.sent;
                t.acked += s.acked;
                t.acked_in_window += s.acked_in_window;
                t.ack_timeouts += s.ack_timeouts;
                t.unacked_at_end += s.unacked_at_end;
                t.behind_schedule += s.behind_schedule;
                merge_counts(&mut send_errors, &s.send_errors);
            }
            t.send_errors = send_errors;
            t.sent_per_sec = per_sec(t.sent, window_secs);
            t.acked_per_sec = per_sec(t.acked_in_window, window_secs);
            Some(t)
        }
        _ => None,
    };
    let server = c.server_pid.map(|p| {
        let per_conn = if held_after_connect > 0 {
            round2(
                rss_connected.rss_kib.saturating_sub(rss_before.rss_kib) as f64
                    / held_after_connect as f64,
            )
        } else {
            0.0
        };
        let last = pid.as_deref().and_then(procfs::mem).unwrap_or(rss_end);
        ServerReport {
            pid: p,
            rss_kib_before_connect: rss_before.rss_kib,
            rss_kib_connected: rss_connected.rss_kib,
            rss_kib_end: rss_end.rss_kib,
            rss_kib_peak: peaks
                .server_rss
                .max(rss_connected.rss_kib)
                .max(rss_end.rss_kib),
            hwm_kib: last.hwm_kib.max(peaks.server_hwm),
            rss_kib_per_connection: per_conn,
            cpu_percent_measured: server_cpu,
        }
    });
    let failed = connections as u64 - held;
    Ok(Report {
        scenario: match &kind {
            Kind::Idle { .. } => "idle",
            Kind::Traffic { name, .. } => name,
        },
        run_id,
        url: target.origin.to_string(),
        params,
        setup: SetupReport {
            users: users as u64,
            rooms: rooms_n as u64,
            secs: round2(setup_secs),
            users_per_sec: per_sec(users as u64, setup_secs),
        },
        connect: ConnectReport {
            attempted: connections as u64,
            held,
            failed,
            failures,
            secs: round2(connect_secs),
            per_sec: per_sec(held, connect_secs),
        },
        measure: MeasureReport {
            duration_secs: c.duration,
            measured_secs: round2(measured_secs),
            drain_secs: round2(drain_secs),
            stopped_early,
        },
        connections: ConnectionsReport {
            held_peak: shared.live.held_peak.load(Relaxed),
            held_at_end,
            dropped,
            close_codes,
        },
        traffic: traffic_report,
        errors,
        events,
        server,
        client: ClientReport {
            nofile_limit: nofile,
            rss_kib_peak: peaks.client_rss,
            cpu_percent_measured: client_cpu,
        },
    })
}

/// Sum over rooms of acknowledged messages times connections held in the room.
fn expected(shared: &Shared) -> u64 {
    shared
        .rooms
        .iter()
        .map(|r| r.acked.load(Relaxed) * r.held.load(Relaxed))
        .sum()
}

fn username(run: &str, i: usize) -> String {
    format!("b{run}-{i}")
}

async fn create_accounts(
    api: &Api,
    run: &str,
    n: usize,
    conc: usize,
    progress: bool,
) -> Result<Vec<Arc<str>>> {
    let done = AtomicU64::new(0);
    let step = (n / 10).max(1000) as u64;
    stream::iter(0..n)
        .map(|i| {
            let done = &done;
            async move {
                let token = api.register_and_login(&username(run, i), PASSWORD).await?;
                let d = done.fetch_add(1, Relaxed) + 1;
                if progress && d.is_multiple_of(step) {
                    eprintln!("  {d} of {n} users ready");
                }
                anyhow::Ok(Arc::<str>::from(token))
            }
        })
        .buffered(conc)
        .try_collect()
        .await
}

/// Creates each room with its first member as owner; the others join.
async fn create_rooms(
    api: &Api,
    run: &str,
    layout: &Layout,
    tokens: &[Arc<str>],
    conc: usize,
) -> Result<Vec<Arc<str>>> {
    let mut first = Vec::with_capacity(layout.members.len());
    let mut u = 0;
    for &m in &layout.members {
        first.push(u);
        u += m;
    }
    let ids: Vec<Arc<str>> = stream::iter(first.iter().enumerate())
        .map(|(r, &owner)| async move {
            let id = api
                .create_room(&tokens[owner], &format!("bench {run} room {r}"))
                .await?;
            anyhow::Ok(Arc::<str>::from(id))
        })
        .buffered(conc)
        .try_collect()
        .await?;
    let joins = layout
        .members
        .iter()
        .enumerate()
        .flat_map(|(r, &m)| (1..m).map(move |j| (r, j)));
    stream::iter(joins)
        .map(|(r, j)| {
            let ids = &ids;
            let first = &first;
            async move { api.join_room(&tokens[first[r] + j], &ids[r]).await }
        })
        .buffer_unordered(conc)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(ids)
}

/// Highest memory figures seen by the [`Sampler`], KiB.
#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    server_rss: u64,
    server_hwm: u64,
    client_rss: u64,
}

/// Samples server and client memory every 250 ms until the run closes.
struct Sampler {
    task: JoinHandle<Peaks>,
}

impl Sampler {
    fn spawn(shared: Arc<Shared>, pid: Option<String>) -> Self {
        let task = tokio::spawn(async move {
            let me = std::process::id().to_string();
            let mut phase = shared.phase.subscribe();
            let mut peaks = Peaks::default();
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                if let Some(m) = pid.as_deref().and_then(procfs::mem) {
                    peaks.server_rss = peaks.server_rss.max(m.rss_kib);
                    peaks.server_hwm = peaks.server_hwm.max(m.hwm_kib);
                }
                if let Some(m) = procfs::mem(&me) {
                    peaks.client_rss = peaks.client_rss.max(m.rss_kib);
                }
                if *phase.borrow_and_update() >= Phase::Closing {
                    break;
                }
                tokio::select! {
                    _ = tick.tick() => {}
                    r = phase.changed() => if r.is_err() { break },
                }
            }
            peaks
        });
        Self { task }
    }

    async fn finish(self) -> Peaks {
        self.task.await.unwrap_or_default()
    }
}

async fn progress_lines(shared: Arc<Shared>, pid: Option<String>, every: Duration) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let live = &shared.live;
    let (mut sent0, mut deliv0) = (0, 0);
    loop {
        tick.tick().await;
        let phase = *shared.phase.borrow();
        if phase >= Phase::Closing {
            break;
        }
        let (sent, acked, deliv) = (
            live.sent.load(Relaxed),
            live.acked.load(Relaxed),
            live.deliveries.load(Relaxed),
        );
        let secs = every.as_secs_f64();
        let rss = pid
            .as_deref()
            .and_then(procfs::mem)
            .map(|m| format!(", server RSS {:.1} MiB", m.rss_kib as f64 / 1024.0))
            .unwrap_or_default();
        eprintln!(
            "[{:>6.1}s] {:?}: held {} dropped {} | sent {} ({:.0}/s) acked {} | delivered {} ({:.0}/s){}",
            start.elapsed().as_secs_f64(),
            phase,
            live.held.load(Relaxed),
            live.dropped.load(Relaxed),
            sent,
            (sent - sent0) as f64 / secs,
            acked,
            deliv,
            (deliv - deliv0) as f64 / secs,
            rss
        );
        (sent0, deliv0) = (sent, deliv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_even() -> Result<()> {
        let l = Layout::spread(10, 3, 1)?;
        assert_eq!(l.members, vec![4, 3, 3]);
        assert_eq!(l.senders, vec![1, 1, 1]);
        assert_eq!(l.users(), 10);
        assert_eq!(l.total_senders(), 3);
        assert!(Layout::spread(3, 4, 1).is_err());
        assert!(Layout::spread(10, 3, 4).is_err());
        assert!(Layout::spread(10, 0, 1).is_err());
        Ok(())
    }

    #[test]
    fn pacing_spreads_senders() {
        assert_eq!(pacing(0, 4, 1), (None, Duration::ZERO));
        let (i, o) = pacing(100, 4, 0);
        assert_eq!(i, Some(Duration::from_millis(40)));
        assert_eq!(o, Duration::ZERO);
        let (i, o) = pacing(100, 4, 2);
        assert_eq!(i, Some(Duration::from_millis(40)));
        assert_eq!(o, Duration::from_millis(20));
    }

    #[test]
    fn usernames_fit_the_contract() {
        let u = username("a1b2c3", 59_999);
        assert!((3..=32).contains(&u.len()));
        assert!(
            u.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
        );
    }
}
