//! `/users/me`, user search, `/users/{id}`, blocks.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;

use crate::support::*;

// ------------------------------------------------------------ me

#[actix_rt::test]
async fn me_is_the_full_user() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let r = api.get("/api/v1/users/me", &a.token).await;
    assert_status(&r, StatusCode::OK);
    assert_user(&r.1);
    assert_eq!(r.1["id"], a.id.as_str());
    assert_eq!(r.1["username"], "alice");
    assert_eq!(r.1["email"], "alice@example.com");
    assert_eq!(r.1["display_name"], "alice");
    assert_eq!(r.1["role"], "user");
    assert_eq!(r.1["avatar_url"], Value::Null);
}

#[actix_rt::test]
async fn a_configured_admin_has_role_admin() {
    let api = Api::new().await;
    let reg = api.register("root").await;
    assert_eq!(reg["role"], "admin");
    let login = api.login("root", PASSWORD).await;
    assert_eq!(login["user"]["role"], "admin");
    let r = api.get("/api/v1/users/me", &s(&login["token"])).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["role"], "admin");
    // Everyone else is a plain user.
    let a = api.user("rooted").await;
    assert_eq!(
        api.get("/api/v1/users/me", &a.token).await.1["role"],
        "user"
    );
}

#[actix_rt::test]
async fn patch_me_changes_the_display_name() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let r = api
        .patch(
            "/api/v1/users/me",
            &a.token,
            json!({"display_name": "Alice Liddell"}),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert_user(&r.1);
    assert_eq!(r.1["display_name"], "Alice Liddell");
    assert_eq!(r.1["username"], "alice");
    assert_eq!(r.1["email"], "alice@example.com");
    let me = api.get("/api/v1/users/me", &a.token).await;
    assert_eq!(me.1["display_name"], "Alice Liddell");
    // 64 multi-byte characters fit.
    let long = "é".repeat(64);
    let r = api
        .patch("/api/v1/users/me", &a.token, json!({"display_name": long}))
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["display_name"], long.as_str());
    // An empty patch changes nothing.
    let r = api.patch("/api/v1/users/me", &a.token, json!({})).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["display_name"], long.as_str());
    // Clearing the avatar is allowed.
    let r = api
        .patch(
            "/api/v1/users/me",
            &a.token,
            json!({"avatar_attachment_id": null}),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["avatar_url"], Value::Null);
    // Others see the new name.
    let b = api.user("bob").await;
    let r = api.get(&format!("/api/v1/users/{}", a.id), &b.token).await;
    assert_eq!(r.1["display_name"], long.as_str());
}

#[actix_rt::test]
async fn patch_me_validates() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    for dn in [
        json!(""),
        json!("   "),
        json!("x".repeat(65)),
        json!(5),
        json!(["x"]),
    ] {
        let r = api
            .patch("/api/v1/users/me", &a.token, json!({"display_name": dn}))
            .await;
        assert_only_field(&r, "display_name");
    }
    let r = api
        .patch(
            "/api/v1/users/me",
            &a.token,
            json!({"avatar_attachment_id": 5}),
        )
        .await;
    assert_only_field(&r, "avatar_attachment_id");
    let r = api
        .call_raw(
            actix_web::http::Method::PATCH,
            "/api/v1/users/me",
            Some(&a.token),
            b"{\"display_name\": ",
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_json");
    assert_eq!(
        api.get("/api/v1/users/me", &a.token).await.1["display_name"],
        "alice"
    );
}

// ------------------------------------------------------------ get

#[actix_rt::test]
async fn get_user_is_public_and_never_shows_the_email() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let r = api.get(&format!("/api/v1/users/{}", a.id), &b.token).await;
    assert_status(&r, StatusCode::OK);
    assert_public_user(&r.1);
    assert_eq!(r.1["id"], a.id.as_str());
    assert_eq!(r.1["username"], "alice");
    assert_eq!(r.1["display_name"], "alice");
    assert_eq!(r.1["presence"], "offline");
    assert_no_email(&r.1, &a.email);
}

