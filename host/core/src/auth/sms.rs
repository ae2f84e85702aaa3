//! One-time SMS login codes through a pluggable gateway. No real SMS service can be
//! reached from here, so the default gateway writes each message to the host's log and to
//! `DATA_DIR/sms-outbox.jsonl`, where a developer (or a test) can read the code.
use super::accounts::mask_phone;
use super::AuthError;
use crate::packages::sha256_hex;
use crate::store::{now_millis, Store};
use rand::Rng;
use sqlx::Row;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

pub const CODE_MINUTES: i64 = 5;
pub const MAX_CODE_ATTEMPTS: i64 = 5;
pub const RESEND_SECONDS: i64 = 60;

pub trait SmsGateway: Send + Sync {
    fn send(&self, phone: &str, text: &str) -> Result<(), AuthError>;
}

/// The default gateway: the log, plus an outbox file.
pub struct LogGateway {
    pub outbox: PathBuf,
}

impl SmsGateway for LogGateway {
    fn send(&self, phone: &str, text: &str) -> Result<(), AuthError> {
        tracing::info!(to = mask_phone(phone), "SMS (log gateway): {text}");
        let line = serde_json::json!({ "to": phone, "text": text, "at": now_millis() });
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.outbox)
            .and_then(|mut f| writeln!(f, "{line}"))
            .map_err(|e| AuthError::Internal(format!("writing the SMS outbox {}: {e}", self.outbox.display())))
    }
}

pub struct Sms {
    store: Store,
    gateway: Arc<dyn SmsGateway>,
}

fn code_hash(phone_index: &str, code: &str) -> String {
    sha256_hex(format!("{phone_index}:{code}").as_bytes())
}

impl Sms {
    pub fn new(store: Store, gateway: Arc<dyn SmsGateway>) -> Self {
        Self { store, gateway }
    }

    /// Codes are kept under the phone's blind index, never the number itself.
    fn key(&self, phone: &str) -> Result<String, AuthError> {
        Ok(super::accounts::phone_index(&self.store, phone)?)
    }

    /// Send a fresh code, at most one a minute per phone.
    pub async fn send_code(&self, phone: &str) -> Result<(), AuthError> {
        let now = now_millis();
        let key = self.key(phone)?;
        let last: Option<i64> = sqlx::query_scalar("SELECT sent_at FROM sms_codes WHERE phone = $1").bind(&key).fetch_optional(&self.store.pool).await?;
        if let Some(wait) = last.map(|sent| RESEND_SECONDS - (now - sent) / 1000).filter(|wait| *wait > 0) {
            return Err(AuthError::TooSoon { seconds: wait });
        }
        let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000));
        sqlx::query(
            "INSERT INTO sms_codes (phone, code_hash, expires_at, attempts, sent_at) VALUES ($1, $2, $3, 0, $4)
             ON CONFLICT (phone) DO UPDATE SET code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = 0, sent_at = excluded.sent_at",
        )
        .bind(&key)
        .bind(code_hash(&key, &code))
        .bind(now + CODE_MINUTES * 60_000)
        .bind(now)
        .execute(&self.store.pool)
        .await?;
        self.gateway.send(phone, &format!("【邻里】您的登录验证码是 {code}，{CODE_MINUTES} 分钟内有效。请勿告诉他人。"))
    }

    /// Use a code: right, in time, within `MAX_CODE_ATTEMPTS` tries, and only once.
    pub async fn check_code(&self, phone: &str, code: &str) -> Result<(), AuthError> {
        let key = self.key(phone)?;
        let row = sqlx::query("SELECT code_hash, expires_at, attempts FROM sms_codes WHERE phone = $1")
            .bind(&key)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(AuthError::BadCode)?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let attempts: i64 = row.try_get("attempts")?;
        let stored: String = row.try_get("code_hash")?;
        if expires_at <= now_millis() || attempts >= MAX_CODE_ATTEMPTS {
            return Err(AuthError::BadCode);
        }
        if !crate::store::vault::constant_time_eq(stored.as_bytes(), code_hash(&key, code.trim()).as_bytes()) {
            sqlx::query("UPDATE sms_codes SET attempts = attempts + 1 WHERE phone = $1").bind(&key).execute(&self.store.pool).await?;
            return Err(AuthError::BadCode);
        }
        // Single use: only the request that deletes the row gets in.
        let deleted = sqlx::query("DELETE FROM sms_codes WHERE phone = $1 AND code_hash = $2").bind(&key).bind(stored).execute(&self.store.pool).await?;
        if deleted.rows_affected() == 0 {
            return Err(AuthError::BadCode);
        }
        Ok(())
    }
}
