//! Resident figures per tenant node — residents, elders (60 and over) and elders living
//! alone — for the dashboards and the totals beside a list.
//!
//! Reading them must not grow with the county, so they are not counted from the residents:
//! the import keeps `base_resident_counts` (residents per node and birth year) in the
//! transaction that writes them. Only what depends on today's date needs the residents
//! themselves: of those born in the year of the 60th birthdays now falling due, which are 60
//! already (their birth dates are sealed, so these few are opened). What that gives is kept
//! in memory until the date or the `base_residents` change counter moves, which every write of
//! residents does, on any replica.
use super::records::LIVES_ALONE_TAG;
use crate::store::vault::RESIDENT_BIRTH_DATE;
use crate::store::{change_counter, Store};
use chrono::{Datelike, NaiveDate};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::Arc;

/// The change counter that writes of residents move.
pub const RESIDENTS_COUNTER: &str = "base_residents";

/// What is counted at one tenant node (not below it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeFigures {
    pub residents: i64,
    pub elders: i64,
    pub elders_alone: i64,
}

/// The figures of every tenant node with residents.
pub type FiguresByNode = HashMap<String, NodeFigures>;

struct Kept {
    day: NaiveDate,
    counter: i64,
    figures: Arc<FiguresByNode>,
}

/// The figures as last worked out, per process.
#[derive(Default)]
pub struct ResidentTotals {
    kept: tokio::sync::Mutex<Option<Kept>>,
}

impl ResidentTotals {
    /// The figures as of now: those kept when neither the date nor the residents changed
    /// since, else worked out again (one reader does it; the others wait for it).
    pub async fn by_node(&self, store: &Store) -> Result<Arc<FiguresByNode>, sqlx::Error> {
        // Read before working out: a write after this makes the next reader work it out again.
        let counter = change_counter(store, RESIDENTS_COUNTER).await?;
        let day = crate::util::today();
        let mut kept = self.kept.lock().await;
        if let Some(kept) = kept.as_ref().filter(|k| k.day == day && k.counter == counter) {
            return Ok(kept.figures.clone());
        }
        let figures = Arc::new(work_out(store, day).await?);
        *kept = Some(Kept { day, counter, figures: figures.clone() });
        Ok(figures)
    }
}

/// The latest birth date of someone who is 60 on `day`.
pub fn elder_born_by(day: NaiveDate) -> NaiveDate {
    day - chrono::Months::new(60 * 12)
}

