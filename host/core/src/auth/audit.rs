//! The audit log of sensitive reads (PIPL art. 28/29): who read which fields of whom, for
//! which tenant, and whether it was allowed; and every consent given or withdrawn (the
//! actor is the plugin or web app it concerns, the subject the person). A read or a consent
//! that cannot be recorded does not happen: callers record first and fail with the database.
use crate::store::{now_millis, Store};
use serde::{Deserialize, Serialize};
use sqlx::Row;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Allowed,
    Denied,
    ConsentRequired,
    /// The person (the subject) gave the actor consent to the fields.
    ConsentGiven,
    /// The person withdrew the actor's consent to the fields.
    ConsentWithdrawn,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::ConsentRequired => "consent-required",
            Self::ConsentGiven => "consent-given",
            Self::ConsentWithdrawn => "consent-withdrawn",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "allowed" => Self::Allowed,
            "consent-required" => Self::ConsentRequired,
            "consent-given" => Self::ConsentGiven,
            "consent-withdrawn" => Self::ConsentWithdrawn,
            _ => Self::Denied,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry {
    pub id: String,
    pub at: i64,
    /// `plugin:<id>`, `staff:<account id>` or `oidc:<client id>`.
    pub actor: String,
    pub tenant_id: String,
    /// `account:<id>` or `resident:<id>`.
    pub subject: String,
    pub fields: Vec<String>,
    pub outcome: Outcome,
    pub request_id: String,
    /// Who the actor and the subject are, for people reading the log (filled in by the
    /// reader that knows the names, e.g. the HTTP layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_name: Option<String>,
}

/// One read to record.
pub struct Read<'a> {
    pub actor: String,
    pub tenant_id: &'a str,
    pub subject: String,
    pub fields: &'a [&'a str],
    pub outcome: Outcome,
    pub request_id: &'a str,
}

