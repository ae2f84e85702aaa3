//! Tenants (county → street → community → grid), installations and grants.
pub mod installations;
pub mod tree;

pub use installations::{EffectiveLimits, Installation};
pub use tree::{SharedTree, TenantKind, TenantNode, TenantSpec, TenantTree, TreeError};
