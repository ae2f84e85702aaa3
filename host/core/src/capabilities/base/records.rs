//! Base records, their validation and masking, and the queries every reader shares
//! (staff API, the `base` capability, profile look-ups). Each query takes the set of
//! tenant nodes the reader may see; nothing here decides who that is.
use super::totals::ResidentTotals;
use crate::store::vault::{Domain, HOUSE_ADDRESS, HOUSE_ROOM, RESIDENT_BIRTH_DATE, RESIDENT_ID_NUMBER, RESIDENT_NAME, RESIDENT_PHONE};
use crate::store::Store;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

/// The tag of residents living alone, which the dashboards count among the elders.
pub const LIVES_ALONE_TAG: &str = "独居老人";

/// Tags a county uses for residents who need attention; free tags are allowed too.
pub const KNOWN_TAGS: &[&str] = &[LIVES_ALONE_TAG, "空巢老人", "低保", "残疾", "退役军人", "特困", "留守儿童"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Resident {
    pub id: String,
    /// The tenant node (usually a grid) the resident lives in.
    pub tenant_id: String,
    pub real_name: String,
    pub id_number: String,
    pub phone: String,
    pub birth_date: String,
    /// `男` or `女`, from the ID number.
    pub gender: String,
    pub tags: Vec<String>,
    pub house_id: Option<String>,
    pub household_id: Option<String>,
    /// `3栋2单元501`, when the resident has a house.
    pub address: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct House {
    pub id: String,
    pub tenant_id: String,
    pub building: String,
    pub unit: String,
    pub room: String,
    pub address: String,
}

/// A place (场所) or an organisation (组织): named things at a tenant node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Place {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub kind: String,
    pub address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Organisation {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub kind: String,
    pub contact: String,
}

/// What a mainland citizen ID number (GB 11643) says about its holder.
#[derive(Debug, Clone, PartialEq)]
pub struct IdNumber {
    pub birth_date: NaiveDate,
    pub gender: &'static str,
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// The check character for the first 17 digits of an ID number.
pub fn id_check_char(first17: &str) -> Option<char> {
    let digits: Vec<u32> = first17.chars().map(|c| c.to_digit(10)).collect::<Option<_>>()?;
    if digits.len() != 17 {
        return None;
    }
    let sum: u32 = digits.iter().zip(ID_WEIGHTS).map(|(d, w)| d * w).sum();
    Some(ID_CHECK[(sum % 11) as usize] as char)
}

/// Checks length, digits, the birth date and the check character.
pub fn parse_id_number(id: &str) -> Result<IdNumber, String> {
    if id.len() != 18 || !id.is_ascii() {
        return Err("must be 18 characters".into());
    }
    let (first17, check) = id.split_at(17);
    let expected = id_check_char(first17).ok_or("the first 17 characters must be digits")?;
    if !check.eq_ignore_ascii_case(&expected.to_string()) {
        return Err(format!("the check character is wrong (expected {expected}); the number was probably mistyped"));
    }
    let birth_date = NaiveDate::parse_from_str(&id[6..14], "%Y%m%d").map_err(|_| format!("`{}` is not a valid birth date", &id[6..14]))?;
    let gender_digit = id[16..17].parse::<u32>().map_err(|_| "the 17th character must be a digit")?;
    Ok(IdNumber { birth_date, gender: if gender_digit % 2 == 1 { "男" } else { "女" } })
}

/// `330102********1234`: region kept, birth date and sequence hidden.
pub fn mask_id_number(id: &str) -> String {
    if id.len() == 18 && id.is_ascii() {
        format!("{}********{}", &id[..6], &id[14..])
    } else {
        "******".into()
    }
}

/// `王*英`: a name as the audit log shows it — enough to recognise, not the whole name.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".into(),
        2 => format!("{}*", chars[0]),
        n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
    }
}

pub use crate::util::today;

pub fn age_on(birth_date: NaiveDate, day: NaiveDate) -> u32 {
    let mut age = day.year() - birth_date.year();
    if (day.month(), day.day()) < (birth_date.month(), birth_date.day()) {
        age -= 1;
    }
    age.max(0) as u32
}

/// The birth date of the youngest person who is at least `age` on `day`.
fn latest_birth_for_age(age: u32, day: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(day.year() - age as i32, day.month(), day.day())
        // 29 February in a non-leap year
        .or_else(|| NaiveDate::from_ymd_opt(day.year() - age as i32, day.month(), 28))
        .unwrap_or(day)
}

pub fn encode_tags(tags: &[String]) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        format!("|{}|", tags.join("|"))
    }
}

