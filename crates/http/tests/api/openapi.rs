//! `GET /api/v1/openapi.json` agrees with the contract: every route, its
//! success status, its security, its parameters and the shapes of its bodies.

use std::collections::BTreeSet;

use actix_web::http::{Method, StatusCode};

use crate::support::*;

async fn doc() -> Value {
    let api = Api::new().await;
    let r = api.anon(Method::GET, "/api/v1/openapi.json", None).await;
    assert_status(&r, StatusCode::OK);
    r.1
}

/// Follows `$ref`s to the schema itself.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..20 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            return v;
        };
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        v = &doc["components"]["schemas"][name];
        assert!(!v.is_null(), "dangling $ref {r}");
    }
    panic!("$ref loop");
}

/// The property names of an object schema, through `$ref` and `allOf`.
fn props(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let s = resolve(doc, schema);
    let mut out = BTreeSet::new();
    if let Some(p) = s["properties"].as_object() {
        out.extend(p.keys().cloned());
    }
    for key in ["allOf"] {
        if let Some(parts) = s[key].as_array() {
            for part in parts {
                out.extend(props(doc, part));
            }
        }
    }
    out
}

/// One property's schema, through `$ref` and `allOf`.
fn prop<'a>(doc: &'a Value, schema: &'a Value, name: &str) -> &'a Value {
    let s = resolve(doc, schema);
    if let Some(p) = s["properties"].get(name) {
        return p;
    }
    if let Some(parts) = s["allOf"].as_array() {
        for part in parts {
            let found = prop(doc, part, name);
            if !found.is_null() {
                return found;
            }
        }
    }
    &Value::Null
}

/// The enum values of a property, through `$ref`, `oneOf` and `allOf`.
fn enum_values(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let s = resolve(doc, schema);
    let mut out: BTreeSet<String> = s["enum"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for key in ["oneOf", "allOf", "anyOf"] {
        if let Some(parts) = s[key].as_array() {
            for part in parts {
                out.extend(enum_values(doc, part));
            }
        }
    }
    out
}

fn op<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    let o = &doc["paths"][path][method];
    assert!(o.is_object(), "openapi.json lacks {method} {path}");
    o
}

fn response_schema<'a>(doc: &'a Value, path: &str, method: &str, status: &str) -> &'a Value {
    let s = &op(doc, path, method)["responses"][status]["content"]["application/json"]["schema"];
    assert!(
        !s.is_null(),
        "no JSON body documented for {status} of {method} {path}"
    );
    s
}

fn request_schema<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    let s = &op(doc, path, method)["requestBody"]["content"]["application/json"]["schema"];
    assert!(
        !s.is_null(),
        "no JSON request body documented for {method} {path}"
    );
    s
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

const USER: &[&str] = &[
    "id",
    "username",
    "email",
    "display_name",
    "avatar_url",
    "role",
    "created_at",
];
const PUBLIC_USER: &[&str] = &[
    "id",
    "username",
    "display_name",
    "avatar_url",
    "presence",
    "last_seen_at",
];
const MESSAGE: &[&str] = &[
    "id",
    "room_id",
    "seq",
    "sender",
    "kind",
    "content",
    "attachment",
    "reply_to_id",
    "reactions",
    "created_at",
    "edited_at",
    "deleted",
];

