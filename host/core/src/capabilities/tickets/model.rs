//! The ticket, its state machine, and its rows.
use super::Actor;
use crate::store::vault::{SealedColumn, Vault, TICKET_DESCRIPTION, TICKET_LOCATION, TICKET_STEP_NOTE, TICKET_TITLE};
use crate::store::Store;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("category `{0}` does not exist")]
    CategoryUnknown(String),
    #[error("a title is 1–100 characters")]
    TitleLength,
    #[error("{what} is at most {max} characters")]
    TooLong { what: &'static str, max: usize },
    #[error("a note is 1–2000 characters")]
    NoteLength,
    #[error("a rating is 1 to 5")]
    RatingRange,
    #[error("cannot {action} a ticket that is {}", status.as_str())]
    State { action: &'static str, status: Status },
    #[error("only the assignee accepts a ticket")]
    OnlyAssignee,
    #[error("ticket `{0}` changed meanwhile; read it again")]
    Changed(String),
    #[error("a photo is a JPEG, PNG or WebP image")]
    PhotoType,
    #[error("a photo is at most {mib} MiB")]
    PhotoTooLarge { mib: usize },
    #[error("a ticket has at most {max} photos")]
    PhotosFull { max: i64 },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl crate::errors::Classified for TicketError {
    fn kind(&self) -> crate::errors::ErrorKind {
        use crate::errors::ErrorKind as K;
        match self {
            Self::Invalid(_) | Self::CategoryUnknown(_) | Self::TitleLength | Self::TooLong { .. } | Self::NoteLength | Self::RatingRange => K::Invalid,
            Self::PhotoType | Self::PhotoTooLarge { .. } => K::Invalid,
            Self::NotFound(_) => K::NotFound,
            Self::Conflict(_) | Self::State { .. } | Self::Changed(_) | Self::PhotosFull { .. } => K::Conflict,
            Self::OnlyAssignee => K::Denied,
            Self::Database(_) => K::Unavailable,
        }
    }

    fn code(&self) -> crate::errors::Code {
        use crate::errors::Code;
        match self {
            Self::CategoryUnknown(_) => Code::CategoryUnknown,
            Self::TitleLength => Code::TicketTitleLength,
            Self::TooLong { .. } => Code::TicketTextTooLong,
            Self::NoteLength => Code::TicketNoteLength,
            Self::RatingRange => Code::TicketRatingRange,
            Self::State { .. } => Code::TicketState,
            Self::OnlyAssignee => Code::TicketOnlyAssignee,
            Self::Changed(_) => Code::TicketChanged,
            Self::PhotoType => Code::PhotoType,
            Self::PhotoTooLarge { .. } => Code::PhotoTooLarge,
            Self::PhotosFull { .. } => Code::PhotosFull,
            other => other.kind().code(),
        }
    }

    fn params(&self) -> crate::errors::Params {
        match self {
            Self::CategoryUnknown(category) => vec![("category", category.clone())],
            Self::TooLong { max, .. } => vec![("max", max.to_string())],
            Self::State { status, .. } => vec![("status", status.as_str().to_string())],
            Self::PhotoTooLarge { mib } => vec![("mib", mib.to_string())],
            Self::PhotosFull { max } => vec![("max", max.to_string())],
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Dispatched,
    Accepted,
    Resolved,
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Dispatched => "dispatched",
            Status::Accepted => "accepted",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Status::Open,
            "dispatched" => Status::Dispatched,
            "accepted" => Status::Accepted,
            "resolved" => Status::Resolved,
            "closed" => Status::Closed,
            _ => return None,
        })
    }

    /// Still someone's work: counts for time limits and escalation.
    pub fn is_pending(self) -> bool {
        matches!(self, Status::Open | Status::Dispatched | Status::Accepted)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Resident,
    Staff,
    Plugin,
    Alarm,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Resident => "resident",
            Source::Staff => "staff",
            Source::Plugin => "plugin",
            Source::Alarm => "alarm",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "resident" => Source::Resident,
            "plugin" => Source::Plugin,
            "alarm" => Source::Alarm,
            _ => Source::Staff,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Category {
    pub id: String,
    pub name: String,
    pub time_limit_minutes: i64,
}

impl Category {
    pub fn time_limit_ms(&self) -> i64 {
        self.time_limit_minutes.saturating_mul(60_000)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: String,
    pub tenant_id: String,
    /// The node responsible now; moves up on escalation.
    pub level_tenant_id: String,
    pub category: String,
    pub category_name: String,
    pub title: String,
    pub description: String,
    pub location: String,
    pub source: Source,
    pub reporter_account: Option<String>,
    pub installation_id: Option<String>,
    pub alarm_id: Option<String>,
    pub status: Status,
    pub assignee_account: Option<String>,
    pub assignee_name: Option<String>,
    pub due_at: i64,
    pub escalations: i64,
    pub supervised: bool,
    pub rating: Option<i64>,
    pub feedback: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The severity of the alarm that opened the ticket (`critical`, `major`, …), if one did.
    pub alarm_severity: Option<String>,
    /// How soon someone must act, from the category and the alarm's severity: the board
    /// shows urgent tickets first.
    pub priority: Priority,
}

/// The category of 一键求助 calls: every one is urgent.
pub const EMERGENCY_CATEGORY: &str = "emergency";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// A call for help, or a critical alarm (smoke, gas, a fall).
    Urgent,
    /// A major alarm.
    High,
    Normal,
}

impl Priority {
    pub fn of(category: &str, alarm_severity: Option<&str>) -> Self {
        match (category, alarm_severity) {
            (EMERGENCY_CATEGORY, _) | (_, Some("critical")) => Self::Urgent,
            (_, Some("major")) => Self::High,
            _ => Self::Normal,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub note: String,
}

/// What a caller asks to create; the service fills in the rest.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub tenant_id: String,
    pub category: String,
    pub title: String,
    pub description: String,
    pub location: String,
    pub source: Source,
    pub reporter_account: Option<String>,
    pub installation_id: Option<String>,
    pub alarm_id: Option<String>,
}

impl NewTicket {
    pub fn validate(&self) -> Result<(), TicketError> {
        let title = self.title.trim().chars().count();
        if !(1..=100).contains(&title) {
            return Err(TicketError::TitleLength);
        }
        if self.description.chars().count() > 4000 {
            return Err(TicketError::TooLong { what: "a description", max: 4000 });
        }
        if self.location.chars().count() > 200 {
            return Err(TicketError::TooLong { what: "a location", max: 200 });
        }
        Ok(())
    }
}

/// What someone does to a ticket.
#[derive(Debug, Clone)]
pub enum Action {
    Dispatch {
        assignee_account: String,
    },
    /// To a department (an organisation of the base data); whoever of the staff handling
    /// the area accepts it becomes the assignee.
    DispatchToDepartment {
        organisation: String,
    },
    /// By the assignee, or for a department's ticket by a staff member taking it on.
    Accept,
    Comment {
        note: String,
    },
    Resolve {
        note: String,
    },
    /// By the resident who reported it (with a rating) or by staff (without).
    Close {
        rating: Option<i64>,
        feedback: Option<String>,
    },
    Supervise {
        note: String,
    },
}

impl Ticket {
    /// Change the ticket as `action` asks, if its status allows. Returns the trace's verb
    /// and note.
    pub fn apply(&mut self, action: &Action, actor: &Actor, now: i64) -> Result<(&'static str, String), TicketError> {
        let refuse = |action: &'static str| TicketError::State { action, status: self.status };
        let note_of = |note: &str| -> Result<String, TicketError> {
            let note = note.trim();
            if note.is_empty() || note.chars().count() > 2000 {
                return Err(TicketError::NoteLength);
            }
            Ok(note.to_string())
        };
        let out = match action {
            Action::Dispatch { assignee_account } => {
                if !self.status.is_pending() {
                    return Err(refuse("dispatch"));
                }
                self.status = Status::Dispatched;
                self.assignee_account = Some(assignee_account.clone());
                ("dispatched", String::new())
            }
            Action::DispatchToDepartment { .. } => {
                if !self.status.is_pending() {
                    return Err(refuse("dispatch"));
                }
                self.status = Status::Dispatched;
                self.assignee_account = None;
                ("dispatched", String::new())
            }
            Action::Accept => {
                if self.status != Status::Dispatched {
                    return Err(refuse("accept"));
                }
                let Some(account) = actor.account.clone() else {
                    return Err(TicketError::OnlyAssignee);
                };
                match &self.assignee_account {
                    Some(assignee) if *assignee != account => return Err(TicketError::OnlyAssignee),
                    Some(_) => {}
                    None => {
                        // A department's ticket: the one who takes it on is the assignee now.
                        let department = self.assignee_name.clone().unwrap_or_default();
                        self.assignee_account = Some(account);
                        self.assignee_name = Some(if department.is_empty() { actor.name.clone() } else { format!("{}（{department}）", actor.name) });
                    }
                }
                self.status = Status::Accepted;
                ("accepted", String::new())
            }
            Action::Comment { note } => {
                if self.status == Status::Closed {
                    return Err(refuse("comment on"));
                }
                ("commented", note_of(note)?)
            }
            Action::Resolve { note } => {
                if !self.status.is_pending() {
                    return Err(refuse("resolve"));
                }
                self.status = Status::Resolved;
                ("resolved", note_of(note)?)
            }
            Action::Close { rating, feedback } => {
                if self.status != Status::Resolved {
                    return Err(refuse("close"));
                }
                if let Some(r) = rating {
                    if !(1..=5).contains(r) {
                        return Err(TicketError::RatingRange);
                    }
                }
                if feedback.as_ref().is_some_and(|f| f.chars().count() > 2000) {
                    return Err(TicketError::TooLong { what: "feedback", max: 2000 });
                }
                self.status = Status::Closed;
                self.rating = *rating;
                self.feedback = feedback.clone().filter(|f| !f.trim().is_empty());
                let note = match rating {
                    Some(r) => format!("满意度 {r}/5{}", self.feedback.as_ref().map(|f| format!("：{f}")).unwrap_or_default()),
                    None => String::new(),
                };
                ("closed", note)
            }
            Action::Supervise { note } => {
                if !self.status.is_pending() {
                    return Err(refuse("supervise"));
                }
                self.supervised = true;
                ("supervised", note_of(note)?)
            }
        };
        self.updated_at = now.max(self.updated_at + 1);
        Ok(out)
    }

    /// The `ticket.changed` event payload.
    pub fn event(&self, change: &str) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("change".into(), change.into());
            // Plugins get the assignee's name, not their account id.
            map.remove("assignee_account");
            map.remove("reporter_account");
        }
        value
    }
}

/// `2026-11-24 10:30` in China time, for messages.
pub fn format_time(ms: i64) -> String {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(&offset).format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

const COLUMNS: &str = "t.id, t.tenant_id, t.level_tenant_id, t.category_id, c.name, t.title, t.description, t.location_label, t.source, t.reporter_account, t.installation_id, t.alarm_id, t.status, t.assignee_account, t.assignee_name, t.due_at, t.escalations, t.supervised, t.rating, t.feedback, t.created_at, t.updated_at, a.severity";
const FROM: &str = "FROM tickets t JOIN ticket_categories c ON c.id = t.category_id LEFT JOIN alarms a ON a.id = t.alarm_id";

/// A ticket row with its title, description and location opened.
fn from_row(vault: &Vault, row: &sqlx::any::AnyRow) -> Result<Ticket, sqlx::Error> {
    use sqlx::Row;
    let id: String = row.try_get(0)?;
    let category: String = row.try_get(3)?;
    let alarm_severity: Option<String> = row.try_get(22)?;
    let open = |column: &SealedColumn, index: usize| -> Result<String, sqlx::Error> { Ok(column.open(vault, &id, &row.try_get::<String, _>(index)?)?) };
    Ok(Ticket {
        title: open(&TICKET_TITLE, 5)?,
        description: open(&TICKET_DESCRIPTION, 6)?,
        location: open(&TICKET_LOCATION, 7)?,
        id: id.clone(),
        tenant_id: row.try_get(1)?,
        level_tenant_id: row.try_get(2)?,
        priority: Priority::of(&category, alarm_severity.as_deref()),
        alarm_severity,
        category,
        category_name: row.try_get(4)?,
        source: Source::parse(&row.try_get::<String, _>(8)?),
        reporter_account: row.try_get(9)?,
        installation_id: row.try_get(10)?,
        alarm_id: row.try_get(11)?,
        status: Status::parse(&row.try_get::<String, _>(12)?).unwrap_or(Status::Open),
        assignee_account: row.try_get(13)?,
        assignee_name: row.try_get(14)?,
        due_at: row.try_get(15)?,
        escalations: row.try_get(16)?,
        supervised: row.try_get::<i64, _>(17)? != 0,
        rating: row.try_get(18)?,
        feedback: row.try_get(19)?,
        created_at: row.try_get(20)?,
        updated_at: row.try_get(21)?,
    })
}

pub async fn categories(store: &Store) -> Result<Vec<Category>, sqlx::Error> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT id, name, time_limit_minutes FROM ticket_categories ORDER BY id").fetch_all(&store.pool).await?;
    Ok(rows.into_iter().map(|(id, name, time_limit_minutes)| Category { id, name, time_limit_minutes }).collect())
}

pub async fn category<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(conn: E, id: &str) -> Result<Option<Category>, sqlx::Error> {
    let row: Option<(String, String, i64)> =
        sqlx::query_as("SELECT id, name, time_limit_minutes FROM ticket_categories WHERE id = $1").bind(id).fetch_optional(conn).await?;
    Ok(row.map(|(id, name, time_limit_minutes)| Category { id, name, time_limit_minutes }))
}

pub async fn get<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(conn: E, vault: &Vault, id: &str) -> Result<Option<Ticket>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} {FROM} WHERE t.id = $1")).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(|row| from_row(vault, row)).transpose()
}

