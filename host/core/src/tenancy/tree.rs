//! The tenant tree: county → street (镇街) → community (社区) → grid (网格).
use crate::packages::manifest::is_valid_id;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantKind {
    County,
    Street,
    Community,
    Grid,
}

impl TenantKind {
    pub const ALL: [TenantKind; 4] = [Self::County, Self::Street, Self::Community, Self::Grid];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::County => "county",
            Self::Street => "street",
            Self::Community => "community",
            Self::Grid => "grid",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn depth(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).unwrap_or_default()
    }

    fn child(self) -> Option<Self> {
        Self::ALL.get(self.depth() + 1).copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantNode {
    pub id: String,
    pub parent_id: Option<String>,
    pub kind: TenantKind,
    pub name: String,
}

/// A tree as written in a tenants file or posted to the admin API. `kind` may be left
/// out: it follows from the depth (county, street, community, grid).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub kind: Option<TenantKind>,
    #[serde(default)]
    #[schema(no_recursion)]
    pub children: Vec<TenantSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantsDocument {
    pub tenants: Vec<TenantSpec>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TreeError {
    #[error("tenant id `{0}` must be 2–48 of a-z, 0-9 and -, starting with a letter")]
    BadId(String),
    #[error("tenant `{0}` has an empty name")]
    EmptyName(String),
    #[error("tenant `{id}` is a {kind} but sits where a {expected} belongs")]
    WrongKind { id: String, kind: &'static str, expected: &'static str },
    #[error("tenant `{0}` is nested below a grid, the lowest level")]
    TooDeep(String),
    #[error("tenant `{0}` appears twice")]
    Duplicate(String),
    #[error("tenant `{id}` already exists under `{existing}`; moving tenants is not supported")]
    Moved { id: String, existing: String },
    #[error("the tenants file is not valid: {0}")]
    Syntax(String),
}

/// The current tree, shared by the platform and the capabilities that scope by it.
#[derive(Debug, Clone, Default)]
pub struct SharedTree(std::sync::Arc<std::sync::RwLock<std::sync::Arc<TenantTree>>>);

impl SharedTree {
    pub fn new(tree: TenantTree) -> Self {
        Self(std::sync::Arc::new(std::sync::RwLock::new(std::sync::Arc::new(tree))))
    }

    pub fn snapshot(&self) -> std::sync::Arc<TenantTree> {
        self.0.read().map(|t| t.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn replace(&self, tree: TenantTree) {
        match self.0.write() {
            Ok(mut slot) => *slot = std::sync::Arc::new(tree),
            Err(p) => *p.into_inner() = std::sync::Arc::new(tree),
        }
    }
}

/// An immutable snapshot of the tree, swapped whole when it changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantTree {
    nodes: HashMap<String, TenantNode>,
}

impl TenantTree {
    pub fn from_nodes(nodes: impl IntoIterator<Item = TenantNode>) -> Self {
        Self { nodes: nodes.into_iter().map(|n| (n.id.clone(), n)).collect() }
    }

    pub fn get(&self, id: &str) -> Option<&TenantNode> {
        self.nodes.get(id)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node itself, then its parent, up to the county.
    pub fn ancestors<'a>(&'a self, id: &str) -> impl Iterator<Item = &'a TenantNode> + 'a {
        let mut next = self.nodes.get(id);
        std::iter::from_fn(move || {
            let node = next?;
            next = node.parent_id.as_deref().and_then(|p| self.nodes.get(p));
            Some(node)
        })
    }

    pub fn county_of(&self, id: &str) -> Option<&TenantNode> {
        self.ancestors(id).find(|n| n.kind == TenantKind::County)
    }

    /// True if `id` is `ancestor` or below it.
    pub fn is_within(&self, id: &str, ancestor: &str) -> bool {
        self.ancestors(id).any(|n| n.id == ancestor)
    }

    /// The nodes without a parent (the counties), by id.
    pub fn roots(&self) -> Vec<&TenantNode> {
        let mut roots: Vec<&TenantNode> = self.nodes.values().filter(|n| n.parent_id.is_none()).collect();
        roots.sort_by(|a, b| a.id.cmp(&b.id));
        roots
    }

    /// Every node.
    pub fn subtree_of_all(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// The node and everything below it, in no particular order.
    pub fn subtree(&self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut pending = vec![id.to_string()];
        while let Some(next) = pending.pop() {
            if self.nodes.contains_key(&next) {
                pending.extend(self.children(&next).map(|c| c.id.clone()));
                out.push(next);
            }
        }
        out
    }

    pub fn children<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a TenantNode> + 'a {
        self.nodes.values().filter(move |n| n.parent_id.as_deref() == Some(id))
    }

    /// Nested form, children sorted by id, for the admin API.
    pub fn to_specs(&self) -> Vec<TenantSpec> {
        self.roots().into_iter().filter_map(|n| self.spec_of(&n.id)).collect()
    }

    /// The node and everything below it, nested, children sorted by id.
    pub fn spec_of(&self, id: &str) -> Option<TenantSpec> {
        fn build(tree: &TenantTree, node: &TenantNode) -> TenantSpec {
            let mut children: Vec<_> = tree.children(&node.id).map(|c| build(tree, c)).collect();
            children.sort_by(|a, b| a.id.cmp(&b.id));
            TenantSpec { id: node.id.clone(), name: node.name.clone(), kind: Some(node.kind), children }
        }
        self.get(id).map(|n| build(self, n))
    }

    /// Flatten specs into nodes, checking ids, levels and that no existing node moves.
    pub fn plan(&self, specs: &[TenantSpec]) -> Result<Vec<TenantNode>, TreeError> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        fn walk(
            tree: &TenantTree,
            spec: &TenantSpec,
            parent: Option<&str>,
            expected: TenantKind,
            seen: &mut std::collections::HashSet<String>,
            out: &mut Vec<TenantNode>,
        ) -> Result<(), TreeError> {
            if !is_valid_id(&spec.id) {
                return Err(TreeError::BadId(spec.id.clone()));
            }
            if spec.name.trim().is_empty() {
                return Err(TreeError::EmptyName(spec.id.clone()));
            }
            let kind = spec.kind.unwrap_or(expected);
            if kind != expected {
                return Err(TreeError::WrongKind { id: spec.id.clone(), kind: kind.as_str(), expected: expected.as_str() });
            }
            if !seen.insert(spec.id.clone()) {
                return Err(TreeError::Duplicate(spec.id.clone()));
            }
            if let Some(existing) = tree.get(&spec.id) {
                if existing.parent_id.as_deref() != parent || existing.kind != kind {
                    let existing = existing.parent_id.clone().unwrap_or_else(|| "(root)".into());
                    return Err(TreeError::Moved { id: spec.id.clone(), existing });
                }
            }
            out.push(TenantNode { id: spec.id.clone(), parent_id: parent.map(str::to_string), kind, name: spec.name.trim().to_string() });
            if !spec.children.is_empty() {
                let child_kind = kind.child().ok_or_else(|| TreeError::TooDeep(spec.children[0].id.clone()))?;
                for child in &spec.children {
                    walk(tree, child, Some(&spec.id), child_kind, seen, out)?;
                }
            }
            Ok(())
        }
        for spec in specs {
            walk(self, spec, None, TenantKind::County, &mut seen, &mut out)?;
        }
        Ok(out)
    }
}

/// Parse a tenants file: TOML (`[[tenants]]`) or JSON (`{"tenants": [...]}`).
pub fn parse_tenants_file(text: &str) -> Result<TenantsDocument, TreeError> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| TreeError::Syntax(e.to_string()))
    } else {
        toml::from_str(text).map_err(|e| TreeError::Syntax(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Vec<TenantSpec> {
        parse_tenants_file(
            r#"
[[tenants]]
id = "demo-county"
name = "示范县"
[[tenants.children]]
id = "chengguan"
name = "城关镇"
[[tenants.children.children]]
id = "xingfu"
name = "幸福社区"
[[tenants.children.children.children]]
id = "xingfu-g1"
name = "第一网格"
"#,
        )
        .unwrap()
        .tenants
    }

    #[test]
    fn plans_levels_and_walks_ancestors() {
        let nodes = TenantTree::default().plan(&demo()).unwrap();
        assert_eq!(nodes.iter().map(|n| n.kind).collect::<Vec<_>>(), TenantKind::ALL.to_vec());
        let tree = TenantTree::from_nodes(nodes);
        let up: Vec<_> = tree.ancestors("xingfu-g1").map(|n| n.id.as_str()).collect();
        assert_eq!(up, ["xingfu-g1", "xingfu", "chengguan", "demo-county"]);
        assert_eq!(tree.county_of("xingfu").unwrap().id, "demo-county");
        assert!(tree.is_within("xingfu", "chengguan"));
        assert!(!tree.is_within("chengguan", "xingfu"));
        assert_eq!(tree.to_specs()[0].children[0].children[0].id, "xingfu");
    }

    #[test]
    fn rejects_bad_trees() {
        let mut specs = demo();
        specs[0].children[0].children[0].children[0].children.push(TenantSpec { id: "deeper".into(), name: "x".into(), kind: None, children: vec![] });
        assert_eq!(TenantTree::default().plan(&specs), Err(TreeError::TooDeep("deeper".into())));
        let mut specs = demo();
        specs[0].children[0].kind = Some(TenantKind::Community);
        assert!(matches!(TenantTree::default().plan(&specs), Err(TreeError::WrongKind { .. })));
        let tree = TenantTree::from_nodes(TenantTree::default().plan(&demo()).unwrap());
        let moved = vec![TenantSpec { id: "xingfu".into(), name: "x".into(), kind: None, children: vec![] }];
        assert!(matches!(tree.plan(&moved), Err(TreeError::WrongKind { .. }) | Err(TreeError::Moved { .. })));
    }
}
