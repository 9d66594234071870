//! Attachments: uploading, downloading, who may download, messages that
//! carry them and avatars.

use actix_web::http::{Method, StatusCode};

use crate::support::*;

const PDF: &[u8] = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n";

fn msgs(room: &str) -> String {
    format!("/api/v1/rooms/{room}/messages")
}

/// Sends a message carrying `attachment` (with this extra body); the answer.
async fn send_with(
    api: &Api,
    u: &User,
    room: &str,
    attachment: &Value,
    extra: Value,
) -> (StatusCode, Value) {
    let mut body = json!({"attachment_id": attachment["id"]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    api.post(&msgs(room), &u.token, body).await
}

// ------------------------------------------------------------ upload

#[actix_rt::test]
async fn upload_a_file() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let (st, att) = api.try_upload(&a, "cat.png", Some("image/png"), PNG).await;
    assert_eq!(st, StatusCode::CREATED, "{att}");
    assert_attachment(&att);
    assert_eq!(att["filename"], "cat.png");
    assert_eq!(att["content_type"], "image/png");
    assert_eq!(n(&att["size"]), PNG.len() as u64);
    assert_eq!(att["url"], format!("/api/v1/attachments/{}", s(&att["id"])));
    // Another upload of the same bytes is another attachment.
    let again = api.upload(&a, "cat.png", "image/png", PNG).await;
    assert_ne!(again["id"], att["id"]);
}

#[actix_rt::test]
async fn upload_types_are_normalised_or_taken_from_the_name() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let cases: [(&str, Option<&str>, &[u8], &str); 6] = [
        (
            "notes.txt",
            Some("Text/Plain; charset=utf-8"),
            b"hi",
            "text/plain",
        ),
        (
            "paper.pdf",
            Some("application/octet-stream"),
            PDF,
            "application/pdf",
        ),
        ("paper.pdf", None, PDF, "application/pdf"),
        ("photo.PNG", None, PNG, "image/png"),
        ("blob", None, b"\x00\x01", "application/octet-stream"),
        ("song.ogg", Some("audio/ogg"), b"OggS", "audio/ogg"),
    ];
    for (name, ct, bytes, want) in cases {
        let (st, att) = api.try_upload(&a, name, ct, bytes).await;
        assert_eq!(st, StatusCode::CREATED, "{name} {ct:?}: {att}");
        assert_attachment(&att);
        assert_eq!(att["content_type"], want, "{name} {ct:?}");
        assert_eq!(n(&att["size"]), bytes.len() as u64);
    }
    // An empty file is a file.
    let (st, att) = api
        .try_upload(&a, "empty.txt", Some("text/plain"), b"")
        .await;
    assert_eq!(st, StatusCode::CREATED, "{att}");
    assert_eq!(att["size"], 0);
}

#[actix_rt::test]
async fn filenames_are_sanitised() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let att = api
        .upload(&a, "../../evil\"name.txt", "text/plain", b"gotcha")
        .await;
    let name = s(&att["filename"]);
    assert!(!name.contains('/'), "{name}");
    assert!(!name.contains('\\'), "{name}");
    assert!(!name.contains('"'), "{name}");
    assert!(!name.contains(".."), "{name}");
    assert!(name.ends_with(".txt"), "{name}");
    assert!(name.contains("evil"), "{name}");
    // The download offers the clean name.
    let r = api.download(&a, &s(&att["id"])).await;
    assert_eq!(r.status, StatusCode::OK);
    let cd = header_of(&r, "content-disposition");
    assert!(cd.contains(&name), "{cd}");
    assert!(!cd.contains(".."), "{cd}");
    for raw in ["..", "C:\\temp\\x.txt", "   "] {
        let att = api.upload(&a, raw, "text/plain", b"x").await;
        let name = s(&att["filename"]);
        assert!(
            !name.is_empty() && name != ".." && name != ".",
            "{raw} -> {name}"
        );
        assert!(
            !name.contains('\\') && !name.contains('/'),
            "{raw} -> {name}"
        );
    }
}

#[actix_rt::test]
async fn images_must_be_what_they_say() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    for (name, ct) in [
        ("fake.png", Some("image/png")),
        ("fake.png", None),
        ("fake.jpg", Some("image/jpeg")),
        ("fake.gif", Some("image/gif")),
        ("fake.webp", Some("image/webp")),
    ] {
        let r = api
            .try_upload(&a, name, ct, b"<html><script>alert(1)</script>")
            .await;
        assert_only_field(&r, "file");
    }
}

