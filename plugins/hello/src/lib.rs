//! The smallest useful Linli plugin: a visit counter per community, kept in the
//! plugin-private data store.
use linli_sdk::prelude::*;

#[derive(Serialize, Deserialize, Default)]
struct Visits {
    community: String,
    count: u64,
}

mod greeting;
use greeting::greeting;

fn visits() -> Collection<Visits> {
    Collection::new("visits")
}

struct Hello;

impl Plugin for Hello {
    fn router() -> Router {
        Router::new()
            .get("/greet", |req, _| Ok(Response::json(200, &greeting(&req.query_param("name").unwrap_or_default()))))
            .get("/visits", |req, _| {
                let community = req.tenant().to_string();
                let count = visits().get(&community)?.map(|v| v.value.count).unwrap_or(0);
                Ok(Response::json(200, &json!({ "community": community, "visits": count })))
            })
            .post("/visits", |req, _| {
                let community = req.tenant().to_string();
                let after = visits().update(&community, |v| {
                    v.community = community.clone();
                    v.count += 1;
                })?;
                log::debug(&format!("visit {} in {community}", after.value.count));
                Ok(Response::json(200, &json!({ "community": community, "visits": after.value.count })))
            })
            .get("/me", |_req, _| {
                // Greets a signed-in resident by name; anonymous visitors get a plain hello.
                let body = match identity::current_user()? {
                    Some(user) => json!({
                        "id": user.id,
                        "greeting": format!("你好，{}！", user.display_name),
                        "kind": match user.kind { identity::AccountKind::Resident => "resident", identity::AccountKind::Staff => "staff" },
                        "community": user.community,
                        "roles": user.roles.iter().map(|g| json!({ "role": g.role, "tenant": g.tenant })).collect::<Vec<_>>(),
                    }),
                    None => json!({ "greeting": "你好，邻居！", "anonymous": true }),
                };
                Ok(Response::json(200, &body))
            })
            .get("/communities", |_req, _| {
                // Every counter this installation holds (a street-level install counts
                // each of its communities separately).
                let page = visits().list("", None, 1000)?;
                let all: Vec<_> = page.items.into_iter().map(|v| json!({ "community": v.value.community, "visits": v.value.count })).collect();
                Ok(Response::json(200, &all))
            })
    }
}

linli_sdk::export!(Hello);
