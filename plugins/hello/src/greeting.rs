//! Pure logic, no host calls. bench/ compiles this same file into a native axum handler
//! to measure the plugin route against it.
use serde_json::{json, Value};

pub fn greeting(name: &str) -> Value {
    let name = if name.trim().is_empty() { "邻居" } else { name.trim() };
    json!({ "message": format!("你好，{name}！"), "length": name.chars().count() })
}