#[actix_rt::test]
async fn an_upload_needs_one_file_part() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let form = format!("multipart/form-data; boundary={BOUNDARY}");
    // Not multipart at all.
    let r = api
        .upload_raw(
            Some(&a.token),
            "application/json",
            b"{\"file\": \"x\"}".to_vec(),
        )
        .await;
    assert_only_field(&(r.status, r.body), "file");
    // Multipart with no part.
    let r = api.upload_raw(Some(&a.token), &form, multipart(&[])).await;
    assert_only_field(&(r.status, r.body), "file");
    // Multipart, but garbage.
    let r = api
        .upload_raw(Some(&a.token), &form, b"this is not a form".to_vec())
        .await;
    assert_error(&(r.status, r.body), StatusCode::BAD_REQUEST, "validation");
    // A part with another name.
    let body = multipart(&[Part {
        name: "other",
        filename: Some("x.txt"),
        content_type: Some("text/plain"),
        bytes: b"x",
    }]);
    let r = api.upload_raw(Some(&a.token), &form, body).await;
    assert_error(&(r.status, r.body), StatusCode::BAD_REQUEST, "validation");
    // Two files.
    let file = Part {
        name: "file",
        filename: Some("x.txt"),
        content_type: Some("text/plain"),
        bytes: b"x",
    };
    let second = Part {
        name: "file",
        filename: Some("y.txt"),
        content_type: Some("text/plain"),
        bytes: b"y",
    };
    let r = api
        .upload_raw(Some(&a.token), &form, multipart(&[file, second]))
        .await;
    assert_only_field(&(r.status, r.body), "file");
}

#[actix_rt::test]
async fn an_upload_needs_a_token() {
    let api = Api::new().await;
    let form = format!("multipart/form-data; boundary={BOUNDARY}");
    let body = || {
        multipart(&[Part {
            name: "file",
            filename: Some("x.txt"),
            content_type: Some("text/plain"),
            bytes: b"x",
        }])
    };
    let r = api.upload_raw(None, &form, body()).await;
    assert_unauthorized(&(r.status, r.body));
    let r = api.upload_raw(Some("not-a-token"), &form, body()).await;
    assert_unauthorized(&(r.status, r.body));
}

