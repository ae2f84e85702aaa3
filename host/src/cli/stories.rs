//! `linli plugin test`: a plugin's stories — requests as named people of the dev host, each
//! with the status and JSON it expects — in language-neutral TOML files under `stories/`.
//!
//! ```toml
//! [[story]]
//! name = "a resident leaves a note and sees it"
//!
//!   [[story.step]]
//!   as = "resident"                      # a dev host person, or "visitor" (default)
//!   request = "POST /notes"              # below /t/{tenant}/p/{plugin}
//!   json = { text = "周六上午停水" }      # the body, as JSON (or `body = "…"` as text)
//!   expect = { status = 201, json = { id = "*" } }
//!   save = { note = "id" }               # a value of the answer, used later as ${note}
//! ```
//!
//! `expect.json` matches when every key it names matches (objects may have more keys),
//! arrays have the same length and match element by element, and `"*"` matches any value.
use super::devhost::{self, DevHost};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoryFile {
    #[serde(default)]
    story: Vec<Story>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Story {
    name: String,
    #[serde(default)]
    step: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A person of the dev host by handle; `visitor` sends no session.
    #[serde(default = "visitor", rename = "as")]
    person: String,
    /// The community (or other tenant node) the request is for; by default the person's
    /// own community, 幸福社区 (xingfu) for staff and visitors.
    tenant: Option<String>,
    /// `METHOD /path?query`.
    request: String,
    /// `plugin` (the default): the path is one of the plugin's routes. `host`: the path is the
    /// host's own (`/api/…`), for what a person does in the app between two plugin calls, such
    /// as giving her consent (`POST /api/consents/PLUGIN`).
    #[serde(default)]
    on: Target,
    json: Option<toml::Value>,
    body: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    expect: Expect,
    /// Names for values of the answer (`id`, `items.0.id`), used as `${name}` later.
    #[serde(default)]
    save: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    status: Option<u16>,
    json: Option<toml::Value>,
    /// Text the body must contain.
    contains: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Target {
    #[default]
    Plugin,
    Host,
}

fn visitor() -> String {
    "visitor".into()
}

/// The story files of a plugin: `stories/*.toml`, in name order.
pub fn story_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let folder = dir.join("stories");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .with_context(|| format!("reading {} (a plugin's stories live there, one TOML file each)", folder.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} has no .toml story files", folder.display());
    }
    Ok(files)
}

pub fn parse(path: &Path) -> Result<StoryFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: StoryFile = toml::from_str(&text).with_context(|| format!("{} is not a story file", path.display()))?;
    if file.story.is_empty() {
        bail!("{} has no [[story]]", path.display());
    }
    Ok(file)
}

/// Replaces every `${name}` in `text` by the saved value.
fn substitute(text: &str, saved: &BTreeMap<String, Value>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').with_context(|| format!("an unclosed ${{ in `{text}`"))?;
        let name = &after[..end];
        let value = saved.get(name).with_context(|| format!("`${{{name}}}` was not saved by an earlier step"))?;
        match value {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A TOML value as JSON, with `${name}` substituted in its strings.
fn to_json(value: &toml::Value, saved: &BTreeMap<String, Value>) -> Result<Value> {
    Ok(match value {
        toml::Value::String(s) => {
            // A string that is exactly one saved value takes that value's JSON type.
            match s.strip_prefix("${").and_then(|r| r.strip_suffix('}')).and_then(|name| saved.get(name)) {
                Some(value) if !s[2..s.len() - 1].contains("${") => value.clone(),
                _ => Value::String(substitute(s, saved)?),
            }
        }
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(|v| to_json(v, saved)).collect::<Result<_>>()?),
        toml::Value::Table(table) => Value::Object(table.iter().map(|(k, v)| Ok((k.clone(), to_json(v, saved)?))).collect::<Result<_>>()?),
    })
}

/// Where `actual` differs from `expected`, as a path and a reason; none when it matches.
fn mismatch(expected: &Value, actual: &Value, at: &str) -> Option<String> {
    match (expected, actual) {
        (Value::String(star), _) if star == "*" => None,
        (Value::Object(wanted), Value::Object(got)) => wanted.iter().find_map(|(key, value)| match got.get(key) {
            Some(found) => mismatch(value, found, &format!("{at}.{key}")),
            None => Some(format!("{at}.{key}: missing")),
        }),
        (Value::Array(wanted), Value::Array(got)) if wanted.len() != got.len() => Some(format!("{at}: {} items, expected {}", got.len(), wanted.len())),
        (Value::Array(wanted), Value::Array(got)) => wanted.iter().zip(got).enumerate().find_map(|(i, (w, g))| mismatch(w, g, &format!("{at}[{i}]"))),
        (Value::Number(w), Value::Number(g)) if w.as_f64() == g.as_f64() => None,
        (w, g) if w == g => None,
        (w, g) => Some(format!("{at}: {g}, expected {w}")),
    }
}

/// The value at a dotted path (`items.0.id`).
fn pick<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').filter(|p| !p.is_empty()).try_fold(value, |v, part| match v {
        Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
        other => other.get(part),
    })
}