fn decode_tags(text: &str) -> Vec<String> {
    text.split('|').filter(|t| !t.is_empty()).map(str::to_string).collect()
}

/// Which residents a reader wants, within what they may see.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResidentFilter {
    /// Residents having every one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    pub min_age: Option<u32>,
    pub max_age: Option<u32>,
    /// The whole real name (names are sealed: found by blind index, never by a part).
    pub name: Option<String>,
}

pub struct ResidentPage {
    pub items: Vec<Resident>,
    pub next_cursor: Option<String>,
    /// Residents at the scope's nodes, whatever the filter.
    pub in_scope: i64,
}

const RESIDENT_COLUMNS: &str =
    "r.id, r.tenant_id, r.real_name, r.id_number, r.phone, r.birth_date, r.gender, r.tags, r.house_id, r.household_id, h.building, h.unit, h.room";

/// A resident row with its sealed fields opened.
fn resident_from_row(store: &Store, row: &AnyRow) -> Result<Resident, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let building: Option<String> = row.try_get("building")?;
    let unit: Option<String> = row.try_get("unit")?;
    let room: Option<String> = row.try_get("room")?;
    let house_id: Option<String> = row.try_get("house_id")?;
    let room = match (&house_id, room) {
        (Some(house), Some(sealed)) => Some(HOUSE_ROOM.open(&store.vault, house, &sealed)?),
        _ => None,
    };
    Ok(Resident {
        tenant_id: row.try_get("tenant_id")?,
        real_name: RESIDENT_NAME.open(&store.vault, &id, &row.try_get::<String, _>("real_name")?)?,
        id_number: RESIDENT_ID_NUMBER.open(&store.vault, &id, &row.try_get::<String, _>("id_number")?)?,
        phone: RESIDENT_PHONE.open(&store.vault, &id, &row.try_get::<String, _>("phone")?)?,
        birth_date: RESIDENT_BIRTH_DATE.open(&store.vault, &id, &row.try_get::<String, _>("birth_date")?)?,
        gender: row.try_get("gender")?,
        tags: decode_tags(&row.try_get::<String, _>("tags")?),
        house_id,
        household_id: row.try_get("household_id")?,
        id,
        address: match (building, unit, room) {
            (Some(b), Some(u), Some(r)) => Some(house_label(&b, &u, &r)),
            _ => None,
        },
    })
}

pub fn house_label(building: &str, unit: &str, room: &str) -> String {
    format!("{building}栋{unit}单元{room}")
}

/// How a page of residents is read; each keeps the page's cost from growing with the county.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadPath {
    /// Through the index of the whole name (a few rows at most).
    ByName,
    /// Through the first tag's index (`base_resident_tags`) in id order.
    ByTag,
    /// Through the primary key in id order, every row checked against the rest.
    InIdOrder,
}