#[actix_rt::test]
async fn uploads_up_to_the_limit() {
    let api = Api::with(Options {
        settings: chat_http::HttpSettings {
            upload_limit: 1024,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let a = api.user("alice").await;
    let exact = vec![b'a'; 1024];
    let att = api.upload(&a, "exact.txt", "text/plain", &exact).await;
    assert_eq!(att["size"], 1024);
    let r = api.download(&a, &s(&att["id"])).await;
    assert_eq!(r.raw, exact);
    let over = vec![b'a'; 1025];
    let r = api
        .try_upload(&a, "over.txt", Some("text/plain"), &over)
        .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    // Far over, refused before reading.
    let huge = vec![b'a'; 64 * 1024];
    let r = api
        .try_upload(&a, "huge.txt", Some("text/plain"), &huge)
        .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    // A PNG over the limit is too large before it is anything else.
    let mut big_png = PNG.to_vec();
    big_png.resize(2048, 0);
    let r = api
        .try_upload(&a, "big.png", Some("image/png"), &big_png)
        .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
}

#[actix_rt::test]
async fn the_default_limit_takes_more_than_a_json_body() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    // Over the 64 KiB JSON limit, far under the 10 MiB upload limit.
    let bytes: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
    let att = api
        .upload(&a, "data.bin", "application/octet-stream", &bytes)
        .await;
    assert_eq!(n(&att["size"]), bytes.len() as u64);
    let r = api.download(&a, &s(&att["id"])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.raw, bytes);
}

// ------------------------------------------------------------ download

#[actix_rt::test]
async fn the_uploader_downloads_the_bytes() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let png = api.upload(&a, "cat.png", "image/png", PNG).await;
    let r = api.download(&a, &s(&png["id"])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.raw, PNG);
    assert_eq!(header_of(&r, "content-type"), "image/png");
    assert_eq!(header_of(&r, "x-content-type-options"), "nosniff");
    let cd = header_of(&r, "content-disposition");
    assert!(cd.starts_with("inline"), "{cd}");
    // Everything but image, audio and video is a download.
    for (name, ct, bytes) in [
        ("notes.txt", "text/plain", &b"plain words"[..]),
        (
            "logo.svg",
            "image/svg+xml",
            &b"<svg onload=\"alert(1)\"/>"[..],
        ),
        ("page.html", "text/html", &b"<script>alert(1)</script>"[..]),
        ("paper.pdf", "application/pdf", PDF),
    ] {
        let att = api.upload(&a, name, ct, bytes).await;
        let r = api.download(&a, &s(&att["id"])).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert_eq!(r.raw, bytes, "{name}");
        assert_eq!(header_of(&r, "content-type"), ct, "{name}");
        assert_eq!(header_of(&r, "x-content-type-options"), "nosniff", "{name}");
        let cd = header_of(&r, "content-disposition");
        assert!(cd.starts_with("attachment"), "{name}: {cd}");
    }
    for (name, ct) in [("song.ogg", "audio/ogg"), ("clip.mp4", "video/mp4")] {
        let att = api.upload(&a, name, ct, b"media").await;
        let r = api.download(&a, &s(&att["id"])).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        let cd = header_of(&r, "content-disposition");
        assert!(cd.starts_with("inline"), "{name}: {cd}");
    }
}

/// `HEAD` answers as `GET` does, headers and all, to whoever `GET` would.
#[actix_rt::test]
async fn head_tells_the_type_and_size_to_those_who_may_download() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let stranger = api.user("stranger").await;
    let png = api.upload(&a, "cat.png", "image/png", PNG).await;
    let uri = format!("/api/v1/attachments/{}", s(&png["id"]));
    let head = |token: String| {
        let uri = uri.clone();
        let api = &api;
        async move {
            api.request(Method::HEAD, &uri, Some(&format!("Bearer {token}")), None)
                .await
        }
    };
    let r = head(a.token.clone()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(header_of(&r, "content-type"), "image/png");
    assert_eq!(header_of(&r, "x-content-type-options"), "nosniff");
    assert_eq!(
        head(stranger.token.clone()).await.status,
        StatusCode::NOT_FOUND
    );
}

#[actix_rt::test]
async fn download_of_an_unknown_or_malformed_id() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let r = api.download(&a, &unknown_id()).await;
    assert_not_found(&(r.status, r.body));
    let r = api.download(&a, "not-a-uuid").await;
    assert_only_field(&(r.status, r.body), "id");
    let png = api.upload(&a, "cat.png", "image/png", PNG).await;
    let r = api.anon(Method::GET, &s(&png["url"]), None).await;
    assert_unauthorized(&r);
}

#[actix_rt::test]
async fn others_download_once_it_is_posted_where_they_are() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let outsider = api.user("eve").await;
    let room = api.private_room(&a, "priv", &[&b]).await;
    let png = api.upload(&a, "cat.png", "image/png", PNG).await;
    let id = s(&png["id"]);
    // Not yet posted: the uploader only.
    for u in [&b, &outsider] {
        assert_not_found(&{
            let r = api.download(u, &id).await;
            (r.status, r.body)
        });
    }
    let (st, m) = send_with(&api, &a, &room, &png, json!({"content": "look"})).await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    let r = api.download(&b, &id).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.raw, PNG);
    let r = api.download(&outsider, &id).await;
    assert_not_found(&(r.status, r.body));
    // The message deleted, it is the uploader's only again.
    let r = api
        .delete(&format!("/api/v1/messages/{}", s(&m["id"])), &a.token)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let r = api.download(&b, &id).await;
    assert_not_found(&(r.status, r.body));
    let r = api.download(&outsider, &id).await;
    assert_not_found(&(r.status, r.body));
    let r = api.download(&a, &id).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[actix_rt::test]