/// (path, method, success statuses, secured)
const OPS: &[(&str, &str, &[&str], bool)] = &[
    ("/health", "get", &["200"], false),
    ("/ready", "get", &["200", "503"], false),
    (
        "/api/v1/auth/register",
        "post",
        &["201", "400", "409"],
        false,
    ),
    ("/api/v1/auth/login", "post", &["200", "401"], false),
    ("/api/v1/auth/refresh", "post", &["200", "401"], false),
    ("/api/v1/auth/logout", "post", &["204"], true),
    ("/api/v1/users/me", "get", &["200"], true),
    ("/api/v1/users/me", "patch", &["200", "400"], true),
    ("/api/v1/users/me/rooms", "get", &["200"], true),
    ("/api/v1/users/me/blocks", "get", &["200"], true),
    ("/api/v1/users", "get", &["200", "400"], true),
    ("/api/v1/users/{id}", "get", &["200", "404"], true),
    ("/api/v1/users/{id}/block", "put", &["204"], true),
    ("/api/v1/users/{id}/block", "delete", &["204"], true),
    ("/api/v1/rooms", "post", &["201", "400"], true),
    ("/api/v1/rooms", "get", &["200"], true),
    ("/api/v1/dms", "post", &["201", "200", "403"], true),
    ("/api/v1/rooms/{id}", "get", &["200", "404"], true),
    ("/api/v1/rooms/{id}", "patch", &["200", "403", "404"], true),
    ("/api/v1/rooms/{id}", "delete", &["204", "403", "404"], true),
    (
        "/api/v1/rooms/{id}/join",
        "post",
        &["200", "403", "404"],
        true,
    ),
    ("/api/v1/rooms/{id}/leave", "post", &["204"], true),
    ("/api/v1/rooms/{id}/members", "get", &["200", "404"], true),
    (
        "/api/v1/rooms/{id}/members",
        "post",
        &["201", "403", "404", "409"],
        true,
    ),
    (
        "/api/v1/rooms/{id}/members/{user_id}",
        "delete",
        &["204", "403", "404"],
        true,
    ),
    (
        "/api/v1/rooms/{id}/members/{user_id}/role",
        "put",
        &["200", "403", "404"],
        true,
    ),
    ("/api/v1/rooms/{id}/bans", "post", &["204", "403"], true),
    (
        "/api/v1/rooms/{id}/bans/{user_id}",
        "delete",
        &["204", "404"],
        true,
    ),
    (
        "/api/v1/rooms/{id}/messages",
        "post",
        &["201", "200", "400", "403", "404"],
        true,
    ),
    (
        "/api/v1/rooms/{id}/messages",
        "get",
        &["200", "400", "403", "404"],
        true,
    ),
    ("/api/v1/rooms/{id}/read", "post", &["204", "400"], true),
    (
        "/api/v1/rooms/{id}/receipts",
        "get",
        &["200", "403", "404"],
        true,
    ),
    (
        "/api/v1/messages/{id}",
        "patch",
        &["200", "400", "403", "404"],
        true,
    ),
    (
        "/api/v1/messages/{id}",
        "delete",
        &["204", "403", "404"],
        true,
    ),
    (
        "/api/v1/messages/{id}/reactions/{emoji}",
        "put",
        &["204", "400", "403", "404"],
        true,
    ),
    (
        "/api/v1/messages/{id}/reactions/{emoji}",
        "delete",
        &["204", "400", "403", "404"],
        true,
    ),
    ("/api/v1/search/messages", "get", &["200", "400"], true),
    ("/api/v1/attachments", "post", &["201", "400", "413"], true),
    ("/api/v1/attachments/{id}", "get", &["200", "404"], true),
];

#[actix_rt::test]
async fn every_operation_documents_its_statuses_and_security() {
    let doc = doc().await;
    for (path, method, statuses, secured) in OPS {
        let o = op(&doc, path, method);
        for st in *statuses {
            assert!(
                o["responses"].get(*st).is_some(),
                "{method} {path} does not document {st}"
            );
        }
        let security = o["security"].as_array().map_or(0, Vec::len);
        if *secured {
            assert!(
                security > 0,
                "{method} {path} does not say it needs the bearer token"
            );
            let names: Vec<&String> = o["security"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|s| s.as_object())
                .flat_map(|m| m.keys())
                .collect();
            assert!(
                names.iter().all(|n| *n == "bearer"),
                "{method} {path}: {names:?}"
            );
        } else {
            assert_eq!(security, 0, "{method} {path} needs no token");
        }
    }
}

