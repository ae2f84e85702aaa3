//! CSV import of base data: every row is checked first and the whole file is reported
//! (row, column, why); only a file without problems is written, in one transaction, so an
//! import either adds everything or nothing. Progress is readable while it runs.
use super::records::{encode_tags, house_label, parse_id_number, LIVES_ALONE_TAG};
use super::totals::RESIDENTS_COUNTER;
use crate::auth::accounts::is_valid_phone;
use crate::store::vault::{Domain, HOUSEHOLD_NAME, HOUSE_ADDRESS, HOUSE_ROOM, RESIDENT_BIRTH_DATE, RESIDENT_ID_NUMBER, RESIDENT_NAME, RESIDENT_PHONE};
use crate::store::{now_millis, Backend, Store};
use crate::tenancy::TenantTree;
use linli_formats::csv_table::{parse_table, Table, MAX_PROBLEMS};
pub use linli_formats::csv_table::{ImportKind, Problem};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const MAX_IMPORT_BYTES: usize = 32 * 1024 * 1024;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportState {
    Validating,
    Writing,
    /// Written in full.
    Done,
    /// The file has problems; nothing was written.
    Rejected,
    /// The database failed while writing; nothing was written.
    Failed,
}

impl ImportState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Validating => "validating",
            Self::Writing => "writing",
            Self::Done => "done",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "validating" => Self::Validating,
            "writing" => Self::Writing,
            "done" => Self::Done,
            "rejected" => Self::Rejected,
            _ => Self::Failed,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub id: String,
    pub kind: ImportKind,
    pub tenant_id: String,
    pub status: ImportState,
    /// Record rows in the file (without the header).
    pub total_rows: u64,
    /// Rows checked (while validating) or written (while writing).
    pub processed: u64,
    pub problems: Vec<Problem>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// Imports in progress in this process; finished ones are read from the database.
#[derive(Default)]
pub struct Imports {
    running: Mutex<HashMap<String, Arc<Running>>>,
}

struct Running {
    report: Mutex<ImportReport>,
    processed: AtomicU64,
}

impl Running {
    fn snapshot(&self) -> ImportReport {
        let mut report = self.report.lock().map(|r| r.clone()).unwrap_or_else(|p| p.into_inner().clone());
        report.processed = self.processed.load(Ordering::Relaxed);
        report
    }