async fn leaving_the_room_ends_the_download() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    let att = api.upload(&a, "notes.txt", "text/plain", b"notes").await;
    let (st, m) = send_with(&api, &a, &room, &att, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    assert_eq!(
        api.download(&b, &s(&att["id"])).await.status,
        StatusCode::OK
    );
    api.leave(&b, &room).await;
    let r = api.download(&b, &s(&att["id"])).await;
    assert_not_found(&(r.status, r.body));
    // A public room's files are for its members, not for anyone.
    let c = api.user("carol").await;
    let r = api.download(&c, &s(&att["id"])).await;
    assert_not_found(&(r.status, r.body));
}

// ------------------------------------------------------------ messages with attachments

#[actix_rt::test]
async fn the_kind_follows_the_attachment() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    for (name, ct, bytes, kind) in [
        ("cat.png", "image/png", PNG, "image"),
        ("paper.pdf", "application/pdf", PDF, "file"),
        ("song.ogg", "audio/ogg", &b"OggS"[..], "audio"),
        ("clip.mp4", "video/mp4", &b"....ftyp"[..], "video"),
        ("notes.txt", "text/plain", &b"hi"[..], "file"),
    ] {
        let att = api.upload(&a, name, ct, bytes).await;
        let (st, m) = send_with(&api, &a, &room, &att, json!({"content": name})).await;
        assert_eq!(st, StatusCode::CREATED, "{name}: {m}");
        assert_message(&m);
        assert_eq!(m["kind"], kind, "{name}");
        assert_eq!(m["attachment"], att, "the whole attachment");
        assert_eq!(m["content"], name);
        assert_eq!(api.message(&a, &room, &m["id"]).await, m);
    }
    // An explicit kind that fits.
    let png = api.upload(&a, "cat.png", "image/png", PNG).await;
    let (st, m) = send_with(&api, &a, &room, &png, json!({"kind": "image"})).await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    assert_eq!(m["kind"], "image");
    let pdf = api.upload(&a, "paper.pdf", "application/pdf", PDF).await;
    let (st, m) = send_with(&api, &a, &room, &pdf, json!({"kind": "file"})).await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    assert_eq!(m["kind"], "file");
    // `file` carries anything, an image too.
    let png2 = api.upload(&a, "dog.png", "image/png", PNG).await;
    let (st, m) = send_with(&api, &a, &room, &png2, json!({"kind": "file"})).await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    assert_eq!(m["kind"], "file");
}

#[actix_rt::test]
async fn content_may_be_empty_with_an_attachment() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    let png = api.upload(&a, "cat.png", "image/png", PNG).await;
    for extra in [json!({}), json!({"content": ""}), json!({"content": "  "})] {
        let (st, m) = send_with(&api, &a, &room, &png, extra.clone()).await;
        assert_eq!(st, StatusCode::CREATED, "{extra}: {m}");
        assert_eq!(m["content"], "");
        assert_eq!(m["kind"], "image");
        assert_eq!(m["attachment"], png);
        // Others see the whole attachment too.
        assert_eq!(api.message(&b, &room, &m["id"]).await["attachment"], png);
    }
    // An image message may be edited down to no text.
    let (_, m) = send_with(&api, &a, &room, &png, json!({"content": "caption"})).await;
    let r = api
        .patch(
            &format!("/api/v1/messages/{}", s(&m["id"])),
            &a.token,
            json!({"content": ""}),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["content"], "");
    assert_eq!(r.1["attachment"], png);
    // Still too long is too long.
    let (st, b) = send_with(&api, &a, &room, &png, json!({"content": "x".repeat(4001)})).await;
    assert_only_field(&(st, b), "content");
}

#[actix_rt::test]
async fn an_attachment_must_fit_its_kind() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    let pdf = api.upload(&a, "paper.pdf", "application/pdf", PDF).await;
    let png = api.upload(&a, "cat.png", "image/png", PNG).await;
    let v0 = api.version(&a, &room).await;
    for (att, kind) in [
        (&pdf, "image"),
        (&pdf, "video"),
        (&pdf, "audio"),
        (&png, "audio"),
        (&png, "text"),
        (&pdf, "text"),
        (&png, "system"),
    ] {
        let r = send_with(&api, &a, &room, att, json!({"content": "x", "kind": kind})).await;
        assert_only_field(&r, "kind");
    }
    // A kind that needs a file, without one.
    for kind in ["image", "video", "audio", "file"] {
        let r = api
            .post(
                &msgs(&room),
                &a.token,
                json!({"content": "x", "kind": kind}),
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "validation");
    }
    // Without an attachment, no text is no message.
    let r = api
        .post(
            &msgs(&room),
            &a.token,
            json!({"content": "", "kind": "image"}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "validation");
    let room_now = api.room(&a, &room).await;
    assert_eq!(room_now["last_seq"], 0);
    assert_eq!(n(&room_now["version"]), v0);
}

