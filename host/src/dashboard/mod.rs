//! Three-level dashboards: the figures of one tenant node (county, street, community or
//! grid), for the node as a whole and for each child, so that a chart of the children
//! drills down one level. Figures come from the host's own tables (base data, alarms,
//! tickets, plugin usage) and from plugins that declare a `[dashboard]` route giving
//! per-community sums; everything is rolled up along the tenant tree here.
use crate::usage;

use crate::platform::{Platform, PlatformError};
use crate::tenancy::tree::TenantTree;
pub use linli_formats::sections::{DashboardSettings, FigureSpec, RatioSpec};
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

pub type Figures = BTreeMap<String, f64>;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeRef {
    pub id: String,
    pub name: String,
    /// county, street, community or grid.
    pub kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChildFigures {
    pub node: NodeRef,
    pub figures: Figures,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PluginPanel {
    pub plugin_id: String,
    pub name: String,
    /// Figure keys (`plugin.key`) in the order the manifest declares them, ratios last.
    pub figures: Vec<String>,
    /// Ratio keys (values are fractions, 0.25 = 25 %).
    pub ratios: Vec<String>,
    /// When the plugin did not answer: why (its figures are missing, the rest is shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageDay {
    /// YYYY-MM-DD.
    pub day: String,
    /// Requests by plugin id.
    pub requests: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    pub node: NodeRef,
    /// From the top the viewer sees down to the node, for breadcrumbs.
    pub path: Vec<NodeRef>,
    pub totals: Figures,
    /// One entry per child node (drill down by opening a child).
    pub children: Vec<ChildFigures>,
    /// Figure key → label in Chinese.
    pub labels: BTreeMap<String, String>,
    /// Figure key → label in English, where there is one (plugins give theirs in
    /// `[translations.en.figures]`).
    pub labels_en: BTreeMap<String, String>,
    pub plugins: Vec<PluginPanel>,
    /// The last 7 days, oldest first.
    pub usage: Vec<UsageDay>,
    /// Plugin id → display name, for the installed plugins.
    pub plugin_names: BTreeMap<String, String>,
    /// Plugin id → display name in English, where the manifest gives one.
    pub plugin_names_en: BTreeMap<String, String>,
    /// Unix milliseconds.
    pub generated_at: i64,
}

/// Figure key → label, per language.
struct Labels {
    zh: BTreeMap<String, String>,
    en: BTreeMap<String, String>,
}

/// The host's own figures: key, Chinese label, English label.
const BASE_LABELS: &[(&str, &str, &str)] = &[
    ("residents", "居民", "Residents"),
    ("elders", "60岁以上老人", "Elders 60+"),
    ("elders_alone", "独居老人", "Elders living alone"),
    ("alarms_active", "未处理告警", "Active alarms"),
    ("alarms_acknowledged", "处置中告警", "Alarms being handled"),
    ("alarms_30d", "近30天告警", "Alarms in 30 days"),
    ("tickets_open", "待派单", "Waiting for dispatch"),
    ("tickets_dispatched", "已派单", "Dispatched"),
    ("tickets_accepted", "处理中", "In progress"),
    ("tickets_resolved", "已办结", "Resolved"),
    ("tickets_closed", "已关闭", "Closed"),
    ("tickets_overdue", "超时未办结", "Overdue"),
    ("tickets_supervised", "督办中", "Under supervision"),
];

fn node_ref(tree: &TenantTree, id: &str) -> Option<NodeRef> {
    tree.get(id).map(|n| NodeRef { id: n.id.clone(), name: n.name.clone(), kind: n.kind.as_str().to_string() })
}

/// Sums per child of one node, and for the node as a whole.
struct Rollup<'a> {
    tree: &'a TenantTree,
    node: &'a str,
    child_index: BTreeMap<String, usize>,
    totals: Figures,
    children: Vec<Figures>,
}

impl<'a> Rollup<'a> {
    fn new(tree: &'a TenantTree, node: &'a str, children: &[NodeRef]) -> Self {
        let child_index = children.iter().enumerate().map(|(i, c)| (c.id.clone(), i)).collect();
        Self { tree, node, child_index, totals: Figures::new(), children: vec![Figures::new(); children.len()] }
    }

    /// Add `value` to `key` where `tenant` lies: the node's total, and the child it is
    /// under. Tenants outside the node are ignored.
    fn add(&mut self, tenant: &str, key: &str, value: f64) {
        let mut below = None;
        for ancestor in self.tree.ancestors(tenant) {
            if ancestor.id == self.node {
                *self.totals.entry(key.to_string()).or_default() += value;
                if let Some(&i) = below.and_then(|b: &str| self.child_index.get(b)) {
                    *self.children[i].entry(key.to_string()).or_default() += value;
                }
                return;
            }
            below = Some(ancestor.id.as_str());
        }
    }

    fn derive(&mut self, key: &str, numerator: &str, denominator: &str) {
        for figures in std::iter::once(&mut self.totals).chain(self.children.iter_mut()) {
            let (n, d) = (figures.get(numerator).copied().unwrap_or(0.0), figures.get(denominator).copied().unwrap_or(0.0));
            if d > 0.0 {
                figures.insert(key.to_string(), n / d);
            }
        }
    }
}

fn count(row: &sqlx::any::AnyRow, column: &str) -> f64 {
    row.try_get::<i64, _>(column).map(|v| v as f64).unwrap_or(0.0)
}

const DAY_MS: i64 = 86_400_000;

/// The figures of `node_id`. `path_top` is the highest node the viewer sees on the way
/// down (for breadcrumbs).
pub async fn overview(platform: &Platform, node_id: &str, path_top: Option<&str>) -> Result<Option<Overview>, PlatformError> {
    let tree = platform.tenants();
    let Some(node) = node_ref(&tree, node_id) else { return Ok(None) };
    let mut children: Vec<NodeRef> = tree.children(node_id).filter_map(|c| node_ref(&tree, &c.id)).collect();
    children.sort_by(|a, b| a.id.cmp(&b.id));
    let mut path: Vec<NodeRef> = Vec::new();
    for ancestor in tree.ancestors(node_id) {
        path.push(NodeRef { id: ancestor.id.clone(), name: ancestor.name.clone(), kind: ancestor.kind.as_str().to_string() });
        if Some(ancestor.id.as_str()) == path_top {
            break;
        }
    }
    path.reverse();
    let mut labels = Labels {
        zh: BASE_LABELS.iter().map(|(k, zh, _)| (k.to_string(), zh.to_string())).collect(),
        en: BASE_LABELS.iter().map(|(k, _, en)| (k.to_string(), en.to_string())).collect(),
    };
    let mut rollup = Rollup::new(&tree, node_id, &children);
    let now = crate::store::now_millis();
    let pool = &platform.store.pool;

    // Counted on write and kept until the date or the residents change (base::totals).
    for (tenant, figures) in platform.resident_totals.by_node(&platform.store).await?.iter() {
        rollup.add(tenant, "residents", figures.residents as f64);
        rollup.add(tenant, "elders", figures.elders as f64);
        rollup.add(tenant, "elders_alone", figures.elders_alone as f64);
    }

    let alarms = sqlx::query(
        "SELECT tenant_id, SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END) AS active,
                SUM(CASE WHEN status = 'acknowledged' THEN 1 ELSE 0 END) AS acknowledged,
                SUM(CASE WHEN raised_at >= $1 THEN 1 ELSE 0 END) AS recent
         FROM alarms GROUP BY tenant_id",
    )
    .bind(now - 30 * DAY_MS)
    .fetch_all(pool)
    .await?;
    for row in &alarms {
        let tenant: String = row.try_get("tenant_id")?;
        rollup.add(&tenant, "alarms_active", count(row, "active"));
        rollup.add(&tenant, "alarms_acknowledged", count(row, "acknowledged"));
        rollup.add(&tenant, "alarms_30d", count(row, "recent"));
    }

    let tickets = sqlx::query(
        "SELECT tenant_id, status, COUNT(*) AS n,
                SUM(CASE WHEN due_at < $1 THEN 1 ELSE 0 END) AS overdue,
                SUM(CASE WHEN supervised > 0 THEN 1 ELSE 0 END) AS supervised
         FROM tickets GROUP BY tenant_id, status",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    for row in &tickets {
        let tenant: String = row.try_get("tenant_id")?;
        let status: String = row.try_get("status")?;
        rollup.add(&tenant, &format!("tickets_{status}"), count(row, "n"));
        if matches!(status.as_str(), "open" | "dispatched" | "accepted") {
            rollup.add(&tenant, "tickets_overdue", count(row, "overdue"));
            rollup.add(&tenant, "tickets_supervised", count(row, "supervised"));
        }
    }

    let plugins = plugin_figures(platform, &tree, node_id, &mut rollup, &mut labels).await?;
    let loaded: Vec<_> = platform.installations().await?.iter().filter_map(|i| platform.loaded(&i.id).map(|p| (i.plugin_id.clone(), p))).collect();
    let plugin_names: BTreeMap<String, String> = loaded.iter().map(|(id, p)| (id.clone(), p.manifest.name.clone())).collect();
    let plugin_names_en: BTreeMap<String, String> =
        loaded.iter().filter_map(|(id, p)| p.manifest.translations.get("en").and_then(|t| t.name.clone()).map(|name| (id.clone(), name))).collect();

    let first_day = (crate::util::today() - chrono::Days::new(6)).format("%Y-%m-%d").to_string();
    let mut by_day: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for row in usage::since(&platform.store, &first_day).await? {
        if !tree.is_within(&row.tenant_id, node_id) {
            continue;
        }
        let key = format!("usage.{}", row.plugin_id);
        let name = plugin_names.get(&row.plugin_id).unwrap_or(&row.plugin_id);
        let name_en = plugin_names_en.get(&row.plugin_id).unwrap_or(&row.plugin_id);
        labels.zh.entry(key.clone()).or_insert_with(|| format!("{name} · 近7天访问"));
        labels.en.entry(key.clone()).or_insert_with(|| format!("{name_en} · requests, 7 days"));
        rollup.add(&row.tenant_id, &key, row.requests as f64);
        *by_day.entry(row.day).or_default().entry(row.plugin_id).or_default() += row.requests;
    }
    let usage = (0..7u64)
        .map(|back| (crate::util::today() - chrono::Days::new(6 - back)).format("%Y-%m-%d").to_string())
        .map(|day| UsageDay { requests: by_day.remove(&day).unwrap_or_default(), day })
        .collect();

    let Rollup { totals, children: child_figures, .. } = rollup;
    let children = children.into_iter().zip(child_figures).map(|(node, figures)| ChildFigures { node, figures }).collect();
    Ok(Some(Overview {
        node,
        path,
        totals,
        children,
        labels: labels.zh,
        labels_en: labels.en,
        plugins,
        usage,
        plugin_names,
        plugin_names_en,
        generated_at: now,
    }))
}

/// Ask every installation serving the node (at it, above it or below it) whose manifest
/// declares `[dashboard]` for its per-community figures.
async fn plugin_figures(
    platform: &Platform,
    tree: &TenantTree,
    node_id: &str,
    rollup: &mut Rollup<'_>,
    labels: &mut Labels,
) -> Result<Vec<PluginPanel>, PlatformError> {
    let mut panels: BTreeMap<String, PluginPanel> = BTreeMap::new();
    let mut ratios: BTreeMap<String, Vec<RatioSpec>> = BTreeMap::new();
    for installation in platform.installations().await? {
        let related = tree.is_within(&installation.tenant_id, node_id) || tree.is_within(node_id, &installation.tenant_id);
        let Some(plugin) = platform.loaded(&installation.id).filter(|_| related) else { continue };
        let settings = &plugin.manifest.dashboard;
        let Some(route) = settings.route.clone() else { continue };
        let panel = panels.entry(installation.plugin_id.clone()).or_insert_with(|| PluginPanel {
            plugin_id: installation.plugin_id.clone(),
            name: plugin.manifest.name.clone(),
            figures: settings.figures.iter().map(|f| format!("{}.{}", installation.plugin_id, f.key)).collect(),
            ratios: settings.ratios.iter().map(|r| format!("{}.{}", installation.plugin_id, r.key)).collect(),
            error: None,
        });
        ratios.insert(installation.plugin_id.clone(), settings.ratios.clone());
        let english = plugin.manifest.translations.get("en");
        for (key, label) in settings.figures.iter().map(|f| (&f.key, &f.label)).chain(settings.ratios.iter().map(|r| (&r.key, &r.label))) {
            let full_key = format!("{}.{}", installation.plugin_id, key);
            if let Some(label_en) = english.and_then(|t| t.figures.get(key)) {
                labels.en.insert(full_key.clone(), label_en.clone());
            }
            labels.zh.insert(full_key, label.clone());
        }
        match ask(platform, plugin.clone(), &route).await {
            Ok(rows) => {
                for row in rows {
                    let Some(community) = row.get("community").and_then(|c| c.as_str()) else { continue };
                    for figure in &settings.figures {
                        if let Some(value) = row.get(&figure.key).and_then(serde_json::Value::as_f64) {
                            rollup.add(community, &format!("{}.{}", installation.plugin_id, figure.key), value);
                        }
                    }
                }
            }
            Err(why) => {
                tracing::warn!(installation = installation.id, "dashboard figures unavailable: {why}");
                panel.error = Some(why);
            }
        }
    }
    for (plugin_id, ratios) in &ratios {
        for ratio in ratios {
            let key = |k: &str| format!("{plugin_id}.{k}");
            rollup.derive(&key(&ratio.key), &key(&ratio.numerator), &key(&ratio.denominator));
        }
    }
    Ok(panels.into_values().collect())
}

async fn ask(platform: &Platform, plugin: Arc<crate::runtime::LoadedPlugin>, route: &str) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, String> {
    let (path, query) = route.split_once('?').unwrap_or((route, ""));
    let request = crate::runtime::PluginRequest {
        method: "GET".into(),
        path: path.to_string(),
        query: query.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
        tenant: plugin.installation.tenant_id.clone(),
        request_id: format!("dashboard-{}", uuid::Uuid::new_v4().simple()),
        user: None,
    };
    let response = platform.runtime.invoke(plugin, request).await.map_err(|e| e.to_string())?;
    if response.status != 200 {
        return Err(format!("{route} answered {}", response.status));
    }
    serde_json::from_slice(&response.body).map_err(|e| format!("{route} did not answer a list of objects: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::tree::{TenantKind, TenantNode};

    fn tree() -> TenantTree {
        let node = |id: &str, parent: Option<&str>, kind| TenantNode { id: id.into(), parent_id: parent.map(Into::into), kind, name: id.to_uppercase() };
        TenantTree::from_nodes([
            node("county", None, TenantKind::County),
            node("east", Some("county"), TenantKind::Street),
            node("west", Some("county"), TenantKind::Street),
            node("xingfu", Some("east"), TenantKind::Community),
            node("xingfu-g1", Some("xingfu"), TenantKind::Grid),
            node("heping", Some("west"), TenantKind::Community),
        ])
    }

    #[test]
    fn figures_roll_up_to_the_node_and_the_child_they_lie_under() {
        let tree = tree();
        let children = vec![node_ref(&tree, "east").unwrap(), node_ref(&tree, "west").unwrap()];
        let mut rollup = Rollup::new(&tree, "county", &children);
        rollup.add("xingfu-g1", "residents", 3.0);
        rollup.add("xingfu", "residents", 2.0);
        rollup.add("heping", "residents", 4.0);
        rollup.add("county", "residents", 1.0);
        rollup.add("elsewhere", "residents", 100.0);
        assert_eq!(rollup.totals["residents"], 10.0);
        assert_eq!(rollup.children[0]["residents"], 5.0);
        assert_eq!(rollup.children[1]["residents"], 4.0);
    }

    #[test]
    fn a_street_sees_only_its_own_communities() {
        let tree = tree();
        let children = vec![node_ref(&tree, "xingfu").unwrap()];
        let mut rollup = Rollup::new(&tree, "east", &children);
        rollup.add("heping", "booked", 4.0);
        rollup.add("xingfu-g1", "booked", 3.0);
        rollup.add("xingfu", "offered", 12.0);
        rollup.derive("utilisation", "booked", "offered");
        assert_eq!(rollup.totals.get("booked"), Some(&3.0));
        assert_eq!(rollup.totals.get("utilisation"), Some(&0.25));
        assert_eq!(rollup.children[0].get("utilisation"), Some(&0.25));
    }

    #[test]
    fn dashboard_settings_are_checked() {
        let figure = |k: &str| FigureSpec { key: k.into(), label: k.into() };
        let mut s = DashboardSettings { route: Some("/stats".into()), figures: vec![figure("a"), figure("b")], ratios: vec![] };
        assert!(s.validate().is_ok());
        s.ratios.push(RatioSpec { key: "r".into(), label: "r".into(), numerator: "a".into(), denominator: "c".into() });
        assert!(s.validate().unwrap_err().contains("`c`"));
        let s = DashboardSettings { route: None, figures: vec![figure("a")], ratios: vec![] };
        assert!(s.validate().is_err());
        let s = DashboardSettings { route: Some("stats".into()), ..Default::default() };
        assert!(s.validate().is_err());
        let s = DashboardSettings { route: Some("/s".into()), figures: vec![figure("A b")], ratios: vec![] };
        assert!(s.validate().is_err());
    }
}
