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
    /// Kinds of 报事报修 (problem reports) the plugin takes: the app's report form lists
    /// them and, when a resident picks one, opens the plugin's page with `?report=ID`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<ReportKind>,
}

/// A kind of report a plugin takes from the app's 报事报修 (`[[app.reports]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportKind {
    /// `[a-z0-9-]`, 1–32 characters; the page gets it as `?report=ID`.
    pub id: String,
    /// What the form lists, in Chinese (zh-CN).
    pub name: String,
    /// The host's ticket category the plugin takes over where it serves (e.g. `repair`,
    /// 物业维修): the form offers this kind in that category's place instead of a host
    /// ticket. The county reviews it at installation; the categories for calls for help and
    /// device alarms cannot be taken over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// At most this many `[[app.reports]]` per plugin.
pub const MAX_REPORT_KINDS: usize = 8;

/// Host ticket categories no plugin takes over: calls for help and device alarms have their
/// own flows, which a vendor's page must never stand in for.
pub const RESERVED_CATEGORIES: &[&str] = &["emergency", "device-alarm"];

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
        if self.reports.len() > MAX_REPORT_KINDS {
            return Err(format!("lists {} kinds of report; at most {MAX_REPORT_KINDS}", self.reports.len()));
        }
        for (n, report) in self.reports.iter().enumerate() {
            let id = &report.id;
            if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                return Err(format!("report id `{id}` must be 1–32 characters of a-z, 0-9 and `-`"));
            }
            if self.reports[..n].iter().any(|r| r.id == *id) {
                return Err(format!("report id `{id}` appears twice"));
            }
            if !(1..=20).contains(&report.name.trim().chars().count()) {
                return Err(format!("report `{id}`: its name must be 1–20 characters"));
            }
            if let Some(category) = &report.replaces {
                if RESERVED_CATEGORIES.contains(&category.as_str()) {
                    return Err(format!("report `{id}` may not replace the category `{category}`: calls for help and device alarms stay with the host"));
                }
                if self.reports[..n].iter().any(|r| r.replaces.as_deref() == Some(category)) {
                    return Err(format!("two kinds of report replace the category `{category}`"));
                }
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
    /// `[[app.reports]]` id → its name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reports: BTreeMap<String, String>,
}

/// What a manifest has to translate: the capabilities it requests, its dashboard figures'
/// keys and its kinds of report.
pub struct Translatable<'a> {
    pub capabilities: Vec<&'a str>,
    pub figures: Vec<&'a str>,
    pub reports: Vec<&'a str>,
}

/// Checks of `[translations]` against what the manifest has to translate.
pub fn validate_translations(translations: &BTreeMap<String, Translation>, translatable: &Translatable) -> Result<(), String> {
    for (lang, translation) in translations {
        if !LANGUAGES.contains(&lang.as_str()) {
            return Err(format!("`{lang}` is not a language of the app (zh-CN is the manifest's own; others: {})", LANGUAGES.join(", ")));
        }
        if translation.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(format!("[translations.{lang}] name must not be empty"));
        }
        if let Some(capability) = translation.reasons.keys().find(|c| !translatable.capabilities.contains(&c.as_str())) {
            return Err(format!("[translations.{lang}.reasons] gives a reason for `{capability}`, which the manifest does not request"));
        }
        if let Some(key) = translation.figures.keys().find(|k| !translatable.figures.contains(&k.as_str())) {
            return Err(format!("[translations.{lang}.figures] labels `{key}`, which is no figure or ratio of [dashboard]"));
        }
        if let Some(key) = translation.reports.keys().find(|k| !translatable.reports.contains(&k.as_str())) {
            return Err(format!("[translations.{lang}.reports] names `{key}`, which is no kind of [[app.reports]]"));
        }
    }
    Ok(())
}
