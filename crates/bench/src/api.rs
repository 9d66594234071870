//! The REST calls the bench needs: accounts, rooms, and posting a message.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::{Client, Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::target::Target;

#[derive(Clone)]
pub struct Api {
    client: Client,
    target: Target,
}

/// What a failed call said.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {}", self.status.as_u16(), self.code)
    }
}

impl std::error::Error for ApiError {}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
struct LoginBody {
    token: String,
}

#[derive(Deserialize)]
struct IdBody {
    id: String,
}

/// The result of one `POST /rooms/{id}/messages`.
pub enum PostOutcome {
    /// 201 (or 200 for a replayed `client_msg_id`).
    Created,
    /// Any other status, with its `code` (or `http_<status>`).
    Failed(String),
}

const ATTEMPTS: u32 = 6;

impl Api {
    pub fn new(target: Target, pool: usize) -> Result<Self> {
        let mut builder = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(pool)
            .tcp_nodelay(true);
        if let Some(url::Host::Domain(d)) = target.origin.host() {
            // Pin the name to the loopback address checked at start-up.
            builder = builder.resolve(d, target.addr);
        }
        Ok(Self {
            client: builder.build().context("building the HTTP client")?,
            target,
        })
    }

    /// `GET /health`: a clear error up front when nothing is listening.
    pub async fn health(&self) -> Result<()> {
        let url = self.target.origin.join("/health")?;
        let resp = self.client.get(url.clone()).send().await.with_context(|| {
            format!("no server at {url} (start one: cargo run --release -p chat-server)")
        })?;
        if !resp.status().is_success() {
            bail!("{url} answered {}", resp.status());
        }
        Ok(())
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Value> {
        let url = self.target.api(path)?;
        let mut req = self.client.request(method, url).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status();
        if status.is_success() {
            let bytes = resp.bytes().await?;
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).context("response is not JSON");
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let code = resp
            .json::<ErrorBody>()
            .await
            .map(|b| b.code)
            .unwrap_or_default();
        Err(ApiError {
            status,
            code: if code.is_empty() {
                format!("http_{}", status.as_u16())
            } else {
                code
            },
            retry_after,
        }
        .into())
    }

    /// [`Self::call`], retried on 429 (after `Retry-After`), 502-504 and transport errors.
    async fn call_retrying(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Value> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            let res = self.call(method.clone(), path, token, body).await;
            let wait = match &res {
                Ok(_) => return res,
                Err(e) => match e.downcast_ref::<ApiError>() {
                    Some(ApiError {
                        status: StatusCode::TOO_MANY_REQUESTS,
                        retry_after,
                        ..
                    }) => Some(retry_after.unwrap_or(delay)),
                    Some(a) if matches!(a.status.as_u16(), 502..=504) => Some(delay),
                    Some(_) => None,
                    None => Some(delay),
                },
            };
            match wait {
                Some(w) if attempt < ATTEMPTS => {
                    tokio::time::sleep(w.min(Duration::from_secs(10))).await;
                    delay *= 2;
                    attempt += 1;
                }
                _ => {
                    return res
                        .with_context(|| format!("{path} failed after {attempt} attempt(s)"));
                }
            }
        }
    }

    /// Registers (201) then logs in; returns the access token.
    pub async fn register_and_login(&self, username: &str, password: &str) -> Result<String> {
        let email = format!("{username}@example.com");
        self.call_retrying(
            Method::POST,
            "auth/register",
            None,
            &json!({"username": username, "email": email, "password": password}),
        )
        .await
        .with_context(|| format!("registering {username}"))?;
        let v = self
            .call_retrying(
                Method::POST,
                "auth/login",
                None,
                &json!({"username": username, "password": password}),
            )
            .await
            .with_context(|| format!("logging in {username}"))?;
        let body: LoginBody = serde_json::from_value(v).context("login answer has no token")?;
        Ok(body.token)
    }

    /// `POST /rooms {name}` -> the room id.
    pub async fn create_room(&self, token: &str, name: &str) -> Result<String> {
        let v = self
            .call_retrying(Method::POST, "rooms", Some(token), &json!({"name": name}))
            .await
            .with_context(|| format!("creating room {name:?}"))?;
        let body: IdBody = serde_json::from_value(v).context("room answer has no id")?;
        Ok(body.id)
    }

    /// `POST /rooms/{id}/join`.
    pub async fn join_room(&self, token: &str, room_id: &str) -> Result<()> {
        self.call_retrying(
            Method::POST,
            &format!("rooms/{room_id}/join"),
            Some(token),
            &json!({}),
        )
        .await
        .with_context(|| format!("joining room {room_id}"))?;
        Ok(())
    }

    /// `POST /rooms/{id}/messages` once, no retry: the outcome is what is measured.
    pub async fn post_message(
        &self,
        token: &str,
        room_id: &str,
        content: &str,
        client_msg_id: &str,
    ) -> PostOutcome {
        let res = self
            .call(
                Method::POST,
                &format!("rooms/{room_id}/messages"),
                Some(token),
                &json!({"content": content, "client_msg_id": client_msg_id}),
            )
            .await;
        match res {
            Ok(_) => PostOutcome::Created,
            Err(e) => PostOutcome::Failed(match e.downcast_ref::<ApiError>() {
                Some(a) => a.code.clone(),
                None => transport_kind(&e),
            }),
        }
    }
}

fn transport_kind(e: &anyhow::Error) -> String {
    match e.downcast_ref::<reqwest::Error>() {
        Some(r) if r.is_timeout() => "timeout".into(),
        Some(r) if r.is_connect() => "connect".into(),
        Some(_) => "transport".into(),
        None => "other".into(),
    }
}
