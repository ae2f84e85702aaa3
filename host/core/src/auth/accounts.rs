//! Residents and staff: accounts, roles scoped to tenant nodes, argon2 passwords and
//! lock-out after repeated failures.
use super::AuthError;
use crate::store::vault::{Domain, ACCOUNT_PHONE};
use crate::store::{now_millis, Store};
use crate::tenancy::{TenantKind, TenantTree};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use sqlx::Row;

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Failed password logins in a row before the account is locked.
pub const MAX_FAILED_LOGINS: i64 = 5;
pub const LOCK_MINUTES: i64 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    Resident,
    Staff,
}

impl AccountKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Resident => "resident",
            Self::Staff => "staff",
        }
    }
}

/// Staff roles. Each is held at a node of the tenant tree and reaches everything below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// 县级管理员
    CountyAdmin,
    /// 镇街管理员
    StreetAdmin,
    /// 社区工作者
    CommunityWorker,
    /// 网格员
    GridWorker,
    /// 志愿者
    Volunteer,
    /// 律师
    Lawyer,
    /// 物业人员: staff of the property company serving a community, held at that community.
    /// The host gives the role nothing of its own (no work orders, no base data): a
    /// property-services plugin gives it the office's work there.
    PropertyStaff,
    /// 供应商开发者
    VendorDeveloper,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Self::CountyAdmin,
        Self::StreetAdmin,
        Self::CommunityWorker,
        Self::GridWorker,
        Self::Volunteer,
        Self::Lawyer,
        Self::PropertyStaff,
        Self::VendorDeveloper,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CountyAdmin => "county-admin",
            Self::StreetAdmin => "street-admin",
            Self::CommunityWorker => "community-worker",
            Self::GridWorker => "grid-worker",
            Self::Volunteer => "volunteer",
            Self::Lawyer => "lawyer",
            Self::PropertyStaff => "property-staff",
            Self::VendorDeveloper => "vendor-developer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The level a role must be held at, where the role is tied to one.
    fn level(self) -> Option<TenantKind> {
        match self {
            Self::CountyAdmin => Some(TenantKind::County),
            Self::StreetAdmin => Some(TenantKind::Street),
            Self::CommunityWorker | Self::PropertyStaff => Some(TenantKind::Community),
            Self::GridWorker => Some(TenantKind::Grid),
            Self::Volunteer | Self::Lawyer | Self::VendorDeveloper => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleGrant {
    pub role: Role,
    pub tenant: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Account {
    pub id: String,
    pub kind: AccountKind,
    pub phone: String,
    pub display_name: String,
    /// A resident's community.
    pub tenant_id: Option<String>,
    pub roles: Vec<RoleGrant>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub kind: AccountKind,
    pub phone: String,
    pub display_name: String,
    /// At least 8 characters; leave out for SMS-code-only residents.
    #[serde(default)]
    pub password: Option<String>,
    /// Required for residents: their community.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Staff only.
    #[serde(default)]
    pub roles: Vec<RoleGrant>,
}

/// Mainland mobile numbers: 11 digits starting with 1.
pub fn is_valid_phone(phone: &str) -> bool {
    phone.len() == 11 && phone.starts_with('1') && phone.chars().all(|c| c.is_ascii_digit())
}

/// `138****0000`, for logs and lists.
pub fn mask_phone(phone: &str) -> String {
    if phone.len() == 11 && phone.is_ascii() {
        format!("{}****{}", &phone[..3], &phone[7..])
    } else {
        "***".into()
    }
}

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Internal(format!("hashing a password failed: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash that matches nothing, verified when the phone is unknown so that the answer
/// takes as long as for a known one (no account enumeration by timing).
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that nobody has").unwrap_or_default())
}

pub async fn create(store: &Store, tree: &TenantTree, new: &NewAccount) -> Result<Account, AuthError> {
    let invalid = |m: String| Err(AuthError::Invalid(m));
    if !is_valid_phone(&new.phone) {
        return invalid(format!("`{}` is not an 11-digit mobile number", new.phone));
    }
    if new.display_name.trim().is_empty() {
        return invalid("the display name must not be empty".into());
    }
    if let Some(password) = &new.password {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return invalid(format!("a password needs at least {MIN_PASSWORD_CHARS} characters"));
        }
    }
    match new.kind {
        AccountKind::Resident => {
            let Some(tenant) = new.tenant_id.as_deref() else { return invalid("a resident needs a community (tenant_id)".into()) };
            if tree.get(tenant).map(|n| n.kind) != Some(TenantKind::Community) {
                return invalid(format!("`{tenant}` is not a community"));
            }
            if !new.roles.is_empty() {
                return invalid("residents hold no staff roles; make a staff account".into());
            }
        }
        AccountKind::Staff => {
            if new.roles.is_empty() {
                return invalid("a staff account needs at least one role".into());
            }
            for grant in &new.roles {
                let Some(node) = tree.get(&grant.tenant) else { return invalid(format!("tenant `{}` does not exist", grant.tenant)) };
                if let Some(level) = grant.role.level().filter(|level| *level != node.kind) {
                    return invalid(format!("{} is held at a {}, and `{}` is a {}", grant.role.as_str(), level.as_str(), node.id, node.kind.as_str()));
                }
            }
        }
    }
    let duplicate = || AuthError::Conflict(format!("an account with phone {} exists already", mask_phone(&new.phone)));
    // Checked before hashing, so re-applying a set-up file costs no key stretching; the
    // insert below still settles a race between two creators.
    if id_by_phone(store, &new.phone).await?.is_some() {
        return Err(duplicate());
    }
    let password_hash = new.password.as_deref().map(hash_password).transpose()?;
    let account = Account {
        id: uuid::Uuid::new_v4().to_string(),
        kind: new.kind,
        phone: new.phone.clone(),
        display_name: new.display_name.trim().to_string(),
        tenant_id: new.tenant_id.clone().filter(|_| new.kind == AccountKind::Resident),
        roles: new.roles.clone(),
        created_at: now_millis(),
    };
    let (sealed_phone, phone_index) = ACCOUNT_PHONE.seal(&store.vault, &account.id, &account.phone).map_err(sqlx::Error::from)?;
    let mut tx = store.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO accounts (id, kind, phone, phone_bidx, display_name, password_hash, tenant_id, failed_logins, locked_until, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8) ON CONFLICT (phone_bidx) DO NOTHING",
    )
    .bind(&account.id)
    .bind(account.kind.as_str())
    .bind(sealed_phone)
    .bind(phone_index)
    .bind(&account.display_name)
    .bind(password_hash)
    .bind(account.tenant_id.clone())
    .bind(account.created_at)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(duplicate());
    }
    for grant in &account.roles {
        sqlx::query("INSERT INTO account_roles (account_id, role, tenant_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(&account.id)
            .bind(grant.role.as_str())
            .bind(&grant.tenant)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(account)
}

pub async fn get(store: &Store, id: &str) -> Result<Option<Account>, AuthError> {
    let Some(row) =
        sqlx::query("SELECT id, kind, phone, display_name, tenant_id, created_at FROM accounts WHERE id = $1").bind(id).fetch_optional(&store.pool).await?
    else {
        return Ok(None);
    };
    let kind: String = row.try_get("kind")?;
    let roles = sqlx::query("SELECT role, tenant_id FROM account_roles WHERE account_id = $1 ORDER BY role, tenant_id")
        .bind(id)
        .fetch_all(&store.pool)
        .await?
        .iter()
        .filter_map(|r| {
            let role: String = r.try_get("role").ok()?;
            Some(RoleGrant { role: Role::parse(&role)?, tenant: r.try_get("tenant_id").ok()? })
        })
        .collect();
    Ok(Some(Account {
        id: row.try_get("id")?,
        kind: if kind == "staff" { AccountKind::Staff } else { AccountKind::Resident },
        phone: open_phone(store, &row)?,
        display_name: row.try_get("display_name")?,
        tenant_id: row.try_get("tenant_id")?,
        roles,
        created_at: row.try_get("created_at")?,
    }))
}

/// Every staff account with its roles, by name.
pub async fn staff(store: &Store) -> Result<Vec<Account>, AuthError> {
    let rows = sqlx::query(
        "SELECT a.id, a.phone, a.display_name, a.created_at, r.role, r.tenant_id FROM accounts a JOIN account_roles r ON r.account_id = a.id
         WHERE a.kind = 'staff' ORDER BY a.display_name, a.id, r.role, r.tenant_id",
    )
    .fetch_all(&store.pool)
    .await?;
    let mut out: Vec<Account> = Vec::new();
    for row in rows {
        let id: String = row.try_get("id")?;
        let role: String = row.try_get("role")?;
        let Some(role) = Role::parse(&role) else { continue };
        let grant = RoleGrant { role, tenant: row.try_get("tenant_id")? };
        match out.last_mut() {
            Some(last) if last.id == id => last.roles.push(grant),
            _ => out.push(Account {
                phone: open_phone(store, &row)?,
                id,
                kind: AccountKind::Staff,
                display_name: row.try_get("display_name")?,
                tenant_id: None,
                roles: vec![grant],
                created_at: row.try_get("created_at")?,
            }),
        }
    }
    Ok(out)
}

/// The clear phone of an account row (with `id` and `phone`).
fn open_phone(store: &Store, row: &sqlx::any::AnyRow) -> Result<String, sqlx::Error> {
    let id: String = row.try_get("id")?;
    Ok(ACCOUNT_PHONE.open(&store.vault, &id, &row.try_get::<String, _>("phone")?)?)
}

/// The blind index accounts (and SMS codes) are found by phone with.
pub(super) fn phone_index(store: &Store, phone: &str) -> Result<String, sqlx::Error> {
    Ok(store.vault.blind_index(Domain::Phone, phone)?)
}

pub async fn id_by_phone(store: &Store, phone: &str) -> Result<Option<String>, AuthError> {
    let row = sqlx::query("SELECT id FROM accounts WHERE phone_bidx = $1").bind(phone_index(store, phone)?).fetch_optional(&store.pool).await?;
    Ok(row.map(|r| r.try_get("id")).transpose()?)
}

/// Check a phone and password. Unknown phone and wrong password are the same error;
/// after `MAX_FAILED_LOGINS` failures in a row the account is locked for `LOCK_MINUTES`,
/// and a locked account is refused even with the right password.
pub async fn check_password(store: &Store, phone: &str, password: &str) -> Result<String, AuthError> {
    let row = sqlx::query("SELECT id, password_hash, failed_logins, locked_until FROM accounts WHERE phone_bidx = $1")
        .bind(phone_index(store, phone)?)
        .fetch_optional(&store.pool)
        .await?;
    let Some(row) = row else {
        verify_password(password, decoy_hash());
        return Err(AuthError::BadCredentials);
    };
    let id: String = row.try_get("id")?;
    let hash: Option<String> = row.try_get("password_hash")?;
    let locked_until: i64 = row.try_get("locked_until")?;
    let now = now_millis();
    if locked_until > now {
        return Err(AuthError::Locked { minutes: (locked_until - now).div_euclid(60_000) + 1 });
    }
    if hash.as_deref().is_some_and(|h| verify_password(password, h)) {
        sqlx::query("UPDATE accounts SET failed_logins = 0, locked_until = 0 WHERE id = $1").bind(&id).execute(&store.pool).await?;
        return Ok(id);
    }
    // Count the failure atomically; the update that reaches the limit sets the lock.
    let failures: i64 = sqlx::query_scalar("UPDATE accounts SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins")
        .bind(&id)
        .fetch_one(&store.pool)
        .await?;
    if failures >= MAX_FAILED_LOGINS {
        sqlx::query("UPDATE accounts SET failed_logins = 0, locked_until = $2 WHERE id = $1")
            .bind(&id)
            .bind(now + LOCK_MINUTES * 60_000)
            .execute(&store.pool)
            .await?;
        tracing::warn!(account = id, "account locked after repeated failed logins");
        return Err(AuthError::Locked { minutes: LOCK_MINUTES });
    }
    Err(AuthError::BadCredentials)
}