#[actix_rt::test]
async fn only_your_own_attachments_can_be_sent() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    let mine = api.upload(&a, "cat.png", "image/png", PNG).await;
    // Even once it is posted where bob can read it.
    let (st, _) = send_with(&api, &a, &room, &mine, json!({})).await;
    assert_eq!(st, StatusCode::CREATED);
    let v0 = api.version(&a, &room).await;
    let r = send_with(&api, &b, &room, &mine, json!({"content": "stolen"})).await;
    assert_only_field(&r, "attachment_id");
    let r = send_with(&api, &b, &room, &json!({"id": unknown_id()}), json!({})).await;
    assert_only_field(&r, "attachment_id");
    let r = send_with(&api, &b, &room, &json!({"id": "not-a-uuid"}), json!({})).await;
    assert_only_field(&r, "attachment_id");
    let r = send_with(&api, &b, &room, &json!({"id": 5}), json!({})).await;
    assert_only_field(&r, "attachment_id");
    let room_now = api.room(&a, &room).await;
    assert_eq!(room_now["last_seq"], 1);
    assert_eq!(n(&room_now["version"]), v0);
}

#[actix_rt::test]
async fn one_file_posted_in_two_rooms() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let one = api.private_room(&a, "one", &[&b]).await;
    let two = api.private_room(&a, "two", &[&c]).await;
    let att = api.upload(&a, "notes.txt", "text/plain", b"shared").await;
    let (_, m1) = send_with(&api, &a, &one, &att, json!({})).await;
    let (st, _) = send_with(&api, &a, &two, &att, json!({})).await;
    assert_eq!(st, StatusCode::CREATED);
    for u in [&b, &c] {
        assert_eq!(api.download(u, &s(&att["id"])).await.status, StatusCode::OK);
    }
    // Deleted in one room, it stays readable in the other.
    let r = api
        .delete(&format!("/api/v1/messages/{}", s(&m1["id"])), &a.token)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let r = api.download(&b, &s(&att["id"])).await;
    assert_not_found(&(r.status, r.body));
    assert_eq!(
        api.download(&c, &s(&att["id"])).await.status,
        StatusCode::OK
    );
}

// ------------------------------------------------------------ avatars

const ME: &str = "/api/v1/users/me";

#[actix_rt::test]
async fn an_avatar_is_an_image_of_your_own() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let png = api.upload(&a, "me.png", "image/png", PNG).await;
    let id = s(&png["id"]);
    let r = api
        .patch(ME, &a.token, json!({"avatar_attachment_id": id}))
        .await;
    assert_status(&r, StatusCode::OK);
    assert_user(&r.1);
    assert_eq!(r.1["avatar_url"], format!("/api/v1/attachments/{id}"));
    assert_eq!(r.1["display_name"], "alice", "untouched");
    assert_eq!(
        api.get(ME, &a.token).await.1["avatar_url"],
        r.1["avatar_url"]
    );
    // Others see it, and may download it.
    let them = api.get(&format!("/api/v1/users/{}", a.id), &b.token).await;
    assert_eq!(them.1["avatar_url"], r.1["avatar_url"]);
    let d = api.download(&b, &id).await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.raw, PNG);
    assert_eq!(header_of(&d, "content-type"), "image/png");
    // Cleared, it is the uploader's only again.
    let r = api
        .patch(ME, &a.token, json!({"avatar_attachment_id": null}))
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["avatar_url"], Value::Null);
    let them = api.get(&format!("/api/v1/users/{}", a.id), &b.token).await;
    assert_eq!(them.1["avatar_url"], Value::Null);
    let d = api.download(&b, &id).await;
    assert_not_found(&(d.status, d.body));
    assert_eq!(api.download(&a, &id).await.status, StatusCode::OK);
}