#[actix_rt::test]
async fn get_user_unknown_or_bad_id() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    assert_not_found(
        &api.get(&format!("/api/v1/users/{}", unknown_id()), &a.token)
            .await,
    );
    let r = api.get("/api/v1/users/not-a-uuid", &a.token).await;
    assert_only_field(&r, "id");
    let r = api.get("/api/v1/users/123", &a.token).await;
    assert_only_field(&r, "id");
}

// ------------------------------------------------------------ search

#[actix_rt::test]
async fn search_is_a_case_insensitive_prefix_of_username_or_display_name() {
    let api = Api::new().await;
    let searcher = api.user("zed").await;
    let alice = api.user("alice").await;
    let alicia = api.user("Alicia").await;
    let malice = api.user("malice").await;
    let bob = api.user("bob").await;
    api.patch(
        "/api/v1/users/me",
        &bob.token,
        json!({"display_name": "Alistair Bob"}),
    )
    .await;
    let names = |items: &Vec<Value>| -> BTreeSet<String> {
        items.iter().map(|u| s(&u["username"])).collect()
    };
    for q in ["ali", "ALI", "aLi"] {
        let items = api
            .walk(&searcher.token, &format!("/api/v1/users?q={q}"), 50)
            .await;
        assert_eq!(
            names(&items),
            ["alice", "Alicia", "bob"]
                .into_iter()
                .map(String::from)
                .collect(),
            "q={q}"
        );
        for u in &items {
            assert_public_user(u);
        }
        for who in [&alice, &alicia, &malice, &bob, &searcher] {
            assert_no_email(&Value::Array(items.clone()), &who.email);
        }
    }
    // A plain page answers {items, next_cursor}.
    let r = api.get("/api/v1/users?q=alicia", &searcher.token).await;
    assert_status(&r, StatusCode::OK);
    assert_keys(&r.1, &["items", "next_cursor"]);
    assert_eq!(r.1["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.1["next_cursor"], Value::Null);
    assert_eq!(r.1["items"][0]["id"], alicia.id.as_str());
    // Nothing matches: an empty page.
    let r = api
        .get("/api/v1/users?q=nobody-here", &searcher.token)
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["items"], json!([]));
    assert_eq!(r.1["next_cursor"], Value::Null);
}

#[actix_rt::test]
async fn search_pages_walk_without_gaps_or_duplicates() {
    let api = Api::new().await;
    let mut want = BTreeSet::new();
    for i in 0..7 {
        let u = api.user(&format!("pager{i}")).await;
        want.insert(u.id);
    }
    let other = api.user("other").await;
    let items = api.walk(&other.token, "/api/v1/users?q=pager", 2).await;
    let got: Vec<String> = items.iter().map(|u| s(&u["id"])).collect();
    let unique: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), unique.len(), "duplicates: {got:?}");
    assert_eq!(unique, want);
    // Without a query: everybody, each once.
    let all = api.walk(&other.token, "/api/v1/users", 3).await;
    assert_eq!(all.len(), 8);
}

#[actix_rt::test]
async fn search_validates_limit_and_cursor() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    for l in ["0", "101", "abc", "-1", "1.5", ""] {
        let r = api.get(&format!("/api/v1/users?limit={l}"), &a.token).await;
        if l.is_empty() {
            // An empty limit is either the default or a bad limit, never a 500.
            assert!(
                r.0 == StatusCode::OK || r.0 == StatusCode::BAD_REQUEST,
                "{}",
                r.1
            );
            continue;
        }
        assert_only_field(&r, "limit");
    }
    for l in ["1", "100"] {
        assert_status(
            &api.get(&format!("/api/v1/users?limit={l}"), &a.token).await,
            StatusCode::OK,
        );
    }
    for c in ["garbage", "!!!", "AAAA", &pct(&"x".repeat(300))] {
        let r = api
            .get(&format!("/api/v1/users?cursor={c}"), &a.token)
            .await;
        assert_only_field(&r, "cursor");
    }
    let r = api
        .get("/api/v1/users?limit=0&cursor=garbage", &a.token)
        .await;
    assert_fields(&r, &["limit", "cursor"]);
}