/// Write a new ticket; its title, description and location are sealed (they name homes).
pub async fn insert<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(conn: E, vault: &Vault, t: &Ticket) -> Result<(), sqlx::Error> {
    let (title, _) = TICKET_TITLE.seal(vault, &t.id, &t.title)?;
    let (description, _) = TICKET_DESCRIPTION.seal(vault, &t.id, &t.description)?;
    let (location, _) = TICKET_LOCATION.seal(vault, &t.id, &t.location)?;
    sqlx::query(
        "INSERT INTO tickets (id, tenant_id, level_tenant_id, category_id, title, description, location_label, source, reporter_account, installation_id, alarm_id,
            status, assignee_account, assignee_name, due_at, escalations, supervised, rating, feedback, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
    )
    .bind(&t.id)
    .bind(&t.tenant_id)
    .bind(&t.level_tenant_id)
    .bind(&t.category)
    .bind(title)
    .bind(description)
    .bind(location)
    .bind(t.source.as_str())
    .bind(&t.reporter_account)
    .bind(&t.installation_id)
    .bind(&t.alarm_id)
    .bind(t.status.as_str())
    .bind(&t.assignee_account)
    .bind(&t.assignee_name)
    .bind(t.due_at)
    .bind(t.escalations)
    .bind(i64::from(t.supervised))
    .bind(t.rating)
    .bind(&t.feedback)
    .bind(t.created_at)
    .bind(t.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Write the ticket if nobody changed it since `seen_updated_at` (optimistic locking).
pub async fn update<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(conn: E, t: &Ticket, seen_updated_at: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE tickets SET level_tenant_id = $1, status = $2, assignee_account = $3, assignee_name = $4, due_at = $5, escalations = $6, supervised = $7,
            rating = $8, feedback = $9, updated_at = $10 WHERE id = $11 AND updated_at = $12",
    )
    .bind(&t.level_tenant_id)
    .bind(t.status.as_str())
    .bind(&t.assignee_account)
    .bind(&t.assignee_name)
    .bind(t.due_at)
    .bind(t.escalations)
    .bind(i64::from(t.supervised))
    .bind(t.rating)
    .bind(&t.feedback)
    .bind(t.updated_at)
    .bind(&t.id)
    .bind(seen_updated_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn add_step(conn: &mut sqlx::AnyConnection, vault: &Vault, ticket_id: &str, actor: &str, action: &str, note: &str) -> Result<(), sqlx::Error> {
    let (note, _) = TICKET_STEP_NOTE.seal(vault, ticket_id, note)?;
    sqlx::query("INSERT INTO ticket_steps (ticket_id, seq, at, actor, action, note) SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM ticket_steps WHERE ticket_id = $1")
        .bind(ticket_id)
        .bind(crate::store::now_millis())
        .bind(actor)
        .bind(action)
        .bind(note)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn steps(store: &Store, ticket_id: &str) -> Result<Vec<Step>, sqlx::Error> {
    let rows: Vec<(i64, i64, String, String, String)> =
        sqlx::query_as("SELECT seq, at, actor, action, note FROM ticket_steps WHERE ticket_id = $1 ORDER BY seq")
            .bind(ticket_id)
            .fetch_all(&store.pool)
            .await?;
    rows.into_iter()
        .map(|(seq, at, actor, action, note)| Ok(Step { seq, at, actor, action, note: TICKET_STEP_NOTE.open(&store.vault, ticket_id, &note)? }))
        .collect()
}

pub async fn overdue(store: &Store, now: i64) -> Result<Vec<Ticket>, sqlx::Error> {
    let rows =
        sqlx::query(&format!("SELECT {COLUMNS} {FROM} WHERE t.status IN ('open', 'dispatched', 'accepted') AND t.due_at < $1 ORDER BY t.due_at LIMIT 500"))
            .bind(now)
            .fetch_all(&store.pool)
            .await?;
    rows.iter().map(|row| from_row(&store.vault, row)).collect()
}

/// Which tickets to list: any combination narrows.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Tickets about one of these nodes.
    pub tenants: Option<Vec<String>>,
    pub reporter_account: Option<String>,
    pub assignee_account: Option<String>,
    pub installation_id: Option<String>,
    pub status: Option<Status>,
    pub limit: u32,
}

pub async fn list(store: &Store, filter: &TicketFilter) -> Result<Vec<Ticket>, sqlx::Error> {
    let limit = i64::from(filter.limit.clamp(1, 500));
    let sql = format!(
        "SELECT {COLUMNS} {FROM} WHERE ($1 = '' OR t.reporter_account = $1) AND ($2 = '' OR t.assignee_account = $2) AND ($3 = '' OR t.installation_id = $3)
           AND ($4 = '' OR t.status = $4) AND ($5 = '' OR t.tenant_id = $5) ORDER BY t.created_at DESC, t.id DESC LIMIT $6"
    );
    let tenants: Vec<String> = filter.tenants.clone().unwrap_or_else(|| vec![String::new()]);
    let mut out = Vec::new();
    // One query per node keeps the SQL portable (no array binds in `Any`).
    for tenant in &tenants {
        let rows = sqlx::query(&sql)
            .bind(filter.reporter_account.as_deref().unwrap_or_default())
            .bind(filter.assignee_account.as_deref().unwrap_or_default())
            .bind(filter.installation_id.as_deref().unwrap_or_default())
            .bind(filter.status.map(Status::as_str).unwrap_or_default())
            .bind(tenant)
            .bind(limit)
            .fetch_all(&store.pool)
            .await?;
        for row in &rows {
            out.push(from_row(&store.vault, row)?);
        }
    }
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_for_help_and_critical_alarms_come_first() {
        assert_eq!(Priority::of(EMERGENCY_CATEGORY, None), Priority::Urgent);
        assert_eq!(Priority::of("safety", Some("critical")), Priority::Urgent);
        assert_eq!(Priority::of("safety", Some("major")), Priority::High);
        assert_eq!(Priority::of("safety", Some("warning")), Priority::Normal);
        assert_eq!(Priority::of("repair", None), Priority::Normal);
        assert!(Priority::Urgent < Priority::High && Priority::High < Priority::Normal, "the order the board sorts by");
    }

    fn ticket() -> Ticket {
        Ticket {
            id: "t1".into(),
            tenant_id: "xingfu-g1".into(),
            level_tenant_id: "xingfu-g1".into(),
            category: "elderly-care".into(),
            category_name: "养老服务".into(),
            title: "王阿姨家12小时未用水".into(),
            description: String::new(),
            location: "3栋2单元401".into(),
            source: Source::Plugin,
            reporter_account: Some("resident-1".into()),
            installation_id: None,
            alarm_id: None,
            status: Status::Open,
            assignee_account: None,
            assignee_name: None,
            due_at: 0,
            escalations: 0,
            supervised: false,
            rating: None,
            feedback: None,
            alarm_severity: None,
            priority: Priority::Normal,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn staff(account: &str) -> Actor {
        Actor { name: account.into(), account: Some(account.into()) }
    }

    #[test]
    fn the_normal_life_of_a_ticket() {
        let mut t = ticket();
        t.apply(&Action::Dispatch { assignee_account: "grid-1".into() }, &staff("admin"), 1).unwrap();
        assert_eq!(t.status, Status::Dispatched);
        assert!(matches!(t.apply(&Action::Accept, &staff("someone-else"), 2), Err(TicketError::OnlyAssignee)));
        t.apply(&Action::Accept, &staff("grid-1"), 3).unwrap();
        t.apply(&Action::Comment { note: "已电话联系家属".into() }, &staff("grid-1"), 4).unwrap();
        assert_eq!(t.apply(&Action::Resolve { note: "上门探访，老人安好".into() }, &staff("grid-1"), 5).unwrap().0, "resolved");
        assert!(matches!(t.apply(&Action::Close { rating: Some(6), feedback: None }, &staff("resident-1"), 6), Err(TicketError::RatingRange)));
        let (_, note) = t.apply(&Action::Close { rating: Some(5), feedback: Some("很及时".into()) }, &staff("resident-1"), 7).unwrap();
        assert_eq!(note, "满意度 5/5：很及时");
        assert_eq!(t.status, Status::Closed);
        assert_eq!(t.updated_at, 7);
    }

    #[test]
    fn a_department_ticket_goes_to_whoever_takes_it_on() {
        let mut t = ticket();
        t.apply(&Action::DispatchToDepartment { organisation: "org-1".into() }, &staff("admin"), 1).unwrap();
        t.assignee_name = Some("城管执法中队".into());
        assert_eq!((t.status, t.assignee_account.clone()), (Status::Dispatched, None));
        t.apply(&Action::Accept, &staff("officer-7"), 2).unwrap();
        assert_eq!(t.assignee_account.as_deref(), Some("officer-7"));
        assert_eq!(t.assignee_name.as_deref(), Some("officer-7（城管执法中队）"));
        assert!(matches!(t.apply(&Action::Resolve { note: "done".into() }, &staff("officer-7"), 3), Ok(("resolved", _))));
    }

    #[test]
    fn transitions_out_of_order_are_refused() {
        let mut t = ticket();
        assert!(matches!(t.apply(&Action::Accept, &staff("grid-1"), 1), Err(TicketError::State { .. })));
        assert!(matches!(t.apply(&Action::Close { rating: Some(3), feedback: None }, &staff("resident-1"), 1), Err(TicketError::State { .. })));
        assert!(matches!(t.apply(&Action::Comment { note: "  ".into() }, &staff("grid-1"), 1), Err(TicketError::NoteLength)));
        t.apply(&Action::Resolve { note: "done".into() }, &staff("grid-1"), 2).unwrap();
        assert!(matches!(t.apply(&Action::Supervise { note: "加快".into() }, &staff("admin"), 3), Err(TicketError::State { .. })));
        assert!(matches!(t.apply(&Action::Dispatch { assignee_account: "x".into() }, &staff("admin"), 3), Err(TicketError::State { .. })));
    }

    #[test]
    fn updated_at_always_moves_forward() {
        let mut t = ticket();
        t.updated_at = 100;
        t.apply(&Action::Comment { note: "a".into() }, &staff("x"), 50).unwrap();
        assert_eq!(t.updated_at, 101, "a clock step back must not reuse the version");
    }
}