#[actix_rt::test]
async fn parameters_are_documented() {
    let doc = doc().await;
    let params = |path: &str, method: &str, place: &str| -> BTreeSet<String> {
        op(&doc, path, method)["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == place)
                    .map(|p| s(&p["name"]))
                    .collect()
            })
            .unwrap_or_default()
    };
    let lists: &[(&str, &[&str])] = &[
        ("/api/v1/users", &["q", "limit", "cursor"]),
        ("/api/v1/rooms", &["q", "limit", "cursor"]),
        ("/api/v1/users/me/rooms", &["limit", "cursor"]),
        ("/api/v1/users/me/blocks", &["limit", "cursor"]),
        ("/api/v1/rooms/{id}/members", &["limit", "cursor"]),
        ("/api/v1/rooms/{id}/receipts", &["limit", "cursor"]),
        (
            "/api/v1/search/messages",
            &["q", "room_id", "limit", "cursor"],
        ),
    ];
    for (path, want) in lists {
        assert_eq!(
            params(path, "get", "query"),
            set(want),
            "query parameters of GET {path}"
        );
    }
    // Query parameters are optional, and `limit` is a number.
    for (path, method) in lists
        .iter()
        .map(|(p, _)| (*p, "get"))
        .chain([("/api/v1/rooms/{id}/messages", "get")])
    {
        for p in op(&doc, path, method)["parameters"].as_array().unwrap() {
            if p["in"] != "query" {
                continue;
            }
            assert_ne!(p["required"], true, "{method} {path}: {p}");
            if p["name"] == "limit" {
                let ty = &p["schema"]["type"];
                let integer = ty == "integer"
                    || ty
                        .as_array()
                        .is_some_and(|a| a.iter().any(|t| t == "integer"));
                assert!(integer, "{method} {path}: limit is documented as {ty}");
            }
        }
    }
    let h = params("/api/v1/rooms/{id}/messages", "get", "query");
    assert_eq!(h, set(&["before", "after", "limit"]));
    for (path, method, _, _) in OPS {
        let want: BTreeSet<String> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(String::from)
            .collect();
        assert_eq!(
            params(path, method, "path"),
            want,
            "path parameters of {method} {path}"
        );
    }
}