// ------------------------------------------------------------ blocks

#[actix_rt::test]
async fn block_unblock_and_list() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let r = api.get("/api/v1/users/me/blocks", &a.token).await;
    assert_status(&r, StatusCode::OK);
    assert_keys(&r.1, &["items", "next_cursor"]);
    assert_eq!(r.1["items"], json!([]));

    let r = api
        .put(&format!("/api/v1/users/{}/block", b.id), &a.token, None)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert!(r.1.is_null());
    // Blocking twice is no error and lists once.
    let r = api
        .put(&format!("/api/v1/users/{}/block", b.id), &a.token, None)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let r = api
        .put(&format!("/api/v1/users/{}/block", c.id), &a.token, None)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);

    let items = api.walk(&a.token, "/api/v1/users/me/blocks", 50).await;
    let ids: BTreeSet<String> = items.iter().map(|u| s(&u["id"])).collect();
    assert_eq!(items.len(), 2);
    assert_eq!(ids, [b.id.clone(), c.id.clone()].into_iter().collect());
    for u in &items {
        assert_public_user(u);
    }
    assert_no_email(&Value::Array(items.clone()), &b.email);
    assert_no_email(&Value::Array(items), &c.email);
    // Bob's own list is his own.
    let r = api.get("/api/v1/users/me/blocks", &b.token).await;
    assert_eq!(r.1["items"], json!([]));

    let r = api
        .delete(&format!("/api/v1/users/{}/block", b.id), &a.token)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let items = api.walk(&a.token, "/api/v1/users/me/blocks", 50).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], c.id.as_str());
    // Unblocking someone not blocked is fine.
    let r = api
        .delete(&format!("/api/v1/users/{}/block", b.id), &a.token)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
}

#[actix_rt::test]
async fn block_unknown_or_bad_id() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let r = api
        .put(
            &format!("/api/v1/users/{}/block", unknown_id()),
            &a.token,
            None,
        )
        .await;
    assert_not_found(&r);
    let r = api
        .delete(&format!("/api/v1/users/{}/block", unknown_id()), &a.token)
        .await;
    assert_not_found(&r);
    let r = api.put("/api/v1/users/nope/block", &a.token, None).await;
    assert_only_field(&r, "id");
    let r = api.delete("/api/v1/users/nope/block", &a.token).await;
    assert_only_field(&r, "id");
}

#[actix_rt::test]
async fn blocks_page_without_gaps_or_duplicates() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let mut want = BTreeSet::new();
    for i in 0..5 {
        let u = api.user(&format!("user{i}")).await;
        api.put(&format!("/api/v1/users/{}/block", u.id), &a.token, None)
            .await;
        want.insert(u.id);
    }
    let items = api.walk(&a.token, "/api/v1/users/me/blocks", 2).await;
    let got: Vec<String> = items.iter().map(|u| s(&u["id"])).collect();
    let unique: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(unique, want);
    for l in ["0", "101", "abc"] {
        let r = api
            .get(&format!("/api/v1/users/me/blocks?limit={l}"), &a.token)
            .await;
        assert_only_field(&r, "limit");
    }
    let r = api
        .get("/api/v1/users/me/blocks?cursor=garbage", &a.token)
        .await;
    assert_only_field(&r, "cursor");
}

#[actix_rt::test]
async fn lists_default_to_50_items() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    for i in 0..55 {
        api.register(&format!("many{i:02}")).await;
    }
    let r = api.get("/api/v1/users?q=many", &a.token).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["items"].as_array().unwrap().len(), 50);
    let next = s(&r.1["next_cursor"]);
    let r = api
        .get(
            &format!("/api/v1/users?q=many&cursor={}", pct(&next)),
            &a.token,
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["items"].as_array().unwrap().len(), 5);
    assert_eq!(r.1["next_cursor"], Value::Null);
    let r = api.get("/api/v1/users?q=many&limit=100", &a.token).await;
    assert_eq!(r.1["items"].as_array().unwrap().len(), 55);
    assert_eq!(r.1["next_cursor"], Value::Null);
}
