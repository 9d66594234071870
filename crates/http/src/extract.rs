//! Request extractors and the validation helpers handlers share.

use std::collections::BTreeMap;
use std::fmt::Display;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::{FromRequest, HttpRequest, web};
use chat_app::AuthContext;
use chat_domain::PageLimit;
use chat_ports::{Cursor, PageRequest};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::{ApiError, State};

/// The caller, authenticated by `Authorization: Bearer <access token>`.
pub struct Auth(pub AuthContext);

impl Auth {
    pub fn user(&self) -> chat_domain::UserId {
        self.0.user_id
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<State>>().cloned();
        let token = bearer(req).map(str::to_owned);
        Box::pin(async move {
            let (Some(state), Some(token)) = (state, token) else {
                return Err(ApiError::unauthorized());
            };
            let ctx = state.app.accounts.authenticate(&token).await?;
            Ok(Auth(ctx))
        })
    }
}

/// A JSON body, with the contract's errors: `bad_json` for a body that is not
/// UTF-8 JSON, `validation` naming the field for a missing field, a wrong
/// type or an unknown enum value, and 413 over the size limit.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<State>>()
            .map_or(64 * 1024, |s| s.settings.json_limit);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes
                .await
                .map_err(|e| match e.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => ApiError::too_large(limit),
                    _ => ApiError::bad_json("Could not read the request body"),
                })?;
            if bytes.len() > limit {
                return Err(ApiError::too_large(limit));
            }
            parse_json(&bytes).map(Body)
        })
    }
}

/// Parses a JSON document into `T` with the contract's error codes.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| ApiError::bad_json("Body is not valid UTF-8"))?;
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_json(format!("Malformed JSON: {e}")))?;
    from_value(value)
}

/// Reads a parsed JSON object into `T`, naming the bad field on failure.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        match inner
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            Some(field) if path == "." => ApiError::field(field, "is required"),
            Some(field) => ApiError::field(&format!("{path}.{field}"), "is required"),
            None => ApiError::field(&path, inner),
        }
    })
}

/// Collects every bad input of a request, so one answer names them all.
#[derive(Default)]
pub struct Fields(BTreeMap<String, String>);

impl Fields {
    /// Keeps the value, or notes why `name` is bad.
    pub fn check<T, E: Display>(&mut self, name: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.insert(name.to_owned(), e.to_string());
                None
            }
        }
    }

    /// Notes a problem directly.
    pub fn bad(&mut self, name: &str, problem: impl Into<String>) {
        self.0.insert(name.to_owned(), problem.into());
    }

    /// `Err` naming every bad input, if there was one.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}

/// `limit` and `cursor` of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1–100; default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `q`, `limit` and `cursor` of a searchable list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The text to look for (see the endpoint); empty or absent lists everything.
    pub q: Option<String>,
    /// Page size, 1–100; default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The `q` of a search: any text but a NUL character.
pub fn search_text(q: Option<&str>) -> Result<&str, ApiError> {
    let q = q.unwrap_or("");
    if chat_domain::text::has_nul(q) {
        return Err(ApiError::field("q", "must not contain a NUL character"));
    }
    Ok(q)
}

/// A UUID path or body parameter.
pub fn uuid(name: &str, s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|_| ApiError::field(name, "must be a UUID"))
}

/// `limit` (1–100, default 50) and `cursor` of a list.
pub fn page(limit: Option<&str>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    let mut f = Fields::default();
    let limit = f.check("limit", page_limit(limit));
    let after = match cursor.filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => f.check(
            "cursor",
            Cursor::decode(c).ok_or("is not a cursor this server gave out"),
        ),
    };
    f.finish()?;
    Ok(PageRequest {
        limit: limit.unwrap_or(PageLimit::DEFAULT),
        after,
    })
}

/// A `limit` query parameter: 1–100, default 50.
pub fn page_limit(limit: Option<&str>) -> Result<PageLimit, &'static str> {
    const WHY: &str = "must be an integer from 1 to 100";
    match limit {
        None => Ok(PageLimit::DEFAULT),
        Some(s) => s.parse::<i64>().ok().and_then(PageLimit::new).ok_or(WHY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct T {
        #[expect(dead_code)]
        name: String,
        #[expect(dead_code)]
        kind: Option<K>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum K {
        A,
    }

    fn fields(e: ApiError) -> (String, Vec<String>) {
        let body = serde_json::to_value(e_body(&e)).unwrap();
        let fields = body["fields"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        (e.code().to_owned(), fields)
    }

    fn e_body(e: &ApiError) -> serde_json::Value {
        use actix_web::ResponseError;
        let res = e.error_response();
        let body = actix_web::body::to_bytes(res.into_body());
        let bytes = futures_util::FutureExt::now_or_never(body)
            .unwrap()
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn json_errors_have_the_contract_codes() {
        assert_eq!(fields(parse_json::<T>(b"{").unwrap_err()).0, "bad_json");
        assert_eq!(
            fields(parse_json::<T>(b"\xff\xfe").unwrap_err()).0,
            "bad_json"
        );
        assert_eq!(
            fields(parse_json::<T>(b"{}").unwrap_err()),
            ("validation".into(), vec!["name".into()])
        );
        assert_eq!(
            fields(parse_json::<T>(br#"{"name": 5}"#).unwrap_err()),
            ("validation".into(), vec!["name".into()])
        );
        assert_eq!(
            fields(parse_json::<T>(br#"{"name": "x", "kind": "zzz"}"#).unwrap_err()),
            ("validation".into(), vec!["kind".into()])
        );
        assert_eq!(
            fields(parse_json::<T>(b"[1]").unwrap_err()),
            ("validation".into(), vec!["body".into()])
        );
        assert!(parse_json::<T>(br#"{"name": "x", "kind": "a"}"#).is_ok());
    }

    #[test]
    fn limits() {
        assert_eq!(page_limit(None).unwrap().get(), 50);
        assert_eq!(page_limit(Some("100")).unwrap().get(), 100);
        assert!(page_limit(Some("0")).is_err());
        assert!(page_limit(Some("101")).is_err());
        assert!(page_limit(Some("abc")).is_err());
    }
}
