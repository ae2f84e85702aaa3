//! Tenants (county → street → community → grid), installations and grants.
pub mod installations;
pub mod tree;

pub use installations::{EffectiveLimits, Installation};
pub use tree::{SharedTree, TenantKind, TenantNode, TenantSpec, TenantTree, TreeError};

#[cfg(test)]
pub mod testing {
    use super::{TenantKind, TenantNode, TenantTree};
    use crate::store::Store;

    /// Save `nodes` (id, parent, kind; each named after its id) and give their tree.
    pub async fn save_tree(store: &Store, nodes: &[(&str, Option<&str>, TenantKind)]) -> TenantTree {
        let nodes: Vec<TenantNode> = nodes
            .iter()
            .map(|(id, parent, kind)| TenantNode { id: id.to_string(), parent_id: parent.map(str::to_string), kind: *kind, name: id.to_string() })
            .collect();
        super::installations::save_tenants(store, &nodes).await.expect("tenants saved");
        TenantTree::from_nodes(nodes)
    }
}
