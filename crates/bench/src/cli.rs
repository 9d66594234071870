//! Command-line interface.

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

/// Load generator for the chat server: registers users, opens WebSocket connections and
/// sends messages as real clients would, then reports what it measured.
///
/// Loopback only: --url must be http://localhost, http://127.x.y.z or http://[::1].
/// Every run is bounded: a hard --duration cap on the measured phase, caps on counts, and
/// time-outs on set-up and connecting.
///
/// Open-file limits: the bench raises its own RLIMIT_NOFILE soft limit to the hard limit.
/// The SERVER needs one descriptor per connection too: start it from a shell where
/// `ulimit -n` is at least the connection count plus a few hundred, e.g.
/// `ulimit -n 20000; CHAT__AUTH__BCRYPT_COST=4 CHAT__LIMITS__AUTH_PER_MINUTE=0
/// CHAT__LIMITS__MESSAGES_PER_MINUTE=0 cargo run --release -p chat-server`.
/// (A cost of 4 makes registering thousands of bench users quick; the server's
/// rate limits must be off, as the bench is every client at once.)
#[derive(Debug, Parser)]
#[command(name = "chat-bench", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Clone, Args, Serialize)]
#[command(next_help_heading = "Common options")]
pub struct Common {
    /// Server origin; loopback only.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// Length of the measured phase in seconds (idle: how long connections are held).
    #[arg(long, global = true, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,

    /// PID of the server process, to report its memory (VmRSS/VmHWM) and CPU time.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,

    /// Print one JSON object with every figure on stdout (the human summary goes to stderr).
    #[arg(long, global = true)]
    pub json: bool,

    /// Registrations / logins / joins in flight at once during set-up.
    #[arg(long, global = true, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub setup_concurrency: u64,

    /// WebSocket handshakes in flight at once while connecting.
    #[arg(long, global = true, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=5000))]
    pub connect_concurrency: u64,

    /// Time-out for one connection's TCP connect + upgrade + `hello`, in seconds.
    #[arg(long, global = true, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=120))]
    pub connect_timeout: u64,

    /// Upper bound on the set-up phase (accounts and rooms) and, separately, on the
    /// connecting phase, in seconds.
    #[arg(long, global = true, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub setup_timeout: u64,

    /// Print a progress line to stderr every this many seconds (0: never).
    #[arg(long, global = true, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub progress: u64,

    /// Read buffer of each WebSocket connection, bytes. tungstenite allocates it up front
    /// and zero-fills it before every read, so bigger costs memory and CPU per read.
    #[arg(long, global = true, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1024..=1_048_576))]
    pub read_buffer: u64,

    /// Worker threads of the bench's own runtime (default: half the cores, at least
    /// one). The bench shares the machine with the server; on 2 cores one thread
    /// measured the highest throughput.
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub threads: Option<u64>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// Open many WebSocket connections and hold them, reading only. Reports connections
    /// held and failed, and the server's memory with them open.
    ///
    /// The server needs `ulimit -n` of at least --connections plus a few hundred.
    Idle(IdleArgs),
    /// One room with --members members, each holding one connection; --senders of them
    /// send at --rate. Every member counts `message:new` deliveries and latency.
    Fanout(FanoutArgs),
    /// --connections users spread over --rooms rooms (each user in one room, one
    /// connection each); --senders-per-room of each room send.
    Rooms(RoomsArgs),
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct IdleArgs {
    /// Concurrent connections to open (C).
    #[arg(long, short = 'c', default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub connections: u64,

    /// Distinct user accounts (U); connection i uses user i mod U. Defaults to
    /// min(C, 100).
    #[arg(long, short = 'u', value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub users: Option<u64>,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct FanoutArgs {
    /// Members of the room (M), one connection each.
    #[arg(long, short = 'm', default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub members: u64,

    /// Members that send (S), each over its own connection (or REST with --via rest).
    #[arg(long, short = 's', default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub senders: u64,

    #[command(flatten)]
    pub traffic: TrafficArgs,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct RoomsArgs {
    /// Connections (N), one user each.
    #[arg(long, short = 'n', default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub connections: u64,

    /// Rooms (M); the N users are spread evenly over them.
    #[arg(long, short = 'r', default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub rooms: u64,

    /// Senders in each room.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub senders_per_room: u64,

    #[command(flatten)]
    pub traffic: TrafficArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// `message:send` frames over the sender's WebSocket; `ack` frames acknowledge.
    Ws,
    /// `POST /rooms/{id}/messages`; 201 acknowledges.
    Rest,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct TrafficArgs {
    /// Target send rate in messages per second over all senders (0: flat out, each
    /// sender keeping --window messages unacknowledged).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub rate: u64,

    /// How senders send.
    #[arg(long, value_enum, default_value_t = Via::Ws)]
    pub via: Via,

    /// Most messages one sender has sent but not yet seen acknowledged.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub window: u64,

    /// Filler characters appended to each message's content (content stays ≤ 4000).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=3900))]
    pub payload: u64,

    /// Hard cap on messages sent in the whole run.
    #[arg(long, default_value_t = 2_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_messages: u64,

    /// Seconds to wait after the connections are up before measuring (presence and join
    /// events settle).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=60))]
    pub settle: u64,

    /// Seconds to wait after the last send for outstanding acks and deliveries.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=120))]
    pub drain: u64,

    /// An ack not seen this many seconds after its send is counted as timed out.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub ack_timeout: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_examples() -> anyhow::Result<()> {
        let c = Cli::try_parse_from(["chat-bench", "idle", "-c", "10000", "--duration", "60"])?;
        assert!(matches!(
            c.scenario,
            Scenario::Idle(IdleArgs {
                connections: 10000,
                users: None
            })
        ));
        assert_eq!(c.common.duration, 60);
        let c = Cli::try_parse_from([
            "chat-bench",
            "fanout",
            "--members",
            "1000",
            "--rate",
            "0",
            "--via",
            "rest",
            "--json",
        ])?;
        assert!(c.common.json);
        match c.scenario {
            Scenario::Fanout(f) => {
                assert_eq!(f.members, 1000);
                assert_eq!(f.traffic.rate, 0);
                assert_eq!(f.traffic.via, Via::Rest);
            }
            _ => anyhow::bail!("wrong scenario"),
        }
        assert!(Cli::try_parse_from(["chat-bench", "idle", "--duration", "0"]).is_err());
        assert!(Cli::try_parse_from(["chat-bench", "idle", "--duration", "3601"]).is_err());
        assert!(Cli::try_parse_from(["chat-bench", "idle", "-c", "60001"]).is_err());
        Ok(())
    }
}