/// Residents at any of `tenants`, in id order, `limit` per page.
///
/// A scope holding much of the county is read in id order, skipping residents elsewhere,
/// which fills a page after a few rows; a small one (a grid, a community) through its tenant
/// nodes' index, the few thousand rows sorted. `totals` tells which the scope is. Birth
/// dates are sealed: the query narrows by the clear birth year, and the exact age bounds are
/// checked on the opened dates, reading on until the page is full.
pub async fn find_residents(
    store: &Store,
    totals: &ResidentTotals,
    tenants: &[String],
    filter: &ResidentFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<ResidentPage, sqlx::Error> {
    if tenants.is_empty() {
        return Ok(ResidentPage { items: vec![], next_cursor: None, in_scope: 0 });
    }
    let limit = limit.clamp(1, 500) as usize;
    let figures = totals.by_node(store).await?;
    let everyone: i64 = figures.values().map(|f| f.residents).sum();
    let in_scope: i64 = tenants.iter().filter_map(|t| figures.get(t)).map(|f| f.residents).sum();
    // Rows read for a page: about limit × everyone / in_scope in id order, in_scope through
    // the tenant index. One node is always read through it (in id order already).
    let wide = tenants.len() > 1 && (in_scope as f64).powi(2) > (limit as f64 + 1.0) * everyone as f64;
    let name = filter.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    // Wildcards and the tag delimiter in a filter would widen the match; they are dropped.
    let tags: Vec<String> = filter.tags.iter().map(|t| t.replace(['%', '_', '|'], "")).filter(|t| !t.is_empty()).collect();
    let path = match (name, tags.first()) {
        (Some(_), _) => ReadPath::ByName,
        (None, Some(_)) => ReadPath::ByTag,
        (None, None) => ReadPath::InIdOrder,
    };
    let mut binds: Vec<String> = Vec::new();
    // Parameters appear in the SQL in the order they are bound (see `Store::param`).
    let mut bind = |value: String| {
        binds.push(value);
        store.param(binds.len())
    };
    // The column a page is ordered and continued by, and where the scope and birth years are
    // read: the tag index carries both, so its rows are checked before the resident is read.
    let (from, order, at) = match path {
        ReadPath::ByTag => ("base_resident_tags t JOIN base_residents r ON r.id = t.resident_id", "t.resident_id", "t"),
        _ => ("base_residents r", "r.id", "r"),
    };
    let mut conditions = Vec::new();
    if path == ReadPath::ByTag {
        conditions.push(format!("t.tag = {}", bind(tags[0].clone())));
    }
    let nodes = tenants.iter().map(|t| bind(t.clone())).collect::<Vec<_>>().join(", ");
    // As an expression the tenant column is not looked up through its index (by either
    // database), so a wide scope or a name is read through the path chosen above.
    let narrow_through_index = !wide && path != ReadPath::ByName;
    conditions.push(if narrow_through_index { format!("{at}.tenant_id IN ({nodes})") } else { format!("{at}.tenant_id || '' IN ({nodes})") });
    if let Some(name) = name {
        conditions.push(format!("r.real_name_bidx = {}", bind(store.vault.blind_index(Domain::Name, name)?)));
    }
    for tag in tags.iter().skip(usize::from(path == ReadPath::ByTag)) {
        conditions.push(format!("r.tags LIKE {}", bind(format!("%|{tag}|%"))));
    }
    let day = today();
    // Born on or before `born_by` (old enough) and on or after `born_from` (young enough).
    let born_by = filter.min_age.map(|min| latest_birth_for_age(min, day));
    let born_from = filter.max_age.map(|max| latest_birth_for_age(max + 1, day) + chrono::Duration::days(1));
    if let Some(born_by) = born_by {
        conditions.push(format!("{at}.birth_year <= CAST({} AS INTEGER)", bind(born_by.year().to_string())));
    }
    if let Some(born_from) = born_from {
        conditions.push(format!("{at}.birth_year >= CAST({} AS INTEGER)", bind(born_from.year().to_string())));
    }
    let after = bind(String::new());
    let page_sql = format!(
        "SELECT {RESIDENT_COLUMNS} FROM {from} LEFT JOIN base_houses h ON h.id = r.house_id WHERE {} AND {order} > {after} ORDER BY {order} LIMIT {}",
        conditions.join(" AND "),
        limit + 1
    );
    let in_bounds = |birth_date: &str| {
        if born_by.is_none() && born_from.is_none() {
            return true;
        }
        let Ok(born) = NaiveDate::parse_from_str(birth_date, "%Y-%m-%d") else { return false };
        born_by.is_none_or(|by| born <= by) && born_from.is_none_or(|from| born >= from)
    };
    let mut items = Vec::new();
    if let Some(last) = binds.last_mut() {
        *last = cursor.unwrap_or_default().to_string();
    }
    loop {
        let mut query = sqlx::query(&page_sql);
        for value in &binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&store.pool).await?;
        for row in &rows {
            let resident = resident_from_row(store, row)?;
            if let Some(last) = binds.last_mut() {
                last.clone_from(&resident.id);
            }
            if in_bounds(&resident.birth_date) {
                items.push(resident);
            }
        }
        if items.len() > limit || rows.len() <= limit {
            break;
        }
    }
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok(ResidentPage { items, next_cursor, in_scope })
}

