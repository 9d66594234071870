//! The results of a run: one JSON object, or a human summary of the same figures.

use std::fmt::Write as _;

use serde::Serialize;

use crate::stats::{Counts, LatencySummary, total};

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub run_id: String,
    pub url: String,
    pub params: serde_json::Value,
    pub setup: SetupReport,
    pub connect: ConnectReport,
    pub measure: MeasureReport,
    pub connections: ConnectionsReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficReport>,
    /// `error` frames that answered none of our sends, and protocol oddities, by code.
    pub errors: Counts,
    /// Other server events seen (presence, member:joined, ...), by type.
    pub events: Counts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerReport>,
    pub client: ClientReport,
}

#[derive(Debug, Serialize)]
pub struct SetupReport {
    pub users: u64,
    pub rooms: u64,
    pub secs: f64,
    pub users_per_sec: f64,
}

#[derive(Debug, Serialize)]
pub struct ConnectReport {
    pub attempted: u64,
    pub held: u64,
    pub failed: u64,
    pub failures: Counts,
    pub secs: f64,
    pub per_sec: f64,
}

#[derive(Debug, Serialize)]
pub struct MeasureReport {
    /// `--duration`.
    pub duration_secs: u64,
    /// How long the measured phase really lasted (shorter if interrupted).
    pub measured_secs: f64,
    pub drain_secs: f64,
    /// Why the measured phase ended before `duration_secs` (Ctrl-C, every connection
    /// lost), or null.
    pub stopped_early: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ConnectionsReport {
    pub held_peak: u64,
    /// Still open when the measured phase (and drain) ended.
    pub held_at_end: u64,
    /// Closed by the server or lost before the bench closed them.
    pub dropped: u64,
    /// Why they went: a close code (`1008`, `1013`, ...), `eof`, `io_*`.
    pub close_codes: Counts,
}

#[derive(Debug, Serialize)]
pub struct TrafficReport {
    pub rooms: u64,
    pub members_per_room_min: u64,
    pub members_per_room_max: u64,
    pub senders: u64,
    pub via: crate::cli::Via,
    /// Messages per second over all senders; 0: flat out.
    pub target_rate: u64,
    pub window: u64,
    pub sent: u64,
    pub sent_per_sec: f64,
    pub acked: u64,
    pub acked_in_window: u64,
    pub acked_per_sec: f64,
    pub send_errors: Counts,
    pub ack_timeouts: u64,
    pub unacked_at_end: u64,
    /// Rate mode: sends that went out more than 10 ms after their slot.
    pub behind_schedule: u64,
    pub deliveries: u64,
    pub deliveries_in_window: u64,
    pub deliveries_per_sec: f64,
    /// Sum over rooms of acked messages times connections held in the room.
    pub expected_deliveries: u64,
    pub missing_deliveries: u64,
    pub seq_gaps: u64,
    pub seq_out_of_order: u64,
    pub foreign_messages: u64,
    /// Send (just before writing the frame or request) to `message:new` read.
    pub latency: LatencySummary,
    /// Send to `ack` frame / 201 response.
    pub ack_latency: LatencySummary,
}

#[derive(Debug, Serialize)]
pub struct ServerReport {
    pub pid: u32,
    pub rss_kib_before_connect: u64,
    pub rss_kib_connected: u64,
    pub rss_kib_end: u64,
    /// Highest VmRSS seen by sampling every 250 ms.
    pub rss_kib_peak: u64,
    /// The kernel's VmHWM: peak RSS over the server's whole life.
    pub hwm_kib: u64,
    /// (connected - before) / connections held.
    pub rss_kib_per_connection: f64,
    pub cpu_percent_measured: f64,
}

#[derive(Debug, Serialize)]
pub struct ClientReport {
    pub nofile_limit: u64,
    pub rss_kib_peak: u64,
    pub cpu_percent_measured: f64,
}

fn counts(c: &Counts) -> String {
    if c.is_empty() {
        return "none".into();
    }
    c.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

fn lat(l: &LatencySummary) -> String {
    if l.count == 0 {
        return "no samples".into();
    }
    format!(
        "p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (mean {:.2} ms, n={})",
        l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.mean_ms, l.count
    )
}

impl Report {
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = self.write_human(&mut s);
        s
    }

    fn write_human(&self, s: &mut String) -> std::fmt::Result {
        writeln!(
            s,
            "chat-bench {} (run {}) against {}",
            self.scenario, self.run_id, self.url
        )?;
        writeln!(
            s,
            "set-up:      {} users, {} rooms in {:.2} s ({:.1} users/s)",
            self.setup.users, self.setup.rooms, self.setup.secs, self.setup.users_per_sec
        )?;
        let c = &self.connect;
        writeln!(
            s,
            "connect:     {} of {} held, {} failed, in {:.2} s ({:.0} conn/s); failures: {}",
            c.held,
            c.attempted,
            c.failed,
            c.secs,
            c.per_sec,
            counts(&c.failures)
        )?;
        let m = &self.measure;
        writeln!(
            s,
            "measured:    {:.2} s of {} s{}, drain {:.2} s",
            m.measured_secs,
            m.duration_secs,
            m.stopped_early
                .as_deref()
                .map(|w| format!(" (stopped early: {w})"))
                .unwrap_or_default(),
            m.drain_secs
        )?;
        let k = &self.connections;
        writeln!(
            s,
            "connections: peak {} held, {} at end, {} dropped; close codes: {}",
            k.held_peak,
            k.held_at_end,
            k.dropped,
            counts(&k.close_codes)
        )?;
        if let Some(t) = &self.traffic {
            writeln!(
                s,
                "traffic:     {} room(s) of {}-{} members, {} sender(s) via {:?}, rate {}, window {}",
                t.rooms,
                t.members_per_room_min,
                t.members_per_room_max,
                t.senders,
                t.via,
                if t.target_rate == 0 {
                    "flat out".to_owned()
                } else {
                    format!("{}/s", t.target_rate)
                },
                t.window
            )?;
            writeln!(
                s,
                "  sent       {} ({:.1}/s)   acked {} ({:.1}/s in window)   send errors {}   ack timeouts {}   behind schedule {}",
                t.sent,
                t.sent_per_sec,
                t.acked,
                t.acked_per_sec,
                counts(&t.send_errors),
                t.ack_timeouts,
                t.behind_schedule
            )?;
            writeln!(
                s,
                "  delivered  {} ({:.1}/s in window)   expected {}   missing {}   seq gaps {}   out of order {}",
                t.deliveries,
                t.deliveries_per_sec,
                t.expected_deliveries,
                t.missing_deliveries,
                t.seq_gaps,
                t.seq_out_of_order
            )?;
            writeln!(s, "  latency    {}", lat(&t.latency))?;
            writeln!(s, "  ack        {}", lat(&t.ack_latency))?;
        }
        writeln!(
            s,
            "errors:      {} ({})",
            total(&self.errors),
            counts(&self.errors)
        )?;
        writeln!(s, "events:      {}", counts(&self.events))?;
        if let Some(v) = &self.server {
            writeln!(
                s,
                "server:      pid {}: RSS {:.1} MiB before connecting, {:.1} MiB connected ({:.1} KiB/conn), {:.1} MiB at end, peak {:.1} MiB (VmHWM {:.1} MiB); CPU {:.0}% while measuring",
                v.pid,
                mib(v.rss_kib_before_connect),
                mib(v.rss_kib_connected),
                v.rss_kib_per_connection,
                mib(v.rss_kib_end),
                mib(v.rss_kib_peak),
                mib(v.hwm_kib),
                v.cpu_percent_measured
            )?;
        }
        writeln!(
            s,
            "client:      RSS peak {:.1} MiB, CPU {:.0}% while measuring, RLIMIT_NOFILE {}",
            mib(self.client.rss_kib_peak),
            self.client.cpu_percent_measured,
            self.client.nofile_limit
        )?;
        Ok(())
    }
}
