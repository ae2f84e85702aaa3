//! Reads the data store whether or not it was granted; reports what the host said. Also
//! remembers, in its own memory, who called it last: what an instance serving several
//! requests would carry from one to the next.
use linli_sdk::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

static SERVED: AtomicU64 = AtomicU64::new(0);
static LAST_CALLER: Mutex<Option<String>> = Mutex::new(None);

struct Nosy;

impl Plugin for Nosy {
    fn router() -> Router {
        Router::new()
            .get("/remember", |_, _| {
                let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
                let caller = identity::current_user()?.map(|user| user.id);
                let previous = LAST_CALLER.lock().map(|mut last| std::mem::replace(&mut *last, caller)).unwrap_or_default();
                Ok(Response::json(200, &json!({ "served": served, "previous_caller": previous })))
            })
            .get("/whoami", |_, _| {
                let outcome = match identity::current_user() {
                    Ok(Some(user)) => json!({ "outcome": "user", "id": user.id, "name": user.display_name, "roles": user.roles.len() }),
                    Ok(None) => json!({ "outcome": "anonymous" }),
                    Err(e) => json!({ "outcome": "error", "code": e.code_name() }),
                };
                Ok(Response::json(200, &outcome))
            })
            .get("/phone/:id", |_, params| {
                let outcome = match base::resident_phone(params.require("id")?) {
                    Ok(phone) => json!({ "outcome": "read", "phone": phone }),
                    Err(e) => json!({ "outcome": "error", "code": e.code_name(), "message": e.message }),
                };
                Ok(Response::json(200, &outcome))
            })
            .get("/elders", |req, _| {
                let query = base::ResidentQuery { tenant: req.query_param("tenant"), tags: vec!["独居老人".into()], min_age: Some(60), max_age: None };
                let outcome = match base::all_residents(&query) {
                    Ok(all) => json!({ "outcome": "read", "count": all.len(), "tenants": all.iter().map(|r| r.tenant.clone()).collect::<std::collections::BTreeSet<_>>(), "min_age": all.iter().map(|r| r.age).min() }),
                    Err(e) => json!({ "outcome": "error", "code": e.code_name(), "message": e.message }),
                };
                Ok(Response::json(200, &outcome))
            })
            .get("/houses", |req, _| {
                // Page by page, `per_page` at a time, as a plugin listing a community would.
                let tenant = req.query_param("tenant");
                let per_page = req.query_param("per_page").and_then(|n| n.parse().ok()).unwrap_or(500);
                let (mut addresses, mut pages, mut cursor) = (Vec::new(), 0, None);
                let outcome = loop {
                    match base::houses(tenant.as_deref(), cursor.as_deref(), per_page) {
                        Ok(page) => {
                            pages += 1;
                            addresses.extend(page.items.into_iter().map(|h| h.address));
                            match page.next_cursor {
                                Some(next) => cursor = Some(next),
                                None => break json!({ "outcome": "read", "addresses": addresses, "pages": pages }),
                            }
                        }
                        Err(e) => break json!({ "outcome": "error", "code": e.code_name(), "message": e.message }),
                    }
                };
                Ok(Response::json(200, &outcome))
            })
            .get("/house-of/:id", |_, params| {
                let outcome = match base::resident_house(params.require("id")?) {
                    Ok(house) => json!({ "outcome": "read", "address": house.map(|h| h.address) }),
                    Err(e) => json!({ "outcome": "error", "code": e.code_name(), "message": e.message }),
                };
                Ok(Response::json(200, &outcome))
            })
            .get("/my-phone", |_, _| {
                let outcome = match identity::profile_field(identity::ProfileField::Phone) {
                    Ok(phone) => json!({ "outcome": "read", "phone": phone }),
                    Err(e) => json!({ "outcome": "error", "code": e.code_name(), "message": e.message }),
                };
                Ok(Response::json(200, &outcome))
            })
            .get("/peek", |_, _| {
            let outcome = match Collection::<serde_json::Value>::new("secrets").get("x") {
                Ok(_) => json!({ "outcome": "read" }),
                Err(e) => json!({ "outcome": "error", "code": e.code_name(), "message": e.message }),
            };
            Ok(Response::json(200, &outcome))
        })
    }
}

linli_sdk::export!(Nosy);