/// The `data_passes` row of [`index_older_resident_tags`].
const TAG_INDEX_PASS: &str = "base_resident_tags";

/// Index the tags of the residents an older version wrote, once (migration 0017 leaves a
/// database with tagged residents without its `data_passes` row). Page by page; what is
/// indexed already stays, so a start stopped half way, or two replicas starting together,
/// go on where it is. The number of tags indexed.
pub async fn index_older_resident_tags(store: &Store) -> Result<u64, sqlx::Error> {
    let done: Option<i64> = sqlx::query_scalar("SELECT finished_at FROM data_passes WHERE name = $1").bind(TAG_INDEX_PASS).fetch_optional(&store.pool).await?;
    if done.is_some() {
        return Ok(0);
    }
    let (mut after, mut indexed) = (String::new(), 0u64);
    loop {
        let rows = sqlx::query(
            "SELECT id, tenant_id, tags, COALESCE(birth_year, 0) AS birth_year FROM base_residents WHERE id > $1 AND tags <> '' ORDER BY id LIMIT 1000",
        )
        .bind(&after)
        .fetch_all(&store.pool)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("id")?;
        let mut tx = store.begin_write().await?;
        for row in &rows {
            let (id, tenant, birth_year): (String, String, i64) = (row.try_get("id")?, row.try_get("tenant_id")?, row.try_get("birth_year")?);
            for tag in decode_tags(&row.try_get::<String, _>("tags")?) {
                sqlx::query("INSERT INTO base_resident_tags (tag, resident_id, tenant_id, birth_year) VALUES ($1, $2, $3, $4) ON CONFLICT (tag, resident_id) DO NOTHING")
                    .bind(&tag)
                    .bind(&id)
                    .bind(&tenant)
                    .bind(birth_year)
                    .execute(&mut *tx)
                    .await?;
                indexed += 1;
            }
        }
        tx.commit().await?;
    }
    sqlx::query("INSERT INTO data_passes (name, finished_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(TAG_INDEX_PASS)
        .bind(crate::store::now_millis())
        .execute(&store.pool)
        .await?;
    Ok(indexed)
}

pub async fn resident(store: &Store, id: &str) -> Result<Option<Resident>, sqlx::Error> {
    let sql = format!("SELECT {RESIDENT_COLUMNS} FROM base_residents r LEFT JOIN base_houses h ON h.id = r.house_id WHERE r.id = $1");
    sqlx::query(&sql).bind(id).fetch_optional(&store.pool).await?.as_ref().map(|row| resident_from_row(store, row)).transpose()
}

/// The base record of an account holder: the resident with the account's phone, preferring
/// one inside `within` (the account's community).
pub async fn resident_by_phone(store: &Store, phone: &str, within: &[String]) -> Result<Option<Resident>, sqlx::Error> {
    let sql = format!("SELECT {RESIDENT_COLUMNS} FROM base_residents r LEFT JOIN base_houses h ON h.id = r.house_id WHERE r.phone_bidx = $1 ORDER BY r.id");
    let rows = sqlx::query(&sql).bind(store.vault.blind_index(Domain::Phone, phone)?).fetch_all(&store.pool).await?;
    let residents = rows.iter().map(|row| resident_from_row(store, row)).collect::<Result<Vec<_>, _>>()?;
    Ok(residents.iter().find(|r| within.contains(&r.tenant_id)).or(residents.first()).cloned())
}

/// Places or organisations at any of `tenants`: both tables have (id, tenant_id, name,
/// kind, and one more text column).
async fn named_things(store: &Store, table: &str, extra: &str, tenants: &[String]) -> Result<Vec<(String, String, String, String, String)>, sqlx::Error> {
    if tenants.is_empty() {
        return Ok(vec![]);
    }
    let sql =
        format!("SELECT id, tenant_id, name, kind, {extra} FROM {table} WHERE tenant_id IN ({}) ORDER BY name, id LIMIT 1000", store.params(1, tenants.len()));
    let mut query = sqlx::query(&sql);
    for t in tenants {
        query = query.bind(t);
    }
    let rows = query.fetch_all(&store.pool).await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("tenant_id")?, r.try_get("name")?, r.try_get("kind")?, r.try_get(extra)?))).collect()
}