/// Runs one step; an error says what went wrong.
async fn run_step(host: &mut DevHost, client: &reqwest::Client, step: &Step, saved: &mut BTreeMap<String, Value>) -> Result<()> {
    let request = substitute(&step.request, saved)?;
    let (method, path) = request.split_once(' ').with_context(|| format!("`request = \"{request}\"` is not `METHOD /path`"))?;
    let method: reqwest::Method = method.trim().parse().with_context(|| format!("`{method}` is not an HTTP method"))?;
    let path = path.trim();
    if !path.starts_with('/') {
        bail!("the path `{path}` must start with /");
    }
    let people = devhost::people()?;
    let person = people.iter().find(|p| p.handle == step.person);
    let tenant = match (&step.tenant, person.and_then(|p| p.community())) {
        (Some(tenant), _) => substitute(tenant, saved)?,
        (None, Some(community)) => community.to_string(),
        (None, None) => "xingfu".to_string(),
    };
    let url = match step.on {
        Target::Plugin => format!("{}/t/{tenant}/p/{}{path}", host.url(), host.manifest.id),
        Target::Host => format!("{}{path}", host.url()),
    };
    let mut builder = client.request(method, &url);
    if step.person != "visitor" {
        builder = builder.bearer_auth(host.token(&step.person).await?);
    }
    for (name, value) in &step.headers {
        builder = builder.header(name.as_str(), substitute(value, saved)?);
    }
    builder = match (&step.json, &step.body) {
        (Some(_), Some(_)) => bail!("a step has `json` or `body`, not both"),
        (Some(json), None) => builder.json(&to_json(json, saved)?),
        (None, Some(body)) => builder.body(substitute(body, saved)?),
        (None, None) => builder,
    };
    let response = builder.send().await.with_context(|| format!("{request}: no answer"))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let shown = || if text.chars().count() > 400 { format!("{}…", text.chars().take(400).collect::<String>()) } else { text.clone() };
    let wanted_status = step.expect.status.unwrap_or(200);
    if status != wanted_status {
        bail!("{request} as {}: status {status}, expected {wanted_status}: {}", step.person, shown());
    }
    if let Some(contains) = &step.expect.contains {
        let contains = substitute(contains, saved)?;
        if !text.contains(&contains) {
            bail!("{request} as {}: the answer does not contain `{contains}`: {}", step.person, shown());
        }
    }
    let needs_json = step.expect.json.is_some() || !step.save.is_empty();
    let body: Value = if needs_json {
        serde_json::from_str(&text).with_context(|| format!("{request} as {}: the answer is not JSON: {}", step.person, shown()))?
    } else {
        Value::Null
    };
    if let Some(expected) = &step.expect.json {
        if let Some(difference) = mismatch(&to_json(expected, saved)?, &body, "$") {
            bail!("{request} as {}: {difference}\n    the answer: {}", step.person, shown());
        }
    }
    for (name, path) in &step.save {
        let value = pick(&body, path).with_context(|| format!("{request}: the answer has no `{path}` to save as `{name}`: {}", shown()))?;
        saved.insert(name.clone(), value.clone());
    }
    Ok(())
}

