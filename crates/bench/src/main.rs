//! `chat-bench`: a load generator for the chat server. See `chat-bench --help`.

mod api;
mod cli;
mod clock;
mod conn;
mod procfs;
mod report;
mod scenario;
mod stats;
mod target;
mod ws;

use anyhow::Result;
use clap::Parser;

fn main() -> Result<()> {
    let cli = cli::Cli::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    // Half the cores by default: the server under test runs on the same machine.
    let threads = match cli.common.threads {
        Some(n) => usize::try_from(n)?,
        None => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
    };
    rt.worker_threads(threads);
    let report = rt.build()?.block_on(scenario::run(&cli))?;
    if cli.common.json {
        eprint!("{}", report.human());
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.human());
    }
    Ok(())
}