pub async fn places(store: &Store, tenants: &[String]) -> Result<Vec<Place>, sqlx::Error> {
    Ok(named_things(store, "base_places", "address", tenants)
        .await?
        .into_iter()
        .map(|(id, tenant_id, name, kind, address)| Place { id, tenant_id, name, kind, address })
        .collect())
}

pub async fn organisations(store: &Store, tenants: &[String]) -> Result<Vec<Organisation>, sqlx::Error> {
    Ok(named_things(store, "base_organisations", "contact", tenants)
        .await?
        .into_iter()
        .map(|(id, tenant_id, name, kind, contact)| Organisation { id, tenant_id, name, kind, contact })
        .collect())
}

pub async fn houses(store: &Store, tenants: &[String], cursor: Option<&str>, limit: u32) -> Result<Vec<House>, sqlx::Error> {
    if tenants.is_empty() {
        return Ok(vec![]);
    }
    let n = tenants.len();
    let sql = format!(
        "SELECT id, tenant_id, building, unit, room, address FROM base_houses WHERE tenant_id IN ({}) AND id > {} ORDER BY id LIMIT {}",
        store.params(1, n),
        store.param(n + 1),
        limit.clamp(1, 500)
    );
    let mut query = sqlx::query(&sql);
    for t in tenants {
        query = query.bind(t);
    }
    let rows = query.bind(cursor.unwrap_or("")).fetch_all(&store.pool).await?;
    rows.iter().map(|row| house_from_row(store, row)).collect()
}

pub async fn house(store: &Store, id: &str) -> Result<Option<House>, sqlx::Error> {
    let row = sqlx::query("SELECT id, tenant_id, building, unit, room, address FROM base_houses WHERE id = $1").bind(id).fetch_optional(&store.pool).await?;
    row.map(|row| house_from_row(store, &row)).transpose()
}

