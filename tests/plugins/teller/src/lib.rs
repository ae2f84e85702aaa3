//! The ledger over HTTP, as thin as possible, so tests can drive it from many clients.
use linli_sdk::prelude::*;

struct Teller;

#[derive(Deserialize)]
struct Open {
    currency: String,
    owner: String,
}

#[derive(Deserialize)]
struct Limits {
    floor: i64,
    cap: Option<i64>,
}

#[derive(Deserialize)]
struct Transfer {
    payer: String,
    payee: String,
    amount: i64,
    key: String,
    #[serde(default)]
    memo: String,
}

fn account_json(a: &ledger::Account) -> serde_json::Value {
    json!({ "id": a.id, "currency": a.currency, "owner": a.owner, "balance": a.balance, "floor": a.floor, "cap": a.cap })
}

impl Plugin for Teller {
    fn router() -> Router {
        Router::new()
            .post("/accounts", |req, _| {
                let open: Open = req.json()?;
                Ok(Response::json(200, &account_json(&ledger::account(&open.currency, &open.owner)?)))
            })
            .get("/accounts/:id", |_, params| Ok(Response::json(200, &account_json(&ledger::get_account(params.require("id")?)?))))
            .put("/accounts/:id/limits", |req, params| {
                let limits: Limits = req.json()?;
                Ok(Response::json(200, &account_json(&ledger::set_limits(params.require("id")?, limits.floor, limits.cap)?)))
            })
            .post("/transfers", |req, _| {
                let t: Transfer = req.json()?;
                let receipt = ledger::transfer(&t.payer, &t.payee, t.amount, &t.key, &t.memo)?;
                Ok(Response::json(200, &json!({ "transfer_id": receipt.transfer_id, "payer_balance": receipt.payer_balance, "payee_balance": receipt.payee_balance, "replayed": receipt.replayed })))
            })
    }
}

linli_sdk::export!(Teller);
