//! How the resident app lists a plugin (`[app]`) and what the plugin is called in the app's
//! other languages (`[translations.LANG]`). The manifest's own `name`, `description` and
//! capability reasons are Chinese (zh-CN), the app's first language.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Who finds the plugin on the app's home. Its pages open by link either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Audience {
    /// Residents and staff (the default).
    #[default]
    Residents,
    /// Staff accounts only: a tool for the community office.
    Staff,
    /// Nobody: a demo, or a plugin reached from another one's pages.
    Nobody,
}

/// The groups the app's home lists services under, in this order.
pub const CATEGORIES: &[&str] = &["care", "life", "affairs", "neighbours"];

/// The icons the app draws. A plugin names one; it ships no image of its own, so nothing a
/// vendor wrote runs or renders in the app itself.
pub const ICONS: &[&str] = &["care", "parking", "legal", "time", "repair", "home", "health", "chat", "star", "bell"];

/// `[app]` in a manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppSettings {
    #[serde(default)]
    pub audience: Audience,
    /// One of [`CATEGORIES`]; services without one are listed last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// One of [`ICONS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
}

impl AppSettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub fn validate(&self) -> Result<(), String> {
        if let Some(category) = &self.category {
            if !CATEGORIES.contains(&category.as_str()) {
                return Err(format!("category `{category}` is not one of {}", CATEGORIES.join(", ")));
            }
        }
        if let Some(icon) = &self.icon {
            if !ICONS.contains(&icon.as_str()) {
                return Err(format!("icon `{icon}` is not one of {}", ICONS.join(", ")));
            }
        }
        Ok(())
    }
}

/// The languages a manifest may translate into, besides its own zh-CN.
pub const LANGUAGES: &[&str] = &["en"];

/// `[translations.LANG]`: the name, the description and the capability reasons in `LANG`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Translation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// capability name → the reason shown to the operator.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reasons: BTreeMap<String, String>,
    /// `[dashboard]` figure or ratio key → its label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub figures: BTreeMap<String, String>,
}

/// Checks of `[translations]` against what the manifest has to translate: the capabilities
/// it requests and its dashboard figures' keys.
pub fn validate_translations(translations: &BTreeMap<String, Translation>, requested: &[&str], figures: &[&str]) -> Result<(), String> {
    for (lang, translation) in translations {
        if !LANGUAGES.contains(&lang.as_str()) {
            return Err(format!("`{lang}` is not a language of the app (zh-CN is the manifest's own; others: {})", LANGUAGES.join(", ")));
        }
        if translation.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(format!("[translations.{lang}] name must not be empty"));
        }
        if let Some(capability) = translation.reasons.keys().find(|c| !requested.contains(&c.as_str())) {
            return Err(format!("[translations.{lang}.reasons] gives a reason for `{capability}`, which the manifest does not request"));
        }
        if let Some(key) = translation.figures.keys().find(|k| !figures.contains(&k.as_str())) {
            return Err(format!("[translations.{lang}.figures] labels `{key}`, which is no figure or ratio of [dashboard]"));
        }
    }
    Ok(())
}
