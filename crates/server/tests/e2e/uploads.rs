//! Uploads over a real socket: the limit answers 413 that the client reads
//! (not a reset connection), on disk as configured.

use serde_json::json;

use crate::support::*;

/// A `multipart/form-data` body with one `file` part.
fn form(bytes: &[u8], filename: &str, content_type: &str) -> (String, Vec<u8>) {
    let boundary = "e2e-boundary-7d1f";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(s: &Server, token: &str, bytes: &[u8]) -> (u16, serde_json::Value) {
    let (ct, body) = form(bytes, "notes.txt", "text/plain");
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/attachments", s.base))
        .bearer_auth(token)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

both!(the_upload_limit_is_a_clean_413, |store| async move {
    let dir = std::env::temp_dir().join(format!("chat-e2e-files-{}", uuid::Uuid::now_v7()));
    let s = Server::start_with(
        store,
        &[
            ("CHAT__STORAGE__MAX_UPLOAD_BYTES", "4096"),
            ("CHAT__STORAGE__DIR", dir.to_str().unwrap()),
        ],
    )
    .await;
    let alice = s.user("alice").await;
    // Exactly the limit is allowed, and lands on disk.
    let (status, a) = upload(&s, &alice.token, &[b'x'; 4096]).await;
    assert_eq!(status, 201, "{a}");
    assert_eq!(a["size"], 4096);
    let files = walk(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), 4096);
    // One byte over, read to the end and refused.
    let (status, e) = upload(&s, &alice.token, &[b'x'; 4097]).await;
    assert_eq!((status, e["code"].clone()), (413, json!("too_large")));
    // Far over: refused from its Content-Length, and still answered.
    let (status, e) = upload(&s, &alice.token, &vec![b'x'; 2 * 1024 * 1024]).await;
    assert_eq!((status, e["code"].clone()), (413, json!("too_large")));
    assert_eq!(walk(&dir).len(), 1, "nothing stored for refused uploads");
    // The stored bytes come back whole, as a download (text is not inline).
    let res = reqwest::Client::new()
        .get(format!("{}{}", s.base, a["url"].as_str().unwrap()))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()["content-disposition"].to_str().unwrap(),
        "attachment; filename=\"notes.txt\""
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.bytes().await.unwrap().len(), 4096);
    std::fs::remove_dir_all(&dir).unwrap();
});

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