#[actix_rt::test]
async fn response_shapes_match_the_contract() {
    let doc = doc().await;
    let d = &doc;
    assert_eq!(
        props(d, response_schema(d, "/health", "get", "200")),
        set(&["status", "timestamp"])
    );
    assert_eq!(
        props(
            d,
            response_schema(d, "/api/v1/auth/register", "post", "201")
        ),
        set(USER)
    );
    assert_eq!(
        props(d, response_schema(d, "/api/v1/users/me", "get", "200")),
        set(USER)
    );
    assert_eq!(
        props(d, response_schema(d, "/api/v1/users/me", "patch", "200")),
        set(USER)
    );
    let tokens = response_schema(d, "/api/v1/auth/login", "post", "200");
    assert_eq!(
        props(d, tokens),
        set(&["token", "expires_at", "refresh_token", "user"])
    );
    assert_eq!(props(d, prop(d, tokens, "user")), set(USER));
    assert_eq!(
        props(d, response_schema(d, "/api/v1/auth/refresh", "post", "200")),
        set(&["token", "expires_at", "refresh_token", "user"])
    );
    assert_eq!(
        props(d, response_schema(d, "/api/v1/users/{id}", "get", "200")),
        set(PUBLIC_USER)
    );
    for path in ["/api/v1/users", "/api/v1/users/me/blocks"] {
        let page = response_schema(d, path, "get", "200");
        assert_eq!(props(d, page), set(&["items", "next_cursor"]), "{path}");
        assert_eq!(
            props(d, &resolve(d, prop(d, page, "items"))["items"]),
            set(PUBLIC_USER),
            "{path}"
        );
    }
    let room = response_schema(d, "/api/v1/rooms/{id}", "get", "200");
    assert_eq!(props(d, room), set(ROOM_KEYS));
    assert_eq!(
        enum_values(d, prop(d, room, "kind")),
        set(&["public", "private", "direct"])
    );
    for (path, method, status) in [
        ("/api/v1/rooms", "post", "201"),
        ("/api/v1/dms", "post", "201"),
        ("/api/v1/rooms/{id}", "patch", "200"),
        ("/api/v1/rooms/{id}/join", "post", "200"),
    ] {
        assert_eq!(
            props(d, response_schema(d, path, method, status)),
            set(ROOM_KEYS),
            "{method} {path}"
        );
    }
    let dir = response_schema(d, "/api/v1/rooms", "get", "200");
    assert_eq!(
        props(d, &resolve(d, prop(d, dir, "items"))["items"]),
        set(ROOM_KEYS)
    );
    let mine = response_schema(d, "/api/v1/users/me/rooms", "get", "200");
    let mut my_room = set(ROOM_KEYS);
    my_room.extend(set(&["my_role", "unread_count", "last_message"]));
    assert_eq!(
        props(d, &resolve(d, prop(d, mine, "items"))["items"]),
        my_room
    );
    let members = response_schema(d, "/api/v1/rooms/{id}/members", "get", "200");
    let member = &resolve(d, prop(d, members, "items"))["items"];
    assert_eq!(props(d, member), set(&["user", "role", "joined_at"]));
    assert_eq!(props(d, prop(d, member, "user")), set(PUBLIC_USER));
    assert_eq!(
        enum_values(d, prop(d, member, "role")),
        set(&["member", "admin", "owner"])
    );
    for (path, method, status) in [
        ("/api/v1/rooms/{id}/members", "post", "201"),
        ("/api/v1/rooms/{id}/members/{user_id}/role", "put", "200"),
    ] {
        assert_eq!(
            props(d, response_schema(d, path, method, status)),
            set(&["user", "role", "joined_at"]),
            "{method} {path}"
        );
    }
    let msg = response_schema(d, "/api/v1/rooms/{id}/messages", "post", "201");
    assert_eq!(props(d, msg), set(MESSAGE));
    assert_eq!(
        props(d, prop(d, msg, "sender")),
        set(&["id", "username", "display_name"])
    );
    assert_eq!(
        enum_values(d, prop(d, msg, "kind")),
        set(&["text", "image", "video", "audio", "file", "system"])
    );
    assert_eq!(
        props(d, &resolve(d, prop(d, msg, "reactions"))["items"]),
        set(&["emoji", "count", "me"])
    );
    let hist = response_schema(d, "/api/v1/rooms/{id}/messages", "get", "200");
    assert_eq!(props(d, hist), set(&["messages", "has_more"]));
    assert_eq!(
        props(d, &resolve(d, prop(d, hist, "messages"))["items"]),
        set(MESSAGE)
    );
    // Every documented error body is the contract's.
    let err = response_schema(d, "/api/v1/auth/register", "post", "409");
    assert_eq!(
        props(d, err),
        set(&["error", "code", "fields", "retry_after"])
    );
}