/// Builds the plugin (unless `build` is false), starts a dev host with it and runs every
/// story; fails if one fails.
pub fn test(dir: &Path, build: bool) -> Result<()> {
    let files = story_files(dir)?;
    let parsed = files.iter().map(|f| parse(f).map(|s| (f.clone(), s))).collect::<Result<Vec<_>>>()?;
    if build {
        super::plugin::build(dir)?;
    }
    let package = super::plugin::package_of(dir, None, None)?;
    super::block_on(async move {
        let mut host = DevHost::start(package, "127.0.0.1:0").await?;
        let client = reqwest::Client::new();
        let (mut passed, mut failed) = (0, 0);
        for (file, stories) in &parsed {
            println!("{}", file.display());
            for story in &stories.story {
                let mut saved = BTreeMap::new();
                let mut outcome = Ok(());
                for (number, step) in story.step.iter().enumerate() {
                    if let Err(error) = run_step(&mut host, &client, step, &mut saved).await {
                        outcome = Err(format!("step {}: {error:#}", number + 1));
                        break;
                    }
                }
                match outcome {
                    Ok(()) => {
                        passed += 1;
                        println!("  ok    {} ({} steps)", story.name, story.step.len());
                    }
                    Err(why) => {
                        failed += 1;
                        println!("  FAIL  {}\n        {why}", story.name);
                    }
                }
            }
        }
        host.stop().await;
        println!("{passed} stories passed, {failed} failed");
        if failed > 0 {
            bail!("{failed} of {} stories failed", passed + failed);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_what_the_story_names_and_says_where_it_differs() {
        let actual = json!({ "id": "n1", "items": [{ "a": 1, "b": 2 }], "extra": true });
        assert_eq!(mismatch(&json!({ "id": "*", "items": [{ "a": 1.0 }] }), &actual, "$"), None);
        assert_eq!(mismatch(&json!({ "items": [] }), &actual, "$").as_deref(), Some("$.items: 1 items, expected 0"));
        assert_eq!(mismatch(&json!({ "id": "n2" }), &actual, "$").as_deref(), Some("$.id: \"n1\", expected \"n2\""));
        assert_eq!(mismatch(&json!({ "gone": 1 }), &actual, "$").as_deref(), Some("$.gone: missing"));
        assert_eq!(pick(&actual, "items.0.b"), Some(&json!(2)));
        assert_eq!(pick(&actual, "items.3"), None);
    }

    #[test]
    fn substitutes_saved_values_keeping_their_type_when_alone() {
        let saved = BTreeMap::from([("note".to_string(), json!("n1")), ("count".to_string(), json!(3))]);
        assert_eq!(substitute("GET /notes/${note}?n=${count}", &saved).ok().as_deref(), Some("GET /notes/n1?n=3"));
        assert!(substitute("${missing}", &saved).is_err());
        let value: toml::Value =
            toml::from_str("v = { id = \"${note}\", n = \"${count}\", text = \"#${count}\" }").map(|t: toml::Table| t["v"].clone()).expect("toml");
        assert_eq!(to_json(&value, &saved).ok(), Some(json!({ "id": "n1", "n": 3, "text": "#3" })));
    }

    #[test]
    fn the_template_stories_parse() {
        let file: StoryFile = toml::from_str(super::super::plugin::TEMPLATE_STORIES).expect("the template's stories");
        assert!(file.story.iter().all(|s| !s.step.is_empty()));
    }
}