    fn set_state(&self, state: ImportState) {
        if let Ok(mut r) = self.report.lock() {
            r.status = state;
        }
        self.processed.store(0, Ordering::Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// A resident row after checking.
struct ResidentRow {
    real_name: String,
    id_number: String,
    phone: String,
    tenant_id: String,
    birth_date: String,
    gender: &'static str,
    house: Option<(String, String, String)>,
    household: Option<String>,
    tags: Vec<String>,
}

struct NamedRow {
    name: String,
    kind: String,
    tenant_id: String,
    extra: String,
}

enum Checked {
    Residents(Vec<ResidentRow>),
    Named(Vec<NamedRow>),
}

fn split_tags(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    text.split([';', '；', '、', '|']).map(str::trim).filter(|t| !t.is_empty() && seen.insert(*t)).map(str::to_string).collect()
}

/// Which of `ids` some resident has already, found by their blind indexes.
async fn existing_id_numbers(store: &Store, ids: &[&str]) -> Result<HashSet<String>, sqlx::Error> {
    let mut by_index = HashMap::with_capacity(ids.len());
    for id in ids {
        by_index.insert(store.vault.blind_index(Domain::IdNumber, id)?, id.to_string());
    }
    let indexes: Vec<&String> = by_index.keys().collect();
    let mut found = HashSet::new();
    for chunk in indexes.chunks(500) {
        let sql = format!("SELECT id_number_bidx FROM base_residents WHERE id_number_bidx IN ({})", store.params(1, chunk.len()));
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for index in chunk {
            query = query.bind(*index);
        }
        found.extend(query.fetch_all(&store.pool).await?.into_iter().filter_map(|index| by_index.get(&index).cloned()));
    }
    Ok(found)
}

/// Records a problem (row, column, what is wrong) while the list has room.
/// What is wrong: its code, the value it names, and the English text.
type Found<'v> = (&'v str, Option<String>, String);
type ReportProblem<'a> = dyn for<'v> FnMut(usize, &str, Found<'v>, &mut Vec<Problem>) + 'a;

/// Check every row; `problems` gets everything wrong.
async fn check(
    store: &Store,
    tree: &TenantTree,
    kind: ImportKind,
    scope: &str,
    table: &Table,
    progress: &AtomicU64,
    problems: &mut Vec<Problem>,
) -> Result<Checked, sqlx::Error> {
    let mut problem = |row: usize, column: &str, (code, value, text): Found<'_>, problems: &mut Vec<Problem>| {
        if problems.len() < MAX_PROBLEMS {
            problems.push(Problem::new(row + 2, column, code, value, text));
        }
    };
    let tenant_of = |row: usize, value: &str, problems: &mut Vec<Problem>, problem: &mut ReportProblem<'_>| -> Option<String> {
        match tree.get(value) {
            None if value.is_empty() => problem(row, "grid", ("empty", None, "is empty".into()), problems),
            None => problem(row, "grid", ("grid-unknown", Some(value.into()), format!("`{value}` is not a tenant node of this platform")), problems),
            Some(node) if !tree.is_within(&node.id, scope) => {
                problem(row, "grid", ("grid-outside", Some(value.into()), format!("`{value}` is outside `{scope}`, where this import is made")), problems)
            }
            Some(node) => return Some(node.id.clone()),
        }
        None
    };
    if kind != ImportKind::Residents {
        let extra = if kind == ImportKind::Places { "address" } else { "contact" };
        let mut rows = Vec::with_capacity(table.rows.len());
        for (i, record) in table.rows.iter().enumerate() {
            let name = table.get(record, "name");
            let kind_text = table.get(record, "kind");
            if name.is_empty() {
                problem(i, "name", ("empty", None, "is empty".into()), problems);
            }
            if kind_text.is_empty() {
                problem(i, "kind", ("empty", None, "is empty".into()), problems);
            }
            let tenant = tenant_of(i, table.get(record, "grid"), problems, &mut problem);
            if let Some(tenant_id) = tenant {
                rows.push(NamedRow { name: name.into(), kind: kind_text.into(), tenant_id, extra: table.get(record, extra).into() });
            }
            progress.fetch_add(1, Ordering::Relaxed);
        }
        return Ok(Checked::Named(rows));
    }
    let ids: Vec<&str> = table.rows.iter().map(|r| table.get(r, "id_number")).collect();
    let registered = existing_id_numbers(store, &ids).await?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let today = super::records::today();
    let mut rows = Vec::with_capacity(table.rows.len());
    for (i, record) in table.rows.iter().enumerate() {
        progress.fetch_add(1, Ordering::Relaxed);
        let real_name = table.get(record, "real_name");
        if real_name.is_empty() || real_name.chars().count() > 50 {
            problem(i, "real_name", ("name-length", None, "must be 1–50 characters".into()), problems);
        }
        let id_number = table.get(record, "id_number").to_ascii_uppercase();
        let parsed = match parse_id_number(&id_number) {
            Ok(p) if p.birth_date > today => {
                problem(i, "id_number", ("birth-in-future", None, "the birth date in it is in the future".into()), problems);
                None
            }
            Ok(p) => Some(p),
            Err(why) => {
                problem(i, "id_number", ("id-number-invalid", None, why), problems);
                None
            }
        };
        if parsed.is_some() {
            if let Some(first) = seen.insert(id_number.clone(), i) {
                problem(
                    i,
                    "id_number",
                    ("id-number-repeated", Some((first + 2).to_string()), format!("the same ID number is already on row {}", first + 2)),
                    problems,
                );
            } else if registered.contains(&id_number) {
                problem(i, "id_number", ("already-registered", None, "this resident is already registered".into()), problems);
            }
        }
        let phone = table.get(record, "phone");
        if !is_valid_phone(phone) {
            problem(i, "phone", ("phone-invalid", Some(phone.into()), format!("`{phone}` is not an 11-digit mobile number")), problems);
        }
        let tenant = tenant_of(i, table.get(record, "grid"), problems, &mut problem);
        let parts = [table.get(record, "building"), table.get(record, "unit"), table.get(record, "room")];
        let house = match parts {
            ["", "", ""] => None,
            [b, u, r] if !b.is_empty() && !u.is_empty() && !r.is_empty() => Some((b.to_string(), u.to_string(), r.to_string())),
            _ => {
                problem(i, "building", ("house-incomplete", None, "building, unit and room go together: give all three or none".into()), problems);
                None
            }
        };
        if let (Some(tenant_id), Some(id)) = (tenant, parsed) {
            let household = Some(table.get(record, "household")).filter(|h| !h.is_empty()).map(str::to_string);
            rows.push(ResidentRow {
                real_name: real_name.into(),
                id_number,
                phone: phone.into(),
                tenant_id,
                birth_date: id.birth_date.to_string(),
                gender: id.gender,
                house,
                household,
                tags: split_tags(table.get(record, "tags")),
            });
        }
    }
    Ok(Checked::Residents(rows))
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Bind parameters per INSERT statement: many rows a statement save PostgreSQL's round
/// trips (its limit is 65,535 parameters); SQLite has none to save, and takes at most 32,766.
fn binds_per_statement(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1_000,
        Backend::Postgres => 6_000,
    }
}

/// One value of a row `insert_rows` writes.
enum Cell {
    Text(String),
    MaybeText(Option<String>),
    Int(i64),
}

/// Insert `rows` (each with a value for every one of `columns`) in multi-row statements;
/// `on_conflict` follows each statement's VALUES; `written` gets the rows as they go in.
async fn insert_rows(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Cell>],
    on_conflict: &str,
    written: Option<&AtomicU64>,
) -> Result<(), sqlx::Error> {
    let per_statement = (binds_per_statement(store.backend) / columns.len()).max(1);
    for chunk in rows.chunks(per_statement) {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        let mut next = 1;
        for (i, _) in chunk.iter().enumerate() {
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for c in 0..columns.len() {
                sql.push_str(if c == 0 { "" } else { ", " });
                sql.push_str(&store.param(next));
                next += 1;
            }
            sql.push(')');
        }
        sql.push_str(on_conflict);
        let mut query = sqlx::query(&sql);
        for cell in chunk.iter().flatten() {
            query = match cell {
                Cell::Text(text) => query.bind(text),
                Cell::MaybeText(text) => query.bind(text),
                Cell::Int(number) => query.bind(*number),
            };
        }
        query.execute(&mut **tx).await?;
        if let Some(written) = written {
            written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// A house as the database finds it: tenant, building, unit and the blind index of the room.
type HouseKey = (String, String, String, String);

/// The houses the database holds already at the tenant nodes of `rows`.
async fn existing_houses(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    rows: &[ResidentRow],
) -> Result<HashMap<HouseKey, String>, sqlx::Error> {
    let tenants: Vec<&String> = rows.iter().filter(|r| r.house.is_some()).map(|r| &r.tenant_id).collect::<HashSet<_>>().into_iter().collect();
    let mut found = HashMap::new();
    for chunk in tenants.chunks(200) {
        let sql = format!("SELECT id, tenant_id, building, unit, room_bidx FROM base_houses WHERE tenant_id IN ({})", store.params(1, chunk.len()));
        let mut query = sqlx::query(&sql);
        for tenant in chunk {
            query = query.bind(*tenant);
        }
        for row in query.fetch_all(&mut **tx).await? {
            let Some(room_index) = row.try_get::<Option<String>, _>("room_bidx")? else { continue };
            found.insert((row.try_get("tenant_id")?, row.try_get("building")?, row.try_get("unit")?, room_index), row.try_get("id")?);
        }
    }
    Ok(found)
}

/// Residents sealed and written per round: one round's rows are in memory at a time (a
/// 32 MiB file holds some 300,000 residents).
const RESIDENTS_PER_ROUND: usize = 5_000;

/// What the rounds of one import share: the houses and households known so far, and the
/// counts per tenant node and birth year, written at the end.
#[derive(Default)]
struct Known {
    houses: HashMap<HouseKey, String>,
    households: HashMap<(String, String), String>,
    /// (tenant, birth year) → (residents, of them living alone)
    counts: HashMap<(String, i64), (i64, i64)>,
}

/// One round's rows of new houses, households, residents and tags, sealed.
#[derive(Default)]
struct ResidentWrites {
    houses: Vec<Vec<Cell>>,
    households: Vec<Vec<Cell>>,
    residents: Vec<Vec<Cell>>,
    /// (tag, resident, tenant, birth year)
    tags: Vec<Vec<Cell>>,
}

fn resident_writes(store: &Store, rows: Vec<ResidentRow>, known: &mut Known, now: i64) -> Result<ResidentWrites, sqlx::Error> {
    let mut out = ResidentWrites { residents: Vec::with_capacity(rows.len()), ..Default::default() };
    let Known { houses, households, counts } = known;
    for row in rows {
        let house_id = match &row.house {
            None => None,
            Some((b, u, r)) => {
                let key = (row.tenant_id.clone(), b.clone(), u.clone(), store.vault.blind_index(Domain::Room, r)?);
                Some(match houses.get(&key) {
                    Some(id) => id.clone(),
                    None => {
                        let id = new_id("house");
                        let (room, room_index) = HOUSE_ROOM.seal(&store.vault, &id, r)?;
                        let (address, _) = HOUSE_ADDRESS.seal(&store.vault, &id, &house_label(b, u, r))?;
                        out.houses.push(vec![
                            Cell::Text(id.clone()),
                            Cell::Text(row.tenant_id.clone()),
                            Cell::Text(b.clone()),
                            Cell::Text(u.clone()),
                            Cell::Text(room),
                            Cell::MaybeText(room_index),
                            Cell::Text(address),
                            Cell::Int(now),
                        ]);
                        houses.insert(key, id.clone());
                        id
                    }
                })
            }
        };
        // A household is named in the file, or else is everyone of the same house.
        let household_key = match (&row.household, &house_id) {
            (Some(name), _) => Some((row.tenant_id.clone(), name.clone())),
            (None, Some(house)) => Some((row.tenant_id.clone(), format!("house:{house}"))),
            (None, None) => None,
        };
        let household_id = match household_key {
            None => None,
            Some(key) => Some(match households.get(&key) {
                Some(id) => id.clone(),
                None => {
                    let id = new_id("household");
                    let name = row.household.clone().unwrap_or_else(|| row.house.as_ref().map(|(b, u, r)| house_label(b, u, r)).unwrap_or_default());
                    let (name, _) = HOUSEHOLD_NAME.seal(&store.vault, &id, &name)?;
                    out.households.push(vec![
                        Cell::Text(id.clone()),
                        Cell::Text(row.tenant_id.clone()),
                        Cell::MaybeText(house_id.clone()),
                        Cell::Text(name),
                        Cell::Int(now),
                    ]);
                    households.insert(key, id.clone());
                    id
                }
            }),
        };
        let id = new_id("resident");
        let (id_number, id_number_index) = RESIDENT_ID_NUMBER.seal(&store.vault, &id, &row.id_number)?;
        let (phone, phone_index) = RESIDENT_PHONE.seal(&store.vault, &id, &row.phone)?;
        let (real_name, name_index) = RESIDENT_NAME.seal(&store.vault, &id, &row.real_name)?;
        let (birth_date, _) = RESIDENT_BIRTH_DATE.seal(&store.vault, &id, &row.birth_date)?;
        // Checked on import: the date is a valid YYYY-MM-DD.
        let birth_year: i64 = row.birth_date.get(..4).and_then(|year| year.parse().ok()).unwrap_or(0);
        let count = counts.entry((row.tenant_id.clone(), birth_year)).or_default();
        count.0 += 1;
        count.1 += i64::from(row.tags.iter().any(|t| t == LIVES_ALONE_TAG));
        for tag in &row.tags {
            out.tags.push(vec![Cell::Text(tag.clone()), Cell::Text(id.clone()), Cell::Text(row.tenant_id.clone()), Cell::Int(birth_year)]);
        }
        out.residents.push(vec![
            Cell::Text(id),
            Cell::Text(row.tenant_id),
            Cell::Text(real_name),
            Cell::MaybeText(name_index),
            Cell::Text(id_number),
            Cell::MaybeText(id_number_index),
            Cell::Text(phone),
            Cell::MaybeText(phone_index),
            Cell::Text(birth_date),
            Cell::Int(birth_year),
            Cell::Text(row.gender.to_string()),
            Cell::Text(encode_tags(&row.tags)),
            Cell::MaybeText(house_id),
            Cell::MaybeText(household_id),
            Cell::Int(now),
        ]);
    }
    Ok(out)
}

/// The tables an import of `kind` writes.
fn written_tables(kind: ImportKind) -> &'static [&'static str] {
    match kind {
        ImportKind::Residents => &["base_residents", "base_houses", "base_households", "base_resident_tags", "base_resident_counts"],
        ImportKind::Places => &["base_places"],
        ImportKind::Organisations => &["base_organisations"],
    }
}

/// Insert one round's rows: houses and households before the residents who name them.
async fn write_round(store: &Store, tx: &mut sqlx::Transaction<'static, sqlx::Any>, writes: &ResidentWrites, progress: &AtomicU64) -> Result<(), sqlx::Error> {
    insert_rows(store, tx, "base_houses", &["id", "tenant_id", "building", "unit", "room", "room_bidx", "address", "created_at"], &writes.houses, "", None)
        .await?;
    insert_rows(store, tx, "base_households", &["id", "tenant_id", "house_id", "name", "created_at"], &writes.households, "", None).await?;
    insert_rows(
        store,
        tx,
        "base_residents",
        &[
            "id",
            "tenant_id",
            "real_name",
            "real_name_bidx",
            "id_number",
            "id_number_bidx",
            "phone",
            "phone_bidx",
            "birth_date",
            "birth_year",
            "gender",
            "tags",
            "house_id",
            "household_id",
            "created_at",
        ],
        &writes.residents,
        "",
        Some(progress),
    )
    .await?;
    insert_rows(store, tx, "base_resident_tags", &["tag", "resident_id", "tenant_id", "birth_year"], &writes.tags, "", None).await
}

async fn write(store: &Store, kind: ImportKind, checked: Checked, progress: &AtomicU64) -> Result<(), sqlx::Error> {
    let now = now_millis();
    let mut tx = store.begin_write().await?;
    match checked {
        Checked::Named(rows) => {
            let (table, extra, prefix) =
                if kind == ImportKind::Places { ("base_places", "address", "place") } else { ("base_organisations", "contact", "org") };
            let rows: Vec<Vec<Cell>> = rows
                .into_iter()
                .map(|row| {
                    vec![
                        Cell::Text(new_id(prefix)),
                        Cell::Text(row.tenant_id),
                        Cell::Text(row.name),
                        Cell::Text(row.kind),
                        Cell::Text(row.extra),
                        Cell::Int(now),
                    ]
                })
                .collect();
            insert_rows(store, &mut tx, table, &["id", "tenant_id", "name", "kind", extra, "created_at"], &rows, "", Some(progress)).await?;
        }
        Checked::Residents(rows) => {
            let mut known = Known { houses: existing_houses(store, &mut tx, &rows).await?, ..Default::default() };
            let mut rows = rows.into_iter();
            loop {
                let round: Vec<ResidentRow> = rows.by_ref().take(RESIDENTS_PER_ROUND).collect();
                if round.is_empty() {
                    break;
                }
                let writes = resident_writes(store, round, &mut known, now)?;
                write_round(store, &mut tx, &writes, progress).await?;
            }
            let counts: Vec<Vec<Cell>> = known
                .counts
                .into_iter()
                .map(|((tenant, year), (residents, alone))| vec![Cell::Text(tenant), Cell::Int(year), Cell::Int(residents), Cell::Int(alone)])
                .collect();
            insert_rows(
                store,
                &mut tx,
                "base_resident_counts",
                &["tenant_id", "birth_year", "residents", "lives_alone"],
                &counts,
                " ON CONFLICT (tenant_id, birth_year) DO UPDATE SET residents = base_resident_counts.residents + excluded.residents, \
                 lives_alone = base_resident_counts.lives_alone + excluded.lives_alone",
                None,
            )
            .await?;
            crate::store::bump_change_counter(&mut tx, RESIDENTS_COUNTER).await?;
        }
    }
    tx.commit().await
}

async fn save_report(store: &Store, report: &ImportReport, started_by: &str) -> Result<(), sqlx::Error> {
    let problems = serde_json::to_string(&report.problems).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO base_imports (id, kind, tenant_id, status, total_rows, processed, problems, started_by, created_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, total_rows = excluded.total_rows, processed = excluded.processed, problems = excluded.problems, finished_at = excluded.finished_at",
    )
    .bind(&report.id)
    .bind(report.kind.as_str())
    .bind(&report.tenant_id)
    .bind(report.status.as_str())
    .bind(report.total_rows as i64)
    .bind(report.processed as i64)
    .bind(problems)
    .bind(started_by)
    .bind(report.created_at)
    .bind(report.finished_at)
    .execute(&store.pool)
    .await?;
    Ok(())
}

impl Imports {
    /// Start an import in the background and return its first report; poll `report`.
    pub async fn start(
        self: &Arc<Self>,
        store: Store,
        tree: Arc<TenantTree>,
        kind: ImportKind,
        scope: &str,
        bytes: Vec<u8>,
        started_by: &str,
    ) -> Result<ImportReport, ImportError> {
        if tree.get(scope).is_none() {
            return Err(ImportError::Invalid(format!("tenant `{scope}` does not exist")));
        }
        if bytes.len() > MAX_IMPORT_BYTES {
            return Err(ImportError::Invalid(format!("the file is {} bytes; split it into files of at most {MAX_IMPORT_BYTES} bytes", bytes.len())));
        }
        let report = ImportReport {
            id: new_id("import"),
            kind,
            tenant_id: scope.into(),
            status: ImportState::Validating,
            total_rows: 0,
            processed: 0,
            problems: vec![],
            created_at: now_millis(),
            finished_at: None,
        };
        save_report(&store, &report, started_by).await?;
        let running = Arc::new(Running { report: Mutex::new(report.clone()), processed: AtomicU64::new(0) });
        if let Ok(mut map) = self.running.lock() {
            map.insert(report.id.clone(), running.clone());
        }
        let imports = self.clone();
        let started_by = started_by.to_string();
        let scope = scope.to_string();
        tokio::spawn(async move {
            let finished = run(&store, &tree, kind, &scope, &bytes, &running).await;
            if let Err(e) = save_report(&store, &finished, &started_by).await {
                tracing::error!(import = finished.id, "cannot record the import's result: {e}");
            }
            if let Ok(mut map) = imports.running.lock() {
                map.remove(&finished.id);
            }
        });
        Ok(report)
    }

    /// Import and wait for the outcome (set-up files and the demo).
    pub async fn run_now(store: &Store, tree: &TenantTree, kind: ImportKind, scope: &str, bytes: &[u8], started_by: &str) -> Result<ImportReport, ImportError> {
        let report = ImportReport {
            id: new_id("import"),
            kind,
            tenant_id: scope.into(),
            status: ImportState::Validating,
            total_rows: 0,
            processed: 0,
            problems: vec![],
            created_at: now_millis(),
            finished_at: None,
        };
        let running = Running { report: Mutex::new(report), processed: AtomicU64::new(0) };
        let finished = run(store, tree, kind, scope, bytes, &running).await;
        save_report(store, &finished, started_by).await?;
        Ok(finished)
    }

    pub async fn report(&self, store: &Store, id: &str) -> Result<Option<ImportReport>, ImportError> {
        let running = self.running.lock().ok().and_then(|m| m.get(id).cloned());
        if let Some(running) = running {
            return Ok(Some(running.snapshot()));
        }
        let row = sqlx::query("SELECT id, kind, tenant_id, status, total_rows, processed, problems, created_at, finished_at FROM base_imports WHERE id = $1")
            .bind(id)
            .fetch_optional(&store.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let problems: String = row.try_get("problems")?;
        Ok(Some(ImportReport {
            id: row.try_get("id")?,
            kind: ImportKind::parse(&row.try_get::<String, _>("kind")?).unwrap_or(ImportKind::Residents),
            tenant_id: row.try_get("tenant_id")?,
            status: ImportState::parse(&row.try_get::<String, _>("status")?),
            total_rows: row.try_get::<i64, _>("total_rows")? as u64,
            processed: row.try_get::<i64, _>("processed")? as u64,
            problems: serde_json::from_str(&problems).unwrap_or_default(),
            created_at: row.try_get("created_at")?,
            finished_at: row.try_get("finished_at")?,
        }))
    }
}

/// Whether an import recorded as `started_by` finished (set-ups tag theirs, so that
/// applying a set-up again does not import twice).
pub async fn done_by(store: &Store, started_by: &str) -> Result<bool, sqlx::Error> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM base_imports WHERE started_by = $1 AND status = 'done'").bind(started_by).fetch_one(&store.pool).await?;
    Ok(n > 0)
}

async fn run(store: &Store, tree: &TenantTree, kind: ImportKind, scope: &str, bytes: &[u8], running: &Running) -> ImportReport {
    let mut problems = Vec::new();
    let table = parse_table(kind, bytes, &mut problems);
    if let (Some(table), Ok(mut r)) = (&table, running.report.lock()) {
        r.total_rows = table.rows.len() as u64;
    }
    let mut outcome = ImportState::Rejected;
    if let Some(table) = table.filter(|_| problems.is_empty()) {
        if table.rows.is_empty() {
            problems.push(Problem::new(2, "", "no-rows", None, "the file has a header but no rows"));
        }
        match check(store, tree, kind, scope, &table, &running.processed, &mut problems).await {
            Err(e) => {
                problems.push(Problem::new(0, "", "database", None, format!("the database failed while checking: {e}")));
                outcome = ImportState::Failed;
            }
            Ok(checked) if problems.is_empty() => {
                running.set_state(ImportState::Writing);
                outcome = match write(store, kind, checked, &running.processed).await {
                    Ok(()) => {
                        if let Err(e) = store.refresh_statistics(written_tables(kind)).await {
                            tracing::warn!("the planner's statistics were not refreshed after the import: {e}");
                        }
                        ImportState::Done
                    }
                    Err(e) => {
                        tracing::error!("base import failed while writing (rolled back): {e}");
                        problems.push(Problem::new(0, "", "database", None, format!("the database failed while writing; nothing was imported: {e}")));
                        ImportState::Failed
                    }
                };
            }
            Ok(_) => {}
        }
    }
    let mut report = running.snapshot();
    report.status = outcome;
    report.problems = problems;
    report.finished_at = Some(now_millis());
    if outcome != ImportState::Done {
        report.processed = 0;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_named_twice_in_a_cell_is_kept_once() {
        // The tag index has one row per (tag, resident): a repeat would fail the import.
        assert_eq!(split_tags("独居老人；低保、独居老人| 低保 ;"), ["独居老人", "低保"]);
        assert!(split_tags(" ; ").is_empty());
    }
}