#[actix_rt::test]
async fn request_shapes_match_the_contract() {
    let doc = doc().await;
    let d = &doc;
    let required = |schema: &Value| -> BTreeSet<String> {
        resolve(d, schema)["required"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default()
    };
    let reg = request_schema(d, "/api/v1/auth/register", "post");
    assert_eq!(
        props(d, reg),
        set(&["username", "email", "password", "display_name"])
    );
    assert_eq!(required(reg), set(&["username", "email", "password"]));
    let login = request_schema(d, "/api/v1/auth/login", "post");
    assert_eq!(props(d, login), set(&["username", "email", "password"]));
    assert_eq!(required(login), set(&["password"]));
    let refresh = request_schema(d, "/api/v1/auth/refresh", "post");
    assert_eq!(props(d, refresh), set(&["refresh_token"]));
    assert_eq!(required(refresh), set(&["refresh_token"]));
    let me = request_schema(d, "/api/v1/users/me", "patch");
    assert_eq!(props(d, me), set(&["display_name", "avatar_attachment_id"]));
    assert!(required(me).is_empty());
    let create = request_schema(d, "/api/v1/rooms", "post");
    assert_eq!(
        props(d, create),
        set(&["name", "description", "kind", "member_ids"])
    );
    assert_eq!(required(create), set(&["name"]));
    assert_eq!(
        enum_values(d, prop(d, create, "kind")),
        set(&["public", "private"])
    );
    let patch = request_schema(d, "/api/v1/rooms/{id}", "patch");
    assert_eq!(props(d, patch), set(&["name", "description"]));
    assert!(required(patch).is_empty());
    for (path, method) in [
        ("/api/v1/dms", "post"),
        ("/api/v1/rooms/{id}/members", "post"),
        ("/api/v1/rooms/{id}/bans", "post"),
    ] {
        let b = request_schema(d, path, method);
        assert_eq!(props(d, b), set(&["user_id"]), "{method} {path}");
        assert_eq!(required(b), set(&["user_id"]), "{method} {path}");
    }
    let role = request_schema(d, "/api/v1/rooms/{id}/members/{user_id}/role", "put");
    assert_eq!(props(d, role), set(&["role"]));
    assert_eq!(
        enum_values(d, prop(d, role, "role")),
        set(&["admin", "member"])
    );
    let send = request_schema(d, "/api/v1/rooms/{id}/messages", "post");
    assert_eq!(
        props(d, send),
        set(&[
            "content",
            "kind",
            "attachment_id",
            "reply_to_id",
            "client_msg_id"
        ])
    );
    let read = request_schema(d, "/api/v1/rooms/{id}/read", "post");
    assert_eq!(props(d, read), set(&["seq"]));
    assert_eq!(required(read), set(&["seq"]));
    let edit = request_schema(d, "/api/v1/messages/{id}", "patch");
    assert_eq!(props(d, edit), set(&["content"]));
    assert_eq!(required(edit), set(&["content"]));
    let upload = &op(d, "/api/v1/attachments", "post")["requestBody"]["content"];
    let form = &upload["multipart/form-data"]["schema"];
    assert_eq!(props(d, form), set(&["file"]), "{upload}");
}

#[actix_rt::test]
async fn rich_messaging_shapes_and_examples() {
    let doc = doc().await;
    let d = &doc;
    let item = |path: &str| {
        let page = response_schema(d, path, "get", "200");
        assert_eq!(props(d, page), set(&["items", "next_cursor"]), "{path}");
        resolve(d, prop(d, page, "items"))["items"].clone()
    };
    let receipt = item("/api/v1/rooms/{id}/receipts");
    assert_eq!(
        props(d, &receipt),
        set(&["user_id", "last_read_seq", "last_delivered_seq"])
    );
    let hit = item("/api/v1/search/messages");
    assert_eq!(props(d, &hit), set(&["message", "room", "rank"]));
    assert_eq!(
        props(d, prop(d, &hit, "room")),
        set(&["id", "name", "kind"])
    );
    let attachment = response_schema(d, "/api/v1/attachments", "post", "201");
    assert_eq!(
        props(d, attachment),
        set(&["id", "url", "filename", "content_type", "size"])
    );
    assert_eq!(
        props(
            d,
            response_schema(d, "/api/v1/messages/{id}", "patch", "200")
        ),
        set(MESSAGE)
    );
    // The message and attachment schemas carry examples a client can read.
    for name in ["MessageDto", "AttachmentDto", "ReceiptDto"] {
        let schema = &d["components"]["schemas"][name];
        assert!(
            schema["example"].is_object(),
            "{name} has no example: {schema}"
        );
    }
}
