//! Manifest sections that belong to one capability. Their types live here, with the
//! manifest that parses them; the capability in the host re-exports them and checks what
//! needs the host (`validate_manifest` in each capability).
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[ledger.currencies.CODE]` in a manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrencySettings {
    pub name: String,
    /// Digits after the decimal point (0–6): amounts are integers of the smallest unit.
    #[serde(default)]
    pub decimals: u8,
    /// The lowest balance a new account may reach (0: no credit).
    #[serde(default)]
    pub floor: i64,
    /// The highest balance a new account may reach, if any.
    #[serde(default)]
    pub cap: Option<i64>,
}

/// `[ledger]` in a manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LedgerSettings {
    #[serde(default)]
    pub currencies: BTreeMap<String, CurrencySettings>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    /// Event kinds delivered to `on-event`.
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// Periodic `schedule` events, e.g. a daily check.
    #[serde(default)]
    pub schedules: Vec<Schedule>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The event's subject: `[a-z0-9-]`, unique in the manifest.
    pub name: String,
    /// Seconds between ticks (at least 1).
    pub every_seconds: u64,
}

/// `[dashboard]` in linli.toml: a GET route answering
/// `[{"community": "<tenant id>", "<figure>": <number>, …}, …]`, and which of its numbers
/// the dashboards show. Numbers are summed up the tree, so they must be sums (counts,
/// hours, money); shares are declared as ratios of two figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub figures: Vec<FigureSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ratios: Vec<RatioSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FigureSpec {
    pub key: String,
    pub label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatioSpec {
    pub key: String,
    pub label: String,
    pub numerator: String,
    pub denominator: String,
}

fn is_key(key: &str) -> bool {
    (1..=40).contains(&key.len()) && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl DashboardSettings {
    pub fn validate(&self) -> Result<(), String> {
        match &self.route {
            Some(route) if !route.starts_with('/') => return Err(format!("route `{route}` must start with /")),
            None if !self.figures.is_empty() => return Err("figures need a route that gives them".into()),
            _ => {}
        }
        let mut seen = std::collections::BTreeSet::new();
        for key in self.figures.iter().map(|f| &f.key).chain(self.ratios.iter().map(|r| &r.key)) {
            if !is_key(key) {
                return Err(format!("`{key}` must be 1–40 of a-z, 0-9 and _"));
            }
            if !seen.insert(key) {
                return Err(format!("`{key}` is declared twice"));
            }
        }
        for ratio in &self.ratios {
            for part in [&ratio.numerator, &ratio.denominator] {
                if !self.figures.iter().any(|f| &f.key == part) {
                    return Err(format!("ratio `{}` uses `{part}`, which is not a figure", ratio.key));
                }
            }
        }
        Ok(())
    }
}
