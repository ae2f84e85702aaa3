//! The landing page: a link to the resident app (`/app/`), and each community with the
//! plugins serving it.
use super::AppState;
use crate::tenancy::TenantKind;
use axum::extract::State;
use axum::response::Html;

use super::escape_html as escape;

pub async fn index(State(state): State<AppState>) -> Html<String> {
    let tree = state.platform.tenants();
    let specs = tree.to_specs();
    let mut rows = String::new();
    fn walk<'a>(specs: &'a [crate::tenancy::TenantSpec], out: &mut Vec<&'a crate::tenancy::TenantSpec>) {
        for s in specs {
            out.push(s);
            walk(&s.children, out);
        }
    }
    let mut all = Vec::new();
    walk(&specs, &mut all);
    for spec in all.iter().filter(|s| s.kind == Some(TenantKind::Community)) {
        let plugins = state.platform.serving(&spec.id);
        let links: String = plugins
            .iter()
            .map(|p| {
                let entry = p.manifest.ui_entry.as_deref().unwrap_or("");
                format!(
                    "<li><a href=\"/t/{}/p/{}/{}\">{}</a> <small>{} · v{}</small></li>",
                    escape(&spec.id),
                    escape(&p.installation.route_prefix),
                    escape(entry),
                    escape(&p.manifest.name),
                    escape(&p.manifest.description),
                    escape(&p.installation.version)
                )
            })
            .collect();
        let links = if links.is_empty() { "<li>尚未安装插件 (no plugins yet)</li>".to_string() } else { links };
        rows.push_str(&format!("<section><h2>{} <small>{}</small></h2><ul>{links}</ul></section>", escape(&spec.name), escape(&spec.id)));
    }
    if rows.is_empty() {
        rows = "<p>还没有社区。用 <code>linli admin tenants load FILE</code> 导入区划。(No communities yet.)</p>".into();
    }
    Html(format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>邻里 Linli</title><style>body{{font-family:system-ui,'PingFang SC','Noto Sans CJK SC',sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.6}}\
         section{{border:1px solid #ddd;border-radius:.5rem;padding:.5rem 1rem;margin:1rem 0}}small{{color:#666}}a{{font-size:1.15rem}}</style></head>\
         <body><h1>邻里 · 智慧社区 <small>Linli</small></h1><p><a href=\"/app/\">进入居民 App（登录后使用全部服务）· Open the resident app</a></p><p>每个社区已安装的服务 (services installed per community):</p>{rows}</body></html>"
    ))
}