#[actix_rt::test]
async fn a_new_avatar_replaces_the_old_one() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let first = api.upload(&a, "one.png", "image/png", PNG).await;
    let second = api.upload(&a, "two.gif", "image/gif", b"GIF89a....").await;
    for att in [&first, &second] {
        let r = api
            .patch(ME, &a.token, json!({"avatar_attachment_id": att["id"]}))
            .await;
        assert_status(&r, StatusCode::OK);
        assert_eq!(r.1["avatar_url"], att["url"]);
    }
    assert_eq!(
        api.download(&b, &s(&second["id"])).await.status,
        StatusCode::OK
    );
    let d = api.download(&b, &s(&first["id"])).await;
    assert_not_found(&(d.status, d.body));
    // Changing only the name keeps the avatar.
    let r = api
        .patch(ME, &a.token, json!({"display_name": "Alice"}))
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["avatar_url"], second["url"]);
}

#[actix_rt::test]
async fn a_bad_avatar_is_refused() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let png = api.upload(&a, "me.png", "image/png", PNG).await;
    let r = api
        .patch(ME, &a.token, json!({"avatar_attachment_id": png["id"]}))
        .await;
    assert_status(&r, StatusCode::OK);
    let txt = api
        .upload(&a, "me.txt", "text/plain", b"not an image")
        .await;
    let svg = api.upload(&a, "me.svg", "image/svg+xml", b"<svg/>").await;
    let pdf = api.upload(&a, "me.pdf", "application/pdf", PDF).await;
    let theirs = api.upload(&b, "bob.png", "image/png", PNG).await;
    for bad in [
        txt["id"].clone(),
        svg["id"].clone(),
        pdf["id"].clone(),
        theirs["id"].clone(),
        json!(unknown_id()),
        json!("not-a-uuid"),
        json!(5),
    ] {
        let r = api
            .patch(ME, &a.token, json!({"avatar_attachment_id": bad}))
            .await;
        assert_only_field(&r, "avatar_attachment_id");
    }
    // Nothing changed, nor with a good name beside a bad avatar.
    let r = api
        .patch(
            ME,
            &a.token,
            json!({"display_name": "New", "avatar_attachment_id": txt["id"]}),
        )
        .await;
    assert_only_field(&r, "avatar_attachment_id");
    let me = api.get(ME, &a.token).await.1;
    assert_eq!(me["avatar_url"], png["url"]);
    assert_eq!(me["display_name"], "alice");
    // Bob's file stays bob's.
    let d = api.download(&a, &s(&theirs["id"])).await;
    assert_not_found(&(d.status, d.body));
}

#[actix_rt::test]
async fn late_joiners_read_and_a_deleted_room_takes_its_files_along() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let c = api.user("carol").await;
    let root = api.user("root").await;
    let room = api.public_room(&a, "pub").await;
    let att = api
        .upload(&a, "notes.txt", "text/plain", b"for members")
        .await;
    let (st, _) = send_with(&api, &a, &room, &att, json!({})).await;
    assert_eq!(st, StatusCode::CREATED);
    let id = s(&att["id"]);
    // Not a member: not even a global admin reads it.
    for u in [&c, &root] {
        let r = api.download(u, &id).await;
        assert_not_found(&(r.status, r.body));
    }
    // Joining after it was posted is enough.
    api.join(&c, &room).await;
    let r = api.download(&c, &id).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.raw, b"for members");
    // The room deleted, its messages go and the file is the uploader's again.
    let r = api.delete(&format!("/api/v1/rooms/{room}"), &a.token).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let r = api.download(&c, &id).await;
    assert_not_found(&(r.status, r.body));
    assert_eq!(api.download(&a, &id).await.status, StatusCode::OK);
}

#[actix_rt::test]
async fn downloads_are_sandboxed_and_keep_unicode_names() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let att = api.upload(&a, "résumé ✓.pdf", "application/pdf", PDF).await;
    assert_eq!(att["filename"], "résumé ✓.pdf");
    let r = api.download(&a, &s(&att["id"])).await;
    assert_eq!(r.status, StatusCode::OK);
    let cd = header_of(&r, "content-disposition");
    assert!(cd.starts_with("attachment"), "{cd}");
    assert!(cd.contains("filename*=UTF-8''"), "{cd}");
    assert!(cd.contains("r%C3%A9sum%C3%A9"), "{cd}");
    let csp = header_of(&r, "content-security-policy");
    assert!(csp.contains("sandbox"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
}
