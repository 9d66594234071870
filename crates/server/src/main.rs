//! `chat-server`: runs the chat server with the configuration of `config/`
//! and the environment. `chat-server migrate` runs pending database
//! migrations and exits.

use chat_server::{Application, Settings};

fn main() -> std::process::ExitCode {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    init_tracing(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        return match runtime.block_on(chat_server::migrate(&settings)) {
            Ok(done) if done.is_empty() => {
                println!("the database is up to date");
                std::process::ExitCode::SUCCESS
            }
            Ok(done) => {
                for m in done {
                    println!("applied {m}");
                }
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}", chain(&e));
                std::process::ExitCode::FAILURE
            }
        };
    }
    let result = runtime.block_on(async {
        let app = Application::build(&settings).await?;
        tracing::info!(
            host = %settings.server.host,
            port = app.port(),
            env = %settings.env,
            "chat server listening"
        );
        app.run()
            .await
            .map_err(|source| chat_server::StartError::Bind {
                addr: "server".to_owned(),
                source,
            })
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let why = chain(&e);
            tracing::error!(error = %why, "server stopped");
            eprintln!("error: {why}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes, one after another.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Logs: readable in development, JSON elsewhere; `RUST_LOG` overrides the level.
fn init_tracing(settings: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if settings.log.json.unwrap_or(!settings.is_development()) {
        builder.json().init();
    } else {
        builder.init();
    }
}
