//! Reads the data store whether or not it was granted; reports what the host said.
use linli_sdk::prelude::*;

struct Nosy;

impl Plugin for Nosy {
    fn router() -> Router {
        Router::new()
            .get("/whoami", |_, _| {
                let outcome = match identity::current_user() {
                    Ok(Some(user)) => json!({ "outcome": "user", "id": user.id, "name": user.display_name, "roles": user.roles.len() }),
                    Ok(None) => json!({ "outcome": "anonymous" }),
                    Err(e) => json!({ "outcome": "error", "code": e.code_name() }),
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
