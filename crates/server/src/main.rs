//! `chat-server`: runs the chat server with the configuration of `config/`
//! and the environment.

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
    let result = runtime.block_on(async {
        let app = Application::build(&settings)?;
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
            tracing::error!(error = %e, "server stopped");
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
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
