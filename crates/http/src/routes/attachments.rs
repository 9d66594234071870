//! Uploading and downloading attachments.

use actix_multipart::Multipart;
use actix_web::http::header::{
    self, CONTENT_LENGTH, ContentDisposition, DispositionParam, DispositionType, HeaderValue,
};
use actix_web::{HttpRequest, HttpResponse, web};
use chat_app::Upload;
use chat_domain::AttachmentId;
use chat_domain::attachment::served_inline;
use futures_util::StreamExt as _;

use super::path_id;
use crate::dto::AttachmentDto;
use crate::error::ErrorBody;
use crate::extract::Auth;
use crate::{ApiError, State};

/// Room for the multipart framing around the file itself (boundaries, part
/// headers): a body longer than the limit plus this is refused unread.
const FRAMING_SLACK: usize = 16 * 1024;

/// The form of an upload, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the multipart body; never built")]
pub struct UploadForm {
    /// The file. Its part's `filename` is kept (sanitised) and its
    /// `Content-Type` checked: PNG, JPEG, GIF and WebP must be what they say.
    /// Without a type (or with `application/octet-stream`), the type is taken
    /// from the filename's extension.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// Upload a file: `multipart/form-data` with one part named `file`. Over
/// the configured limit (default 10 MiB; exactly the limit is allowed) is
/// 413. Put the answer's `id` in a message's `attachment_id` or in your
/// `avatar_attachment_id`.
#[utoipa::path(post, path = "/api/v1/attachments", tag = "attachments", security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = AttachmentDto),
        (status = 400, description = "no `file` part, or a file that is not what its type says", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many uploads by you; `Retry-After` says when to try again", body = ErrorBody)))]
pub async fn upload(
    state: web::Data<State>,
    auth: Auth,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    state.limits.upload(auth.user()).await?;
    let limit = state.settings.upload_limit;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit.saturating_add(FRAMING_SLACK)) {
        return Err(ApiError::too_large(limit));
    }
    let upload = read_file_part(Multipart::new(req.headers(), payload), limit).await?;
    let attachment = state.app.attachments.upload(auth.user(), upload).await?;
    Ok(HttpResponse::Created().json(AttachmentDto::from(attachment)))
}

fn not_multipart() -> ApiError {
    ApiError::field(
        "file",
        "send multipart/form-data with one part named `file`",
    )
}

/// The one `file` part of the form, at most `limit` bytes; other parts are
/// refused, as is a second file.
async fn read_file_part(mut form: Multipart, limit: usize) -> Result<Upload, ApiError> {
    let mut upload: Option<Upload> = None;
    while let Some(part) = form.next().await {
        let mut part = part.map_err(|_| not_multipart())?;
        let (name, filename) = match part.content_disposition() {
            Some(cd) => (
                cd.get_name().map(str::to_owned),
                cd.get_filename().map(str::to_owned),
            ),
            None => (None, None),
        };
        if name.as_deref() != Some("file") {
            return Err(ApiError::field(
                name.as_deref().unwrap_or("file"),
                "unexpected part: send one part named `file`",
            ));
        }
        if upload.is_some() {
            return Err(ApiError::field("file", "send one file per upload"));
        }
        let content_type = part.content_type().map(ToString::to_string);
        let mut bytes = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|_| not_multipart())?;
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::too_large(limit));
            }
            bytes.extend_from_slice(&chunk);
        }
        upload = Some(Upload {
            filename,
            content_type,
            bytes,
        });
    }
    upload.ok_or_else(not_multipart)
}

/// Download an attachment's bytes, with its type and `X-Content-Type-Options:
/// nosniff`. PNG, JPEG, GIF, WebP, audio and video are served inline;
/// everything else (SVG included) as `Content-Disposition: attachment`.
/// Allowed to the uploader, to members of a room where a message carries
/// it, and to anyone signed in for a user's current avatar; else 404.
/// An attachment's headers without its bytes (type, size, disposition), on
/// the same terms as `GET`: a client can check before it downloads.
#[utoipa::path(head, path = "/api/v1/attachments/{id}", tag = "attachments", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "the headers `GET` would send (`Content-Length` the size in bytes), no body"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn download_head(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // The server writes no body for a HEAD request, only its length.
    download(state, auth, id).await
}

#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "attachments", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "the bytes", content_type = "application/octet-stream"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn download(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = AttachmentId(path_id("id", &id)?);
    let (attachment, bytes) = state.app.attachments.download(auth.user(), id).await?;
    let inline = served_inline(&attachment.content_type);
    let disposition = ContentDisposition {
        disposition: if inline {
            DispositionType::Inline
        } else {
            DispositionType::Attachment
        },
        parameters: vec![filename_param(&attachment.filename)],
    };
    let content_type = HeaderValue::from_str(&attachment.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header(disposition)
        // Whatever the bytes are, they run no script in our origin.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; sandbox"),
        ))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=86400, immutable"),
        ))
        .body(bytes))
}

/// `filename` for an ASCII name, `filename*` (RFC 5987, UTF-8) otherwise.
fn filename_param(name: &str) -> DispositionParam {
    if name.is_ascii() {
        DispositionParam::Filename(name.to_owned())
    } else {
        DispositionParam::FilenameExt(header::ExtendedValue {
            charset: header::Charset::Ext("UTF-8".to_owned()),
            language_tag: None,
            value: name.as_bytes().to_vec(),
        })
    }
}
