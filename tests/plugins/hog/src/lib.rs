//! Allocates without bound on /hog. The host must stop it at its memory limit.
use linli_sdk::prelude::*;

struct Hog;

impl Plugin for Hog {
    fn router() -> Router {
        Router::new().get("/ping", |_, _| Ok(Response::text(200, "pong"))).get("/hog", |_, _| {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
            }
        })
    }
}

linli_sdk::export!(Hog);