async fn work_out(store: &Store, day: NaiveDate) -> Result<FiguresByNode, sqlx::Error> {
    let born_by = elder_born_by(day);
    let boundary_year = i64::from(born_by.year());
    let mut figures = FiguresByNode::new();
    let counted = sqlx::query(
        // PostgreSQL sums BIGINT as NUMERIC, which the Any driver does not read: cast back.
        "SELECT tenant_id, CAST(SUM(residents) AS BIGINT) AS residents,
                CAST(SUM(CASE WHEN birth_year < $1 THEN residents ELSE 0 END) AS BIGINT) AS elders,
                CAST(SUM(CASE WHEN birth_year < $1 THEN lives_alone ELSE 0 END) AS BIGINT) AS alone
         FROM base_resident_counts GROUP BY tenant_id",
    )
    .bind(boundary_year)
    .fetch_all(&store.pool)
    .await?;
    for row in &counted {
        let node = figures.entry(row.try_get("tenant_id")?).or_default();
        node.residents += row.try_get::<i64, _>("residents")?;
        node.elders += row.try_get::<i64, _>("elders")?;
        node.elders_alone += row.try_get::<i64, _>("alone")?;
    }
    let alone_tag = format!("|{LIVES_ALONE_TAG}|");
    let boundary =
        sqlx::query("SELECT id, tenant_id, birth_date, tags FROM base_residents WHERE birth_year = $1").bind(boundary_year).fetch_all(&store.pool).await?;
    for row in &boundary {
        let id: String = row.try_get("id")?;
        let birth_date = RESIDENT_BIRTH_DATE.open(&store.vault, &id, &row.try_get::<String, _>("birth_date")?)?;
        if NaiveDate::parse_from_str(&birth_date, "%Y-%m-%d").is_ok_and(|born| born <= born_by) {
            let node = figures.entry(row.try_get("tenant_id")?).or_default();
            node.elders += 1;
            node.elders_alone += i64::from(row.try_get::<String, _>("tags")?.contains(&alone_tag));
        }
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counts the import keeps give the same figures as counting the residents; a resident
    /// born in the boundary year counts as an elder from their 60th birthday; figures kept are
    /// given again until an import moves the counter.
    #[tokio::test]
    async fn figures_follow_imports_and_birthdays() {
        let (store, _dir) = crate::store::testing::sqlite().await;
        figures_follow(store).await;
        if let Some(store) = crate::store::testing::postgres().await {
            figures_follow(store).await;
        }
    }

    async fn figures_follow(store: Store) {
        use crate::tenancy::TenantKind::{Community, County, Grid, Street};
        let tree = crate::tenancy::testing::save_tree(
            &store,
            &[("c", None, County), ("s", Some("c"), Street), ("m", Some("s"), Community), ("g1", Some("m"), Grid), ("g2", Some("m"), Grid)],
        )
        .await;
        let today = crate::util::today();
        let turned_60 = elder_born_by(today);
        // 60 tomorrow, in the same year unless today is 31 December (then it is not in the
        // boundary year and counts as young by its year alone).
        let almost_60 = turned_60 + chrono::Days::new(1);
        let id_of = |born: NaiveDate, n: u32| {
            crate::capabilities::base::records::id_check_char(&format!("330782{}{n:03}", born.format("%Y%m%d")))
                .map(|c| format!("330782{}{n:03}{c}", born.format("%Y%m%d")))
                .unwrap()
        };
        let csv = format!(
            "姓名,身份证号,手机号,网格,楼栋,单元,房号,户,标签\n\
             王一,{},13800000001,g1,1,1,101,,独居老人\n\
             王二,{},13800000002,g1,1,1,102,,\n\
             王三,{},13800000003,g2,,,,,独居老人\n\
             王四,{},13800000004,g2,1,1,101,,\n",
            id_of(turned_60, 1),
            id_of(almost_60, 2),
            id_of(NaiveDate::from_ymd_opt(1940, 3, 1).unwrap(), 3),
            id_of(NaiveDate::from_ymd_opt(1999, 3, 1).unwrap(), 4),
        );
        let report =
            super::super::import::Imports::run_now(&store, &tree, super::super::import::ImportKind::Residents, "c", csv.as_bytes(), "test").await.unwrap();
        assert_eq!(report.status, super::super::import::ImportState::Done, "{:?}", report.problems);
        let totals = ResidentTotals::default();
        let figures = totals.by_node(&store).await.unwrap();
        assert_eq!(figures.get("g1"), Some(&NodeFigures { residents: 2, elders: 1, elders_alone: 1 }));
        assert_eq!(figures.get("g2"), Some(&NodeFigures { residents: 2, elders: 1, elders_alone: 1 }));
        let scope = ["g1".to_string(), "g2".to_string(), "m".to_string()];
        let page = crate::capabilities::base::records::find_residents(&store, &totals, &scope, &Default::default(), None, 1).await.unwrap();
        assert_eq!(page.in_scope, 4, "the list's total comes from the figures");
        assert!(Arc::ptr_eq(&figures, &totals.by_node(&store).await.unwrap()), "kept while nothing changed");

        let more = format!(
            "姓名,身份证号,手机号,网格,楼栋,单元,房号,户,标签\n王五,{},13800000005,g2,1,1,101,,独居老人\n",
            id_of(NaiveDate::from_ymd_opt(1950, 1, 1).unwrap(), 5)
        );
        super::super::import::Imports::run_now(&store, &tree, super::super::import::ImportKind::Residents, "c", more.as_bytes(), "test").await.unwrap();
        let figures = totals.by_node(&store).await.unwrap();
        assert_eq!(figures.get("g2"), Some(&NodeFigures { residents: 3, elders: 2, elders_alone: 2 }), "an import is seen at once");
        // The counts agree with the residents themselves.
        let counted: Vec<(String, i64)> =
            sqlx::query_as("SELECT tenant_id, COUNT(*) FROM base_residents GROUP BY tenant_id ORDER BY tenant_id").fetch_all(&store.pool).await.unwrap();
        assert_eq!(counted, [("g1".to_string(), 2), ("g2".to_string(), 3)]);
        // The house 1-1-101 exists once per grid: the second import found g2's.
        let houses: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM base_houses").fetch_one(&store.pool).await.unwrap();
        assert_eq!(houses, 3);
    }
}
