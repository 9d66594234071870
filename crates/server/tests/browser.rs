//! The bundled web client in a real browser: the server runs in-process on
//! a free port (in-memory store), and `tests/browser/chat.mjs` drives it with
//! Playwright in Chromium as two users (sign-up, rooms, live messages,
//! typing, reactions, an image upload, a lost event and a lost connection,
//! phone and desktop sizes). Screenshots go to `target/browser-screenshots`.
//!
//! Needs Node.js with npm and Chromium at `/usr/bin/chromium`
//! (`apt-get install -y chromium`); the script's dependency
//! (`playwright-core`, which never downloads a browser) is installed with
//! `npm ci` on first run.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chat_server::{Application, Settings};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser run; each step of the script has its own, shorter limit.
const SCRIPT_LIMIT: Duration = Duration::from_secs(180);
const NPM_LIMIT: Duration = Duration::from_secs(300);

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn script_dir() -> PathBuf {
    manifest_dir().join("tests/browser")
}

fn screenshot_dir() -> PathBuf {
    let workspace = manifest_dir()
        .join("../..")
        .canonicalize()
        .expect("the workspace root");
    workspace.join("target/browser-screenshots")
}

/// What a finished child process said.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn transcript(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Runs a command to the end, killing it past `limit`.
fn run(mut command: Command, what: &str, limit: Duration) -> Ran {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {what}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a child process") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {} s and was killed:\n--- stdout ---\n{}\n--- stderr ---\n{}",
                limit.as_secs(),
                stdout.join().unwrap(),
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ran {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn require_chromium() {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "Chromium is missing: the browser test needs it at {CHROMIUM}. \
         Install it with `apt-get install -y chromium`."
    );
}

/// Installs the script's locked dependencies once (`npm ci`).
fn ensure_node_modules(dir: &Path) {
    if dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return;
    }
    let mut npm = Command::new("npm");
    npm.args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
    let ran = run(npm, "`npm ci` (is Node.js with npm installed?)", NPM_LIMIT);
    assert!(
        ran.status.success(),
        "`npm ci` failed in {} ({}):\n{}",
        dir.display(),
        ran.status,
        ran.transcript()
    );
}

/// Starts the server on a free port with the in-memory store; its base URL.
async fn start_server() -> String {
    let env: HashMap<String, String> = [
        ("PORT", "0"),
        ("JWT_SECRET", "a-browser-test-secret-0123456789abcdef"),
        ("CHAT__AUTH__BCRYPT_COST", "4"),
        ("CHAT__SERVER__WORKERS", "2"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let settings = Settings::load_from(&manifest_dir().join("../../config"), &env).unwrap();
    let app = Application::build(&settings).await.unwrap();
    let port = app.port();
    tokio::spawn(app.run());
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_client_works_in_chromium() {
    require_chromium();
    let dir = script_dir();
    let prepare = dir.clone();
    tokio::task::spawn_blocking(move || ensure_node_modules(&prepare))
        .await
        .unwrap();

    let base = start_server().await;
    let shots = screenshot_dir();
    let mut node = Command::new("node");
    node.arg("chat.mjs")
        .arg(&base)
        .arg(&shots)
        .current_dir(&dir)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
    let ran = tokio::task::spawn_blocking(move || {
        run(
            node,
            "`node chat.mjs` (is Node.js installed?)",
            SCRIPT_LIMIT,
        )
    })
    .await
    .unwrap();

    println!("{}", ran.transcript());
    assert!(
        ran.status.success(),
        "the browser test failed ({}); screenshots in {}:\n{}",
        ran.status,
        shots.display(),
        ran.transcript()
    );
}
