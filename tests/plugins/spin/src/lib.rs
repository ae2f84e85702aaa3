//! Loops forever on /spin; answers /ping. The host must stop it at its deadline.
use linli_sdk::prelude::*;

struct Spin;

impl Plugin for Spin {
    fn router() -> Router {
        Router::new()
            .get("/ping", |_, _| Ok(Response::text(200, "pong")))
            .get("/spin", |_, _| {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            })
            .get("/panic", |_, _| panic!("deliberate panic for the trap test"))
    }
}

linli_sdk::export!(Spin);
