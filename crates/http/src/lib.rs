//! The HTTP adapter: actix-web routes for the REST API of `shared/API.md`,
//! its request and response DTOs, the bearer-token extractor, the mapping
//! from use-case errors to the contract's `{"error", "code"}` bodies, and the
//! OpenAPI document generated from the code.
//!
//! Handlers are thin: parse and validate the request into domain values,
//! call one `chat-app` use case, turn the answer into a DTO. No rule lives
//! here, and nothing here knows which store is behind the app.

mod client;
mod dto;
mod error;
mod extract;
mod limits;
mod metrics;
mod observe;
mod openapi;
mod routes;
mod send;
pub mod ws;

use actix_web::web;
use chat_app::App;

pub use error::ApiError;
pub use limits::{LimitSettings, RateLimits};
pub use metrics::{BusGauges, BusStats, Metrics, PoolGauges, PoolStats};
pub use observe::observe;
pub use openapi::ApiDoc;

/// Limits the HTTP layer enforces.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The largest JSON body accepted, in bytes (413 beyond).
    pub json_limit: usize,
    /// Bytes of events a WebSocket connection may have waiting to be
    /// written before it is closed as too slow (1013); one that has had
    /// events waiting and written none for 10 s is closed too.
    pub ws_queue_bytes: usize,
    /// The largest attachment accepted, in bytes (413 beyond; exactly this
    /// is allowed).
    pub upload_limit: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            json_limit: 64 * 1024,
            ws_queue_bytes: 8 * 1024 * 1024,
            upload_limit: 10 * 1024 * 1024,
        }
    }
}

/// Something `/ready` asks before answering 200.
pub trait Readiness: Send + Sync + 'static {
    /// Whether the dependency answers right now.
    fn check(&self) -> futures_util::future::BoxFuture<'_, bool>;
}

/// What the handlers share.
#[derive(Clone)]
pub struct State {
    pub app: App,
    pub settings: HttpSettings,
    pub readiness: Vec<std::sync::Arc<dyn Readiness>>,
    /// The WebSocket hub: who is connected, and the fan-out of events.
    pub hub: ws::Hub,
    /// What `/metrics` reports.
    pub metrics: std::sync::Arc<Metrics>,
    /// The database pool, when there is one, for `/metrics`.
    pub pool: Option<std::sync::Arc<dyn PoolStats>>,
    /// The bus shared with other nodes, when there is one, for `/metrics`
    /// and `/ready`.
    pub bus: Option<std::sync::Arc<dyn BusStats>>,
    /// Rate limits (429); `Default` is none.
    pub limits: std::sync::Arc<RateLimits>,
}

impl State {
    /// A user as others see them, with their presence on this server.
    pub(crate) fn public_user(&self, user: chat_domain::User) -> dto::PublicUserDto {
        let online = self.hub.is_online(user.id);
        dto::PublicUserDto::with_presence(user, online)
    }

    /// A member as others see them.
    pub(crate) fn member(&self, m: chat_ports::MemberView) -> dto::MemberDto {
        dto::MemberDto {
            role: m.membership.role.into(),
            joined_at: m.membership.joined_at,
            user: self.public_user(m.user),
        }
    }
}

/// Mounts every route on an actix `App`:
/// `actix_web::App::new().configure(chat_http::configure(state))`.
pub fn configure(state: State) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let limit = state.settings.json_limit;
        cfg.app_data(web::Data::new(state))
            .app_data(web::PayloadConfig::new(limit))
            .app_data(web::QueryConfig::default().error_handler(|e, _| ApiError::query(&e).into()))
            .configure(routes::service)
            .configure(client::routes)
            .service(web::scope("/api/v1").configure(routes::api))
            .default_service(web::to(routes::not_found));
    }
}