fn house_from_row(store: &Store, row: &AnyRow) -> Result<House, sqlx::Error> {
    let id: String = row.try_get("id")?;
    Ok(House {
        tenant_id: row.try_get("tenant_id")?,
        building: row.try_get("building")?,
        unit: row.try_get("unit")?,
        room: HOUSE_ROOM.open(&store.vault, &id, &row.try_get::<String, _>("room")?)?,
        address: HOUSE_ADDRESS.open(&store.vault, &id, &row.try_get::<String, _>("address")?)?,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_are_checked_and_read() {
        // 11010519491231002 + check character
        let first17 = "11010519491231002";
        let check = id_check_char(first17).unwrap();
        let id = format!("{first17}{check}");
        let parsed = parse_id_number(&id).unwrap();
        assert_eq!(parsed.birth_date, NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert_eq!(parsed.gender, "女");
        let wrong = format!("{first17}{}", if check == '0' { '1' } else { '0' });
        assert!(parse_id_number(&wrong).unwrap_err().contains("check character"));
        assert!(parse_id_number("1101051949123100").is_err());
        let bad_date = format!("11010519491332002{}", id_check_char("11010519491332002").unwrap());
        assert!(parse_id_number(&bad_date).unwrap_err().contains("birth date"));
        assert_eq!(mask_id_number(&id), format!("110105********002{check}"));
        assert_eq!((mask_name("王秀英"), mask_name("李四"), mask_name("欧阳娜娜")), ("王*英".to_string(), "李*".to_string(), "欧**娜".to_string()));
    }

    #[test]
    fn ages_count_birthdays() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert_eq!(age_on(NaiveDate::from_ymd_opt(1966, 11, 24).unwrap(), day), 60);
        assert_eq!(age_on(NaiveDate::from_ymd_opt(1966, 11, 25).unwrap(), day), 59);
        assert_eq!(latest_birth_for_age(60, day), NaiveDate::from_ymd_opt(1966, 11, 24).unwrap());
        assert_eq!(encode_tags(&["低保".into(), "残疾".into()]), "|低保|残疾|");
        assert_eq!(decode_tags("|低保|残疾|"), vec!["低保", "残疾"]);
    }

    /// Residents as a database from before names and birth dates were sealed holds them
    /// (the migration has filled `birth_year`, not the tag index): sealed and their tags
    /// indexed at the next start, then found by the whole name, by age and by tag.
    #[tokio::test]
    async fn clear_names_and_birth_dates_are_sealed_and_still_found() {
        let (store, _dir) = crate::store::testing::sqlite().await;
        sqlx::query("INSERT INTO tenants (id, parent_id, kind, name, created_at) VALUES ('g1', NULL, 'grid', '第一网格', 0)")
            .execute(&store.pool)
            .await
            .unwrap();
        let day = today();
        let (old, young) = (latest_birth_for_age(70, day), latest_birth_for_age(30, day));
        // A day short of 60: born in the year an age-60 filter lets through, so only the
        // opened date leaves them out.
        let almost = latest_birth_for_age(60, day) + chrono::Duration::days(1);
        for (id, name, born, id_number, phone, tags) in [
            ("r0", "张三", almost, "110105196601010010", "13800000000", ""),
            ("r1", "王秀英", old, "110105195001010011", "13800000001", "|独居老人|低保|"),
            ("r2", "李明", young, "110105199001010012", "13800000002", "|低保|"),
        ] {
            sqlx::query("INSERT INTO base_residents (id, tenant_id, real_name, id_number, phone, birth_date, birth_year, gender, tags, created_at) VALUES ($1, 'g1', $2, $3, $4, $5, $6, '女', $7, 0)")
                .bind(id)
                .bind(name)
                .bind(id_number)
                .bind(phone)
                .bind(born.to_string())
                .bind(i64::from(born.year()))
                .bind(tags)
                .execute(&store.pool)
                .await
                .unwrap();
        }
        crate::store::vault::reseal(&store, 10, |_| {}).await.unwrap();
        // The migration found no tagged residents in this database; an older one has them.
        sqlx::query("DELETE FROM data_passes").execute(&store.pool).await.unwrap();
        assert_eq!(index_older_resident_tags(&store).await.unwrap(), 3);
        assert_eq!(index_older_resident_tags(&store).await.unwrap(), 0, "once");
        let raw: Vec<(String, String)> = sqlx::query_as("SELECT real_name, birth_date FROM base_residents").fetch_all(&store.pool).await.unwrap();
        assert!(raw.iter().all(|(name, born)| name.starts_with("enc1:") && born.starts_with("enc1:")), "{raw:?}");

        let tenants = vec!["g1".to_string()];
        let find = |filter: ResidentFilter| {
            let (store, tenants) = (store.clone(), tenants.clone());
            async move {
                find_residents(&store, &ResidentTotals::default(), &tenants, &filter, None, 1)
                    .await
                    .unwrap()
                    .items
                    .into_iter()
                    .map(|r| r.real_name)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(find(ResidentFilter { name: Some(" 王秀英 ".into()), ..Default::default() }).await, ["王秀英"]);
        assert!(find(ResidentFilter { name: Some("王".into()), ..Default::default() }).await.is_empty(), "no part of a name");
        // One a page: 张三 is read and left out, and the page still fills.
        assert_eq!(find(ResidentFilter { min_age: Some(60), ..Default::default() }).await, ["王秀英"]);
        assert_eq!(find(ResidentFilter { max_age: Some(30), ..Default::default() }).await, ["李明"]);
        assert_eq!(find(ResidentFilter { min_age: Some(31), max_age: Some(69), ..Default::default() }).await, ["张三"]);
        assert!(find(ResidentFilter { min_age: Some(31), max_age: Some(58), ..Default::default() }).await.is_empty());
        let tagged = |tags: &[&str]| ResidentFilter { tags: tags.iter().map(|t| t.to_string()).collect(), ..Default::default() };
        assert_eq!(find(tagged(&["独居老人"])).await, ["王秀英"]);
        assert_eq!(find(tagged(&["低保", "独居老人"])).await, ["王秀英"], "the first tag's index, the others checked");
        assert_eq!(find(ResidentFilter { max_age: Some(40), ..tagged(&["低保"]) }).await, ["李明"]);
        assert!(find(tagged(&["残疾"])).await.is_empty());
        let page = find_residents(&store, &ResidentTotals::default(), &tenants, &ResidentFilter::default(), None, 1).await.unwrap();
        assert_eq!((page.items.len(), page.next_cursor.as_deref()), (1, Some("r0")));
        assert_eq!(page.items[0].birth_date, almost.to_string());
    }
}