pub async fn record(store: &Store, read: Read<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_log (id, at, actor, tenant_id, subject, fields, outcome, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        // Time-ordered ids (UUIDv7, monotonic within the process) keep reads made in the
        // same millisecond in the order they happened.
        .bind(uuid::Uuid::now_v7().simple().to_string())
        .bind(now_millis())
        .bind(&read.actor)
        .bind(read.tenant_id)
        .bind(&read.subject)
        .bind(read.fields.join(","))
        .bind(read.outcome.as_str())
        .bind(read.request_id)
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// A consent `account_id` gave (`ConsentGiven`) or withdrew (`ConsentWithdrawn`) to `actor`
/// (`plugin:<id>` or `oidc:<client id>`) for `fields`; `channel` says where the person was
/// asked (`app`, `plugin-page`, `oidc`).
pub async fn record_consent(
    store: &Store,
    actor: String,
    tenant_id: &str,
    account_id: &str,
    fields: &[String],
    outcome: Outcome,
    channel: &str,
) -> Result<(), sqlx::Error> {
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    record(store, Read { actor, tenant_id, subject: format!("account:{account_id}"), fields: &fields, outcome, request_id: channel }).await
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Search {
    /// Exact actor, e.g. `plugin:legal-aid`.
    pub actor: Option<String>,
    /// Exact subject, e.g. `account:…`.
    pub subject: Option<String>,
    pub outcome: Option<Outcome>,
    /// A field name, e.g. `phone`.
    pub field: Option<String>,
    /// Unix milliseconds, inclusive.
    pub from: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub to: Option<i64>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Entries about `tenants` matching `search`, newest first.
pub async fn search(store: &Store, tenants: &[String], search: &Search) -> Result<Vec<Entry>, sqlx::Error> {
    if tenants.is_empty() {
        return Ok(vec![]);
    }
    let mut binds: Vec<String> = tenants.to_vec();
    let mut sql =
        format!("SELECT id, at, actor, tenant_id, subject, fields, outcome, request_id FROM audit_log WHERE tenant_id IN ({})", store.params(1, tenants.len()));
    // Parameters appear in the SQL in the order they are bound (see `Store::param`).
    let mut add = |sql: &mut String, clause: &str, value: String| {
        binds.push(value);
        sql.push_str(&clause.replace('?', &store.param(binds.len())));
    };
    if let Some(actor) = &search.actor {
        add(&mut sql, " AND actor = ?", actor.clone());
    }
    if let Some(subject) = &search.subject {
        add(&mut sql, " AND subject = ?", subject.clone());
    }
    if let Some(outcome) = search.outcome {
        add(&mut sql, " AND outcome = ?", outcome.as_str().into());
    }
    if let Some(field) = &search.field {
        add(&mut sql, " AND (',' || fields || ',') LIKE ?", format!("%,{field},%"));
    }
    // Times are bound as numbers below, after the text binds.
    let mut times = Vec::new();
    if let Some(from) = search.from {
        times.push(from);
        sql.push_str(&format!(" AND at >= {}", store.param(binds.len() + times.len())));
    }
    if let Some(to) = search.to {
        times.push(to);
        sql.push_str(&format!(" AND at < {}", store.param(binds.len() + times.len())));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", search.limit.unwrap_or(100).clamp(1, 1000)));
    let mut query = sqlx::query(&sql);
    for value in &binds {
        query = query.bind(value);
    }
    for t in times {
        query = query.bind(t);
    }
    let rows = query.fetch_all(&store.pool).await?;
    rows.iter()
        .map(|r| {
            Ok(Entry {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                tenant_id: r.try_get("tenant_id")?,
                subject: r.try_get("subject")?,
                fields: r.try_get::<String, _>("fields")?.split(',').filter(|f| !f.is_empty()).map(str::to_string).collect(),
                outcome: Outcome::parse(&r.try_get::<String, _>("outcome")?),
                request_id: r.try_get("request_id")?,
                actor_name: None,
                subject_name: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every filter at once, the tenant list first and the times last: the parameters must
    /// be bound in the order the SQL names them (SQLite's are plain `?`).
    #[tokio::test]
    async fn every_filter_narrows_the_search() {
        let (store, _dir) = crate::store::testing::sqlite().await;
        filters_narrow(store).await;
        if let Some(store) = crate::store::testing::postgres().await {
            filters_narrow(store).await;
        }
    }

    async fn filters_narrow(store: Store) {
        use crate::tenancy::TenantKind::{County, Grid};
        crate::tenancy::testing::save_tree(&store, &[("c", None, County), ("g1", Some("c"), Grid), ("g2", Some("c"), Grid)]).await;
        let read = |actor: &str, tenant: &'static str, outcome| Read {
            actor: actor.into(),
            tenant_id: tenant,
            subject: "resident:r1".into(),
            fields: &["phone"],
            outcome,
            request_id: "req",
        };
        let before = now_millis() - 1;
        record(&store, read("plugin:a", "g1", Outcome::Allowed)).await.unwrap();
        record(&store, read("plugin:a", "g2", Outcome::Denied)).await.unwrap();
        record(&store, read("plugin:b", "g1", Outcome::Allowed)).await.unwrap();
        let after = now_millis() + 1;
        let tenants = vec!["c".to_string(), "g1".to_string()];
        let search = Search {
            actor: Some("plugin:a".into()),
            subject: Some("resident:r1".into()),
            outcome: Some(Outcome::Allowed),
            field: Some("phone".into()),
            from: Some(before),
            to: Some(after),
            limit: None,
        };
        let found = super::search(&store, &tenants, &search).await.unwrap();
        assert_eq!(found.iter().map(|e| (e.actor.as_str(), e.tenant_id.as_str())).collect::<Vec<_>>(), [("plugin:a", "g1")]);
        assert!(super::search(&store, &tenants, &Search { to: Some(before), ..search.clone() }).await.unwrap().is_empty(), "before the reads");
        assert!(super::search(&store, &tenants, &Search { field: Some("name".into()), ..search }).await.unwrap().is_empty());
        let all = super::search(&store, &["g1".into(), "g2".into()], &Search::default()).await.unwrap();
        assert_eq!(all.len(), 3, "newest first, every tenant listed");
        assert_eq!(all[0].actor, "plugin:b");
    }
}
