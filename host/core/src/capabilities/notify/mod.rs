//! `linli:platform/notify`: the in-app inbox of residents and staff, and SMS through the
//! host's gateway (`auth::sms::SmsGateway`; the default writes to the log and
//! `DATA_DIR/sms-outbox.jsonl`, as no SMS service is reachable from here). `Notifier` is the
//! domain service; `adapter` maps the WIT calls onto it.
mod adapter;

pub use adapter::{Adapter, NotifyGrant, NotifyState, INFO};

use crate::auth::sms::SmsGateway;
use crate::store::vault::{Vault, NOTIFICATION_BODY, NOTIFICATION_TITLE};
use crate::store::{now_millis, Store};
use crate::tenancy::TenantTree;
use serde::Serialize;
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub source: String,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

/// An inbox message as its sender writes it (`source`: who sent it, e.g. `plugin:<id>`).
#[derive(Debug, Clone, Copy)]
pub struct Notice<'a> {
    pub title: &'a str,
    pub body: &'a str,
    pub link: Option<&'a str>,
    pub source: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the SMS gateway failed: {0}")]
    Gateway(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl crate::errors::Classified for NotifyError {
    fn kind(&self) -> crate::errors::ErrorKind {
        use crate::errors::ErrorKind as K;
        match self {
            Self::Invalid(_) => K::Invalid,
            Self::NotFound(_) => K::NotFound,
            Self::Gateway(_) | Self::Database(_) => K::Unavailable,
        }
    }
}

/// The host-wide notification service.
pub struct Notifier {
    pub store: Store,
    sms: Arc<dyn SmsGateway>,
}

const MAX_TITLE: usize = 200;
const MAX_BODY: usize = 4000;

fn check(title: &str, body: &str) -> Result<(), NotifyError> {
    if title.trim().is_empty() || title.chars().count() > MAX_TITLE {
        return Err(NotifyError::Invalid(format!("a title is 1–{MAX_TITLE} characters")));
    }
    if body.chars().count() > MAX_BODY {
        return Err(NotifyError::Invalid(format!("a body is at most {MAX_BODY} characters")));
    }
    Ok(())
}

/// Accounts holding `role` at `tenant` or one of its ancestors.
pub async fn staff_with_role_above(conn: &mut sqlx::AnyConnection, tree: &TenantTree, role: &str, tenant: &str) -> Result<Vec<String>, sqlx::Error> {
    let mut accounts = Vec::new();
    for node in tree.ancestors(tenant) {
        let found: Vec<String> = sqlx::query_scalar("SELECT account_id FROM account_roles WHERE role = $1 AND tenant_id = $2")
            .bind(role)
            .bind(&node.id)
            .fetch_all(&mut *conn)
            .await?;
        accounts.extend(found);
    }
    accounts.sort();
    accounts.dedup();
    Ok(accounts)
}

impl Notifier {
    pub fn new(store: Store, sms: Arc<dyn SmsGateway>) -> Self {
        Self { store, sms }
    }

    /// Put a message in an account's inbox, inside the caller's transaction. Its title and
    /// text are sealed: they name people and homes ("王阿姨家12小时未用水", 3栋2单元501).
    pub async fn inbox_in(
        conn: &mut sqlx::AnyConnection,
        vault: &Vault,
        account_id: &str,
        title: &str,
        body: &str,
        link: Option<&str>,
        source: &str,
    ) -> Result<(), sqlx::Error> {
        let id = uuid::Uuid::now_v7().to_string();
        let (title, _) = NOTIFICATION_TITLE.seal(vault, &id, title)?;
        let (body, _) = NOTIFICATION_BODY.seal(vault, &id, body)?;
        sqlx::query("INSERT INTO notifications (id, account_id, title, body, link, source, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&id)
            .bind(account_id)
            .bind(title)
            .bind(body)
            .bind(link)
            .bind(source)
            .bind(now_millis())
            .execute(conn)
            .await?;
        Ok(())
    }

    pub async fn send(&self, account_id: &str, title: &str, body: &str, link: Option<&str>, source: &str) -> Result<(), NotifyError> {
        check(title, body)?;
        let mut conn = self.store.pool.acquire().await?;
        Self::inbox_in(&mut conn, &self.store.vault, account_id, title, body, link, source).await?;
        Ok(())
    }

    /// Send `notice` to every staff member with `role` at `tenant` or above it.
    pub async fn to_staff(&self, tree: &TenantTree, role: &str, tenant: &str, notice: &Notice<'_>) -> Result<u32, NotifyError> {
        check(notice.title, notice.body)?;
        let mut tx = self.store.begin_write().await?;
        let accounts = staff_with_role_above(&mut tx, tree, role, tenant).await?;
        for account in &accounts {
            Self::inbox_in(&mut tx, &self.store.vault, account, notice.title, notice.body, notice.link, notice.source).await?;
        }
        tx.commit().await?;
        Ok(u32::try_from(accounts.len()).unwrap_or(u32::MAX))
    }

    pub fn sms(&self, phone: &str, text: &str) -> Result<(), NotifyError> {
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        if !(5..=15).contains(&digits) || !phone.chars().all(|c| c.is_ascii_digit() || c == '+' || c == '-' || c == ' ') {
            return Err(NotifyError::Invalid(format!("`{phone}` is not a phone number")));
        }
        if text.trim().is_empty() || text.chars().count() > 500 {
            return Err(NotifyError::Invalid("a text message is 1–500 characters".into()));
        }
        self.sms.send(phone, text).map_err(|e| NotifyError::Gateway(e.to_string()))
    }

    /// The account's inbox, newest first.
    pub async fn inbox(&self, account_id: &str, limit: u32) -> Result<(Vec<Notification>, i64), NotifyError> {
        type Row = (String, String, String, Option<String>, String, i64, Option<i64>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, title, body, link, source, created_at, read_at FROM notifications WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(account_id)
        .bind(i64::from(limit.clamp(1, 200)))
        .fetch_all(&self.store.pool)
        .await?;
        let unread: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE account_id = $1 AND read_at IS NULL")
            .bind(account_id)
            .fetch_one(&self.store.pool)
            .await?;
        let vault = &self.store.vault;
        let items = rows
            .into_iter()
            .map(|(id, title, body, link, source, created_at, read_at)| {
                let title = NOTIFICATION_TITLE.open(vault, &id, &title)?;
                let body = NOTIFICATION_BODY.open(vault, &id, &body)?;
                Ok(Notification { id, title, body, link, source, created_at, read_at })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok((items, unread))
    }

    pub async fn mark_read(&self, account_id: &str, id: &str) -> Result<(), NotifyError> {
        let done = sqlx::query("UPDATE notifications SET read_at = COALESCE(read_at, $1) WHERE id = $2 AND account_id = $3")
            .bind(now_millis())
            .bind(id)
            .bind(account_id)
            .execute(&self.store.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(NotifyError::NotFound(format!("notification `{id}` does not exist")));
        }
        Ok(())
    }
}
