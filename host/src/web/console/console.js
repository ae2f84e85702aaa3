// The admin console for county, street and community operators. Staff sign in with
// their account (session cookie, like the resident app); the platform operator may use
// the admin token instead (kept in sessionStorage for this tab only). The host decides
// what each operator sees and may change; this page only shows it.
// Routes: #/login, #/dashboard[/{tenant}], #/catalogue, #/review/{plugin}/{version},
// #/installations, #/keys, #/people, #/import, #/tickets, #/devices, #/audit.
"use strict";

// The words come from the shared catalogue (/app/messages/zh-CN.js, /app/messages/en.js).
const TEXT = Object.fromEntries(["zh-CN", "en"].map((l) => [l, LinliMessages[l].console]));
let lang = localStorage.getItem("linli.lang") || "zh-CN";
const t = (key) => TEXT[lang][key] ?? TEXT["zh-CN"][key] ?? key;
const view = document.getElementById("view");
// Views load what they show before they draw it; one whose route was left meanwhile (the
// person moved on) must not draw over the next. Each view claims the screen when it starts.
let claims = 0;
function screen() {
  const mine = ++claims;
  return (...nodes) => { if (mine === claims) view.replaceChildren(...nodes); };
}
let me = null;
let nodes = [];        // visible tenant nodes, flattened: {id, name, kind, depth, parent}
let refreshTimer = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node[k] = v;
    else if (v !== false && v !== undefined && v !== null) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(method, path, body, contentType) {
  const init = { method, headers: {} };
  const token = sessionStorage.getItem("linli.console.token");
  if (token) init.headers.authorization = "Bearer " + token;
  if (body !== undefined) {
    init.headers["content-type"] = contentType || "application/json";
    init.body = contentType ? body : JSON.stringify(body);
  }
  // The admin token does not expire; a staff session is renewed like the app's.
  const res = token ? await fetch(path, { ...init, credentials: "same-origin" }) : await LinliBridge.sessionFetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  return { ok: res.ok, status: res.status, data };
}

// A failure in the console's language (/app/messages/say.js), nodes by name. For operators
// reading English, the host's own words follow a general sentence: they say what it cannot
// (which manifest field, which rule).
const GENERAL_CODES = ["invalid-argument", "conflict", "not-found", "limit-exceeded", "invalid-package"];
function failure(r) {
  const sentence = LinliMessages.failure(lang, r, nodeName);
  const message = r.data?.error?.message;
  return lang === "en" && GENERAL_CODES.includes(r.data?.error?.code) && typeof message === "string" ? `${sentence} ${message}` : sentence;
}
const when = (ms) => (ms ? new Date(ms).toLocaleString(lang === "en" ? "en" : "zh-CN", { hour12: false }) : "—");
const nodeName = (id) => nodes.find((n) => n.id === id)?.name || id;
const roleName = (r) => t("role_names")[r] || r;
// Codes as people read them: a device type, a severity, an audit outcome.
const named = (table, code) => t(table)[code] || code;
// A grant as the operator reads it: "身份 · 实名姓名" for `identity:real-name`.
let capabilityInfo = [];
function grantName(grant) {
  if (grant.startsWith("ui-connect:")) return `${t("ui_connect")} · ${grant.slice("ui-connect:".length)}`;
  if (grant.startsWith("http-host:")) return `${t("http_hosts")} · ${grant.slice("http-host:".length)}`;
  const [name, scope] = grant.split(":");
  const capability = t("capability_names")[name] || name;
  if (!scope) return capability;
  const info = capabilityInfo.find((c) => c.name === name)?.scopes.find((x) => x.name === scope);
  return `${capability} · ${info ? (lang === "en" ? info.summary_en : info.summary_zh) : scope}`;
}
// A plugin's name, description and capability reasons in the console's language (the
// manifest's `[translations.en]`, or its own Chinese).
const manifestName = (m) => (lang === "en" && m.translations?.en?.name) || m.name;
const manifestDescription = (m) => (lang === "en" && m.translations?.en?.description) || m.description;
const manifestReason = (m, capability) => (lang === "en" && m.translations?.en?.reasons?.[capability.name]) || capability.reason;
// An audit actor or subject (`plugin:legal-aid`, `account:6ac1…`) as a kind and a name.
// `name`: what the host knows of the party (an account's name, a resident's masked name).
function partyName(party, name) {
  const [kind, id] = party.split(/:(.*)/s);
  const plugin = kind === "plugin" && packagesSeen.find((p) => p.plugin_id === id);
  const label = plugin ? manifestName(plugin.manifest) : name || id;
  return `${t("actor_kinds")[kind] || kind} · ${label}`;
}
let packagesSeen = [];

function ask(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.onclose = () => resolve(dialog.returnValue === "ok");
    dialog.showModal();
  });
}

function notice(message, ok = true) {
  return el("p", { class: ok ? "ok" : "error", role: "status", id: "notice" }, message);
}

function nodeSelect(id, filter = () => true) {
  // Names as people know them (indented under their parent, with their kind); the id is the value.
  return el("select", { id }, ...nodes.filter(filter).map((n) => el("option", { value: n.id }, `${"\u3000".repeat(n.depth)}${n.name} · ${t("tenant_kinds")[n.kind] || n.kind}`)));
}

function flatten(specs, depth = 0, parent = null, out = []) {
  for (const s of specs) {
    out.push({ id: s.id, name: s.name, kind: s.kind, depth, parent });
    flatten(s.children || [], depth + 1, s.id, out);
  }
  return out;
}

// Who is signed in, with their roles in the console's language.
function showWho() {
  const roles = me?.roles.length ? " · " + me.roles.map((g) => roleName(g.role)).join(lang === "en" ? ", " : "、") : "";
  document.getElementById("who").textContent = me ? me.display_name + roles : "";
}

function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = t("brand");
  showWho();
  const other = document.getElementById("lang");
  other.textContent = t("other");
  other.lang = lang === "en" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
}

// ---- sign-in ----

function loginView(message) {
  const draw = screen();
  const phone = el("input", { type: "tel", id: "phone", autocomplete: "username" });
  const password = el("input", { type: "password", id: "password", autocomplete: "current-password" });
  const token = el("input", { type: "password", id: "token" });
  const error = el("p", { class: "error", id: "login-error" }, message || "");
  const form = el("form", { class: "card", id: "login-form", style: "max-width: 28rem" },
    el("h1", {}, t("login_title")),
    el("label", { for: "phone" }, t("phone")), phone,
    el("label", { for: "password" }, t("password")), password,
    error,
    el("button", { class: "primary", type: "submit", id: "login-button" }, t("login")),
    el("details", {}, el("summary", {}, t("token_login")), el("label", { for: "token" }, t("token")), token));
  form.onsubmit = async (e) => {
    e.preventDefault();
    if (token.value.trim()) {
      sessionStorage.setItem("linli.console.token", token.value.trim());
    } else {
      const r = await api("POST", "/api/auth/login", { phone: phone.value.trim(), password: password.value });
      if (!r.ok) { error.textContent = t("login_failed") + failure(r); return; }
    }
    if (!(await loadMe())) { sessionStorage.removeItem("linli.console.token"); error.textContent = t("no_console"); return; }
    // A deep link that asked for the sign-in first is kept; otherwise the dashboards.
    if (!location.hash || location.hash.startsWith("#/login")) location.hash = "#/dashboard";
    route();
  };
  draw(form);
}

async function loadMe() {
  const r = await api("GET", "/admin/me");
  me = r.ok ? r.data : null;
  if (me) {
    const tree = await api("GET", "/admin/tenants");
    nodes = tree.ok ? flatten(tree.data.tenants) : [];
  }
  // The navigation shows once the console knows who is here and what they see: a click on it
  // (or a deep link opened meanwhile) must not be overtaken by the sign-in finishing.
  showWho();
  document.getElementById("logout").hidden = !me;
  // The menu offers what the operator's roles allow (the host checks every action again).
  if (me) {
    for (const link of document.querySelectorAll("#nav a[data-needs]")) link.hidden = !me[link.dataset.needs];
    const caps = await api("GET", "/admin/capabilities");
    capabilityInfo = caps.ok ? caps.data : [];
  }
  document.getElementById("nav").hidden = !me;
  return !!me;
}

// ---- dashboards ----

async function dashboardView(tenant) {
  const draw = screen();
  const r = await api("GET", "/api/dashboard" + (tenant ? "?tenant=" + encodeURIComponent(tenant) : ""));
  if (!r.ok) { draw(notice(failure(r), false)); return; }
  const d = r.data;
  // The figures' names in the console's language (plugins give theirs in their manifest).
  const label = (k) => (lang === "en" && d.labels_en?.[k]) || d.labels[k] || k;
  // Ratios (from plugin manifests) are fractions shown as percentages; a figure nothing
  // was counted for is 0, a ratio without a denominator has no value.
  const ratios = new Set(d.plugins.flatMap((p) => p.ratios));
  const fmt = (key, v) => {
    if (v === undefined || v === null) return ratios.has(key) ? "—" : "0";
    if (ratios.has(key)) return (v * 100).toFixed(1) + "%";
    return Number.isInteger(v) ? String(v) : v.toFixed(2);
  };
  const drill = (id) => { location.hash = "#/dashboard/" + encodeURIComponent(id); };
  const crumbs = el("p", { class: "crumbs", id: "crumbs" });
  d.path.forEach((n, i) => {
    if (i) crumbs.append(el("span", { class: "sep" }, "›"));
    crumbs.append(i === d.path.length - 1 ? el("strong", {}, n.name) : el("a", { href: "#/dashboard/" + encodeURIComponent(n.id) }, n.name));
  });
  const total = (k) => d.totals[k] || 0;
  const openTickets = total("tickets_open") + total("tickets_dispatched") + total("tickets_accepted");
  const kpis = [
    ["residents", total("residents")], ["elders", total("elders")], ["elders_alone", total("elders_alone")],
    ["alarms_active", total("alarms_active"), total("alarms_active") > 0], ["tickets_unresolved", openTickets], ["tickets_overdue", total("tickets_overdue"), total("tickets_overdue") > 0],
  ];
  const kpiLabels = { tickets_unresolved: lang === "en" ? "Open work orders" : "未办结工单" };
  const cards = el("div", { class: "grid", id: "kpis" }, ...kpis.map(([k, v, bad]) =>
    el("div", { class: "kpi" + (bad ? " bad" : ""), "data-figure": k }, el("div", { class: "value" }, fmt(k, v)), el("div", { class: "label" }, kpiLabels[k] || label(k)))));
  for (const p of d.plugins) {
    for (const k of [...p.figures.slice(0, 3), ...p.ratios]) {
      cards.append(el("div", { class: "kpi", "data-figure": k }, el("div", { class: "value" }, fmt(k, d.totals[k])), el("div", { class: "label" }, `${p.name} · ${label(k)}`)));
    }
  }

  const section = el("section", { id: "dashboard", "data-tenant": d.node.id }, el("h1", {}, `${t("dashboard_title")} · ${d.node.name}`), crumbs, cards);
  if (d.children.length) {
    const keys = Object.keys(d.labels).filter((k) => d.children.some((c) => c.figures[k] !== undefined));
    const pick = el("select", { id: "compare-figure" }, ...keys.map((k) => el("option", { value: k }, label(k))));
    if (keys.includes("residents")) pick.value = "residents";
    const chartBox = el("div", { id: "compare-chart" });
    const draw = () => chartBox.replaceChildren(Charts.bars(d.children.map((c) => ({ id: c.node.id, label: c.node.name, value: c.figures[pick.value] || 0 })),
      { onpick: (item) => drill(item.id), format: (v) => fmt(pick.value, v), title: `${t("compare")} · ${label(pick.value)}` }));
    pick.onchange = draw;
    draw();
    const statuses = ["open", "dispatched", "accepted", "resolved", "closed"].map((s) => ({ key: "tickets_" + s, label: t("status_names")[s] }));
    const ticketChart = Charts.stacked(d.children.map((c) => ({ id: c.node.id, label: c.node.name, values: c.figures })), statuses, { onpick: (item) => drill(item.id), title: t("tickets_by_status") });
    section.append(el("div", { class: "grid2" },
      el("div", { class: "card" }, el("h2", {}, t("compare")), el("p", { class: "muted" }, t("drill_hint")), el("label", { for: "compare-figure" }, t("figure")), pick, chartBox),
      el("div", { class: "card" }, el("h2", {}, t("tickets_by_status")), Charts.legend(statuses), ticketChart)));
    const columns = ["residents", "elders", "alarms_active", "tickets_overdue", ...d.plugins.flatMap((p) => [...p.figures, ...p.ratios])];
    const table = el("table", { id: "children-table" },
      el("tr", {}, el("th", {}, ""), ...columns.map((k) => el("th", {}, label(k)))),
      ...d.children.map((c) => el("tr", { "data-child": c.node.id },
        el("td", { class: "name" }, el("a", { href: "#/dashboard/" + encodeURIComponent(c.node.id), "data-drill": c.node.id }, c.node.name)),
        ...columns.map((k) => el("td", {}, fmt(k, c.figures[k]))))));
    section.append(el("div", { class: "card" }, el("h2", {}, t("children_table")), table));
  }
  for (const p of d.plugins.filter((p) => p.error)) section.append(notice(t("plugin_unavailable") + `${p.name}: ${p.error}`, false));
  const plugins = [...new Set(d.usage.flatMap((u) => Object.keys(u.requests)))];
  const series = plugins.map((p) => ({ label: (lang === "en" && d.plugin_names_en?.[p]) || d.plugin_names[p] || p, values: d.usage.map((u) => u.requests[p] || 0) }));
  section.append(el("div", { class: "card", id: "usage" }, el("h2", {}, t("usage_title")), Charts.legend(series), Charts.lines(d.usage.map((u) => u.day), series, { width: 760, title: t("usage_title") })));
  draw(section);
}

// ---- catalogue, review, install ----

async function catalogueView(message) {
  const draw = screen();
  const [r, installed] = await Promise.all([api("GET", "/admin/packages"), api("GET", "/admin/installations")]);
  if (!r.ok) { draw(notice(failure(r), false)); return; }
  packagesSeen = r.data.packages;
  const installations = installed.ok ? installed.data.installations : [];
  const counties = me.platform ? nodes.filter((n) => n.kind === "county") : nodes.filter((n) => me.roles.some((g) => g.role === "county-admin" && g.tenant === n.id));
  const section = el("section", { id: "catalogue" }, el("h1", {}, t("catalogue_title")));
  if (message) section.append(message);
  if (counties.length) {
    const file = el("input", { type: "file", id: "package-file", accept: ".lpkg,application/octet-stream" });
    const county = el("select", { id: "upload-county" }, ...counties.map((c) => el("option", { value: c.id }, c.name)));
    const status = el("p", { id: "upload-status" });
    const form = el("form", { class: "card", id: "upload-form" }, el("h2", {}, t("upload")),
      el("label", { for: "upload-county" }, t("upload_for")), county, el("label", { for: "package-file" }, t("choose_file")), file, status,
      el("button", { class: "primary", type: "submit", id: "upload-button" }, t("upload")));
    form.onsubmit = async (e) => {
      e.preventDefault();
      if (!file.files.length) return;
      status.textContent = "…";
      const bytes = await file.files[0].arrayBuffer();
      const up = await api("POST", "/admin/packages?county=" + encodeURIComponent(county.value), bytes, "application/octet-stream");
      if (!up.ok) { status.replaceChildren(notice(failure(up), false)); return; }
      location.hash = `#/review/${encodeURIComponent(up.data.plugin_id)}/${encodeURIComponent(up.data.version)}`;
    };
    section.append(form);
  }
  const table = el("table", { id: "packages" }, el("tr", {}, ...["plugin", "version", "vendor", "county", "uploaded_at", "actions"].map((k) => el("th", {}, t(k)))));
  for (const p of r.data.packages) {
    table.append(el("tr", { "data-package": `${p.plugin_id}@${p.version}` },
      el("td", {}, el("strong", {}, manifestName(p.manifest)), el("br"), el("span", { class: "muted" }, p.plugin_id)),
      el("td", {}, p.version), el("td", {}, p.vendor), el("td", {}, nodeName(p.county_id)), el("td", {}, when(p.uploaded_at)),
      actionsFor(p)));
  }
  section.append(el("div", { class: "card" }, table));
  draw(section);

  // A version already installed says where; the review can still install it elsewhere.
  function actionsFor(p) {
    const at = installations.filter((i) => i.plugin_id === p.plugin_id && i.version === p.version).map((i) => nodeName(i.tenant_id));
    const review = el("a", { href: `#/review/${encodeURIComponent(p.plugin_id)}/${encodeURIComponent(p.version)}` }, at.length ? t("review") : t("review_install"));
    return el("td", {}, at.length ? el("span", { class: "tag ok" }, t("installed_at") + at.join("、")) : null, at.length ? el("br") : null, review);
  }
}

async function reviewView(pluginId, version) {
  const draw = screen();
  const [packages, caps] = await Promise.all([api("GET", "/admin/packages"), api("GET", "/admin/capabilities")]);
  const p = packages.ok && packages.data.packages.find((x) => x.plugin_id === pluginId && x.version === version);
  if (!p) { draw(notice(failure(packages), false)); return; }
  const m = p.manifest;
  const info = (name) => (caps.data || []).find((c) => c.name === name);
  const boxes = [];
  const perms = el("div", { id: "permissions" });
  for (const c of m.capabilities) {
    const box = el("input", { type: "checkbox", id: "grant-" + c.name, value: c.name, checked: true });
    boxes.push(box);
    const summary = info(c.name) ? (lang === "en" ? info(c.name).summary_en : info(c.name).summary_zh) : "";
    const perm = el("div", { class: "perm", "data-capability": c.name },
      el("label", { class: "inline", for: box.id }, box, el("strong", {}, t("capability_names")[c.name] || c.name), el("span", { class: "muted" }, " ", el("code", {}, c.name), ` · ${summary}`)),
      el("p", { class: "reason" }, t("reason"), manifestReason(m, c)));
    for (const s of c.scopes || []) {
      const scope = el("input", { type: "checkbox", id: `grant-${c.name}-${s}`, value: `${c.name}:${s}`, checked: true });
      boxes.push(scope);
      const scopeInfo = info(c.name)?.scopes?.find((x) => x.name === s);
      const scopeName = scopeInfo ? (lang === "en" ? scopeInfo.summary_en : scopeInfo.summary_zh) : "";
      perm.append(el("label", { class: "inline", for: scope.id, style: "margin-left:1.6rem" }, scope, scopeName ? `${scopeName} ` : "", el("code", {}, `${c.name}:${s}`)));
    }
    // The origins its server code may call: each a grant of its own, off until ticked.
    if ((c.hosts || []).length) perm.append(el("p", { class: "reason" }, t("http_hosts_note")));
    for (const origin of c.hosts || []) {
      const host = el("input", { type: "checkbox", id: "grant-http-host-" + boxes.length, value: "http-host:" + origin });
      boxes.push(host);
      perm.append(el("label", { class: "inline", for: host.id, style: "margin-left:1.6rem" }, host, el("code", {}, origin)));
    }
    perms.append(perm);
  }
  // External origins the plugin's pages load from or connect to: each is a grant of its
  // own, off until the reviewer ticks it (the browser blocks every origin not granted).
  const origins = m.ui?.connect || [];
  if (origins.length) {
    const perm = el("div", { class: "perm", id: "ui-connect" },
      el("strong", {}, t("ui_connect")), el("p", { class: "reason" }, t("ui_connect_note")));
    for (const origin of origins) {
      const box = el("input", { type: "checkbox", id: "grant-ui-connect-" + boxes.length, value: "ui-connect:" + origin });
      boxes.push(box);
      perm.append(el("label", { class: "inline", for: box.id, style: "margin-left:1.6rem" }, box, origin));
    }
    perms.append(perm);
  }
  const tenant = nodeSelect("install-tenant", (n) => me.platform || isManaged(n.id));
  const status = el("div", { id: "install-status" });
  const install = el("button", { class: "primary", type: "button", id: "install-button" }, t("install"));
  install.onclick = async () => {
    const grants = boxes.filter((b) => b.checked).map((b) => b.value);
    if (!(await ask(t("confirm_install")(manifestName(m), nodeName(tenant.value), grants.length)))) return;
    const r = await api("POST", "/admin/installations", { plugin_id: p.plugin_id, version: p.version, tenant_id: tenant.value, grants });
    if (!r.ok) { status.replaceChildren(notice(failure(r), false)); return; }
    location.hash = "#/installations";
    installationsView(notice(t("installed_ok") + `${manifestName(m)} → ${nodeName(r.data.tenant_id)}`));
  };
  const limits = m.limits || {};
  draw(el("section", { id: "review" },
    el("h1", {}, `${t("review_title")} · ${manifestName(m)} ${p.version}`),
    el("div", { class: "card" },
      el("p", {}, el("strong", {}, t("description") + (lang === "en" ? ": " : "：")), manifestDescription(m)),
      el("p", { class: "muted" }, `${t("vendor")}: ${p.vendor} · ${t("signed_by")}: `, el("code", {}, p.key_id), " · ", el("code", {}, `sha256 ${p.sha256.slice(0, 16)}…`)),
      el("p", { class: "muted" }, `${t("limits")}: ${t("deadline")} ${limits.deadline_ms ?? "—"} ${t("unit_ms")} · ${t("memory")} ${limits.memory_mib ?? "—"} ${t("unit_mib")} · ${t("concurrency")} ${limits.max_concurrency ?? "—"}`),
      (limits.requests_per_instance ?? 1) > 1 ? el("p", { class: "muted" }, t("reuse")(limits.requests_per_instance)) : null,
      // Reports it takes from the app's 报事报修 reach its page instead of the community's board.
      (m.app?.reports || []).length ? el("p", { id: "review-reports" }, t("takes_reports")(m.app.reports.map((r) =>
        ((lang === "en" && m.translations?.en?.reports?.[r.id]) || r.name) + (r.replaces ? t("in_place_of")(r.replaces) : "")).join(lang === "en" ? "; " : "；"))) : null),
    el("div", { class: "card" }, el("h2", {}, t("requested")), perms),
    el("div", { class: "card" }, el("label", { for: "install-tenant" }, t("scope")), tenant, el("p", {}, install), status)));
}

function isManaged(id) {
  // Mirrors the host's rule for showing choices; the host checks again.
  const managing = me.roles.filter((g) => g.role === "county-admin" || g.role === "street-admin").map((g) => g.tenant);
  for (let n = nodes.find((x) => x.id === id); n; n = nodes.find((x) => x.id === n.parent)) if (managing.includes(n.id)) return true;
  return false;
}

async function installationsView(message) {
  const draw = screen();
  const [r, packages] = await Promise.all([api("GET", "/admin/installations"), api("GET", "/admin/packages")]);
  if (!r.ok) { draw(notice(failure(r), false)); return; }
  const section = el("section", { id: "installations" }, el("h1", {}, t("installations_title")));
  if (message) section.append(message);
  const status = el("div", { id: "installation-status" });
  section.append(status);
  const table = el("table", {}, el("tr", {}, ...["plugin", "tenant", "version", "grants", "actions"].map((k) => el("th", {}, t(k)))));
  const act = async (question, method, path, body) => {
    if (!(await ask(question))) return;
    const res = await api(method, path, body);
    if (!res.ok) { status.replaceChildren(notice(failure(res), false)); return; }
    installationsView(notice("✓ " + question.replace(/[？?]$/, "")));
  };
  packagesSeen = packages.data?.packages || [];
  // A tenant above the operator's own area is named by the host.
  const tenantName = (id) => r.data.tenant_names?.[id] || nodeName(id);
  for (const i of r.data.installations) {
    const manages = me.platform || isManaged(i.tenant_id);
    const manifest = (packages.data?.packages || []).find((p) => p.plugin_id === i.plugin_id && p.version === i.version)?.manifest;
    const name = manifest ? manifestName(manifest) : i.plugin_id;
    const versions = (packages.data?.packages || []).filter((p) => p.plugin_id === i.plugin_id && p.version !== i.version).map((p) => p.version);
    const cell = el("td", {});
    if (manages && versions.length) {
      const pick = el("select", { id: `upgrade-${i.id}` }, ...versions.map((v) => el("option", { value: v }, v)));
      cell.append(pick, el("button", { class: "secondary", type: "button", onclick: () => act(t("confirm_upgrade")(name, pick.value), "POST", `/admin/installations/${encodeURIComponent(i.id)}/upgrade`, { version: pick.value }) }, t("upgrade")));
    }
    if (manages && i.previous_version) {
      cell.append(el("button", { class: "secondary", type: "button", "data-action": "rollback", onclick: () => act(t("confirm_rollback")(name, i.previous_version), "POST", `/admin/installations/${encodeURIComponent(i.id)}/rollback`) }, t("rollback")));
    }
    const entry = manifest?.ui_entry;
    if (entry) {
      const url = `/t/${i.tenant_id}/p/${i.route_prefix}/${entry}`;
      cell.append(el("a", { class: "button secondary", "data-action": "open-page", href: `#/page?plugin=${encodeURIComponent(i.plugin_id)}&url=${encodeURIComponent(url)}` }, t("open_page")));
    }
    const purge = el("input", { type: "checkbox", id: `purge-${i.id}` });
    if (manages) cell.append(el("button", { class: "danger", type: "button", "data-action": "uninstall", onclick: () => act(t("confirm_uninstall")(name) + (purge.checked ? " " + t("purge") : ""), "DELETE", `/admin/installations/${encodeURIComponent(i.id)}?purge=${purge.checked}`) }, t("uninstall")),
      el("label", { class: "inline", for: purge.id }, purge, t("purge")));
    // Grant or revoke what the installed version requests.
    const permissions = el("details", { "data-permissions": i.id }, el("summary", {}, t("permissions")));
    if (manifest && manages) {
      const requested = [
        ...manifest.capabilities.flatMap((c) => [c.name, ...(c.scopes || []).map((s) => `${c.name}:${s}`), ...(c.hosts || []).map((o) => `http-host:${o}`)]),
        ...(manifest.ui?.connect || []).map((o) => `ui-connect:${o}`),
      ];
      const boxes = requested
        .map((g) => el("input", { type: "checkbox", value: g, checked: i.grants.includes(g), id: `perm-${i.id}-${g}` }));
      permissions.append(...boxes.map((b) => el("label", { class: "inline", for: b.id, "data-grant": b.value }, b, grantName(b.value))),
        el("button", { class: "secondary", type: "button", "data-action": "grants", onclick: () => {
          const grants = boxes.filter((b) => b.checked).map((b) => b.value);
          act(t("confirm_grants")(name, grants), "PUT", `/admin/installations/${encodeURIComponent(i.id)}/grants`, { grants });
        } }, t("save_grants")));
    }
    const history = el("details", {}, el("summary", {}, t("history")));
    history.ontoggle = async () => {
      if (!history.open || history.dataset.loaded) return;
      const h = await api("GET", `/admin/installations/${encodeURIComponent(i.id)}`);
      history.dataset.loaded = "1";
      history.append(el("ul", {}, ...(h.data?.history || []).map((e) => el("li", {}, `${when(e.at)} · ${e.action} · ${e.from_version || ""} → ${e.to_version || ""}${e.actor ? " · " + e.actor : ""}`))));
    };
    table.append(el("tr", { "data-installation": i.id },
      el("td", {}, el("strong", {}, name), el("br"), el("span", { class: "muted" }, i.id), manages ? permissions : null, history),
      el("td", {}, tenantName(i.tenant_id)), el("td", {}, i.version + (i.previous_version ? ` (← ${i.previous_version})` : "")),
      el("td", {}, ...i.grants.map((g) => el("span", { class: "tag", "data-grant": g }, grantName(g)))), cell));
  }
  section.append(el("div", { class: "card", style: "overflow-x:auto" }, table));
  draw(section);
}

// ---- vendor keys ----

async function keysView(message) {
  const draw = screen();
  const r = await api("GET", "/admin/keys");
  const section = el("section", { id: "keys" }, el("h1", {}, t("keys_title")));
  if (message) section.append(message);
  if (!r.ok) { section.append(notice(failure(r), false)); draw(section); return; }
  section.append(el("div", { class: "card" }, el("table", {}, el("tr", {}, ...["county", "vendor", "key_id", "added"].map((k) => el("th", {}, t(k)))),
    ...r.data.keys.map((k) => el("tr", {}, el("td", {}, nodeName(k.county_id)), el("td", {}, k.vendor), el("td", {}, el("code", {}, k.key_id)), el("td", {}, when(k.added_at)))))));
  const county = nodeSelect("key-county", (n) => n.kind === "county");
  const vendor = el("input", { type: "text", id: "key-vendor" });
  const key = el("textarea", { id: "key-public", rows: 2, cols: 60 });
  const form = el("form", { class: "card" }, el("h2", {}, t("trust")), el("label", { for: "key-county" }, t("county")), county,
    el("label", { for: "key-vendor" }, t("vendor")), vendor, el("label", { for: "key-public" }, t("public_key")), key, el("p", {}, el("button", { class: "primary", type: "submit" }, t("trust"))));
  form.onsubmit = async (e) => {
    e.preventDefault();
    const res = await api("POST", "/admin/keys", { county: county.value, vendor: vendor.value.trim(), public_key: key.value.trim() });
    keysView(res.ok ? notice("✓ " + res.data.key_id) : notice(failure(res), false));
  };
  section.append(form);
  draw(section);
}

// ---- tenants and staff ----

async function peopleView(message) {
  const draw = screen();
  const r = await api("GET", "/admin/accounts");
  const section = el("section", { id: "people" }, el("h1", {}, t("people_title")));
  if (message) section.append(message);
  const tree = el("ul", { id: "tenant-tree" }, ...nodes.map((n) => el("li", { style: `margin-left:${n.depth * 1.2}rem`, "data-tenant": n.id }, `${n.name} `, el("span", { class: "muted" }, `${t("tenant_kinds")[n.kind] || n.kind} · `, el("code", {}, n.id)))));
  const staff = el("table", { id: "staff" }, el("tr", {}, ...["name", "phone", "roles"].map((k) => el("th", {}, t(k)))),
    ...(r.data?.staff || []).map((s) => el("tr", {}, el("td", {}, s.display_name), el("td", {}, s.phone), el("td", {}, ...s.roles.map((g) => el("span", { class: "tag" }, `${roleName(g.role)} @ ${nodeName(g.tenant)}`))))));
  const name = el("input", { type: "text", id: "staff-name" });
  const phone = el("input", { type: "tel", id: "staff-phone" });
  const password = el("input", { type: "password", id: "staff-password", autocomplete: "new-password" });
  // Nothing chosen for the operator: a new account's role and area are picked on purpose.
  const role = el("select", { id: "staff-role", required: true }, el("option", { value: "" }, t("choose")), ...Object.keys(TEXT["zh-CN"].role_names).map((k) => el("option", { value: k }, roleName(k))));
  const tenant = nodeSelect("staff-tenant", (n) => me.platform || isManaged(n.id));
  tenant.required = true;
  tenant.prepend(el("option", { value: "" }, t("choose")));
  tenant.value = "";
  const form = el("form", { class: "card" }, el("h2", {}, t("new_staff")),
    el("label", { for: "staff-name" }, t("name")), name, el("label", { for: "staff-phone" }, t("phone")), phone,
    el("label", { for: "staff-password" }, t("password")), password, el("label", { for: "staff-role" }, t("role")), role,
    el("label", { for: "staff-tenant" }, t("tenant")), tenant, el("p", {}, el("button", { class: "primary", type: "submit" }, t("create"))));
  form.onsubmit = async (e) => {
    e.preventDefault();
    const res = await api("POST", "/admin/accounts", { kind: "staff", display_name: name.value.trim(), phone: phone.value.trim(), password: password.value, roles: [{ role: role.value, tenant: tenant.value }] });
    peopleView(res.ok ? notice("✓ " + res.data.display_name) : notice(failure(res), false));
  };
  section.append(el("div", { class: "grid2" }, el("div", { class: "card" }, el("h2", {}, t("tree")), tree), el("div", {}, el("div", { class: "card" }, el("h2", {}, t("staff")), staff), me.manages ? form : null)));
  draw(section);
}

// ---- base-data import ----

// An import problem in the console's language, from its code; the host's English text for
// codes this console does not know yet.
function problemText(p) {
  const say = t("import_problems")[p.code];
  if (!say) return lang === "en" ? p.problem : LinliMessages[lang].error_generic;
  return typeof say === "function" ? say(p.value ?? "", nodeName) : say;
}
// `real_name`, or `身份证号/id_number` for a missing column: in the console's language.
function columnName(column) {
  const [zh, en] = column.includes("/") ? column.split("/") : [null, column];
  if (lang !== "en" && zh) return zh;
  return t("import_columns")[en] || en;
}

function importView() {
  const draw = screen();
  const kind = el("select", { id: "import-kind" }, ...Object.entries(t("import_kinds")).map(([k, v]) => el("option", { value: k }, v)));
  const tenant = nodeSelect("import-tenant");
  const file = el("input", { type: "file", id: "import-file", accept: ".csv,text/csv" });
  const report = el("div", { id: "import-report" });
  const form = el("form", { class: "card" }, el("label", { for: "import-kind" }, t("kind")), kind, el("label", { for: "import-tenant" }, t("tenant")), tenant,
    el("label", { for: "import-file" }, t("file")), file, el("p", {}, el("button", { class: "primary", type: "submit", id: "import-button" }, t("start_import"))));
  form.onsubmit = async (e) => {
    e.preventDefault();
    if (!file.files.length) return;
    const text = await file.files[0].text();
    const r = await api("POST", `/api/base/imports?kind=${kind.value}&tenant=${encodeURIComponent(tenant.value)}`, text, "text/csv");
    if (!r.ok) { report.replaceChildren(notice(failure(r), false)); return; }
    const poll = async () => {
      const s = await api("GET", `/api/base/imports/${encodeURIComponent(r.data.id)}`);
      if (!s.ok) { report.replaceChildren(notice(failure(s), false)); return; }
      const x = s.data;
      const bar = el("progress", { max: Math.max(1, x.total_rows), value: x.processed });
      report.replaceChildren(el("p", {}, `${t("import_states")[x.status] || x.status} · ${t("progress")} ${x.processed}/${x.total_rows} `, bar));
      if (x.problems.length) {
        report.append(el("h2", {}, `${t("problems")} (${x.problems.length})`), el("table", { id: "import-problems" }, el("tr", {}, el("th", {}, t("row")), el("th", {}, t("column")), el("th", {}, t("problem"))),
          ...x.problems.map((p) => el("tr", { "data-code": p.code || null }, el("td", {}, p.row), el("td", {}, columnName(p.column)), el("td", {}, problemText(p))))));
      }
      if (x.status === "validating" || x.status === "writing") setTimeout(poll, 400);
    };
    poll();
  };
  draw(el("section", { id: "import" }, el("h1", {}, t("import_title")), form, report));
}

// ---- work orders ----

function dueClass(x, now) {
  if (x.status === "resolved" || x.status === "closed") return "";
  if (x.due_at < now) return "overdue";
  const span = Math.max(1, x.due_at - x.created_at);
  return x.due_at - now < span / 4 ? "due-soon" : "";
}

// Roles that handle tickets: the only people a ticket is dispatched to.
const HANDLING_ROLES = ["grid-worker", "community-worker", "street-admin", "county-admin"];
// The host ranks each ticket (`priority`): calls for help (一键求助) and critical alarms
// (smoke, gas, a fall) are urgent, major alarms high. Open urgent tickets come first (a smoke
// alarm in an elder's home is not a routine visit), then high, then the overdue, the nearly
// due, and the rest by time limit.
const isOpen = (x) => !["resolved", "closed"].includes(x.status);
const isUrgent = (x) => x.priority === "urgent" && isOpen(x);
const isHigh = (x) => x.priority === "high" && isOpen(x);
function ticketOrder(a, b, now) {
  const rank = (x) => (isUrgent(x) ? 0 : isHigh(x) ? 1 : dueClass(x, now) === "overdue" ? 2 : dueClass(x, now) === "due-soon" ? 3 : 4);
  return rank(a) - rank(b) || a.due_at - b.due_at;
}

// A CSV file of the tickets shown, downloaded by the browser (UTF-8 with a byte-order mark
// so that spreadsheet programs read the Chinese).
function downloadCsv(tickets) {
  const header = ["id", "title", "category", "location", "status", "level", "assignee", "due", "created", "supervised"];
  const cell = (v) => `"${String(v ?? "").replaceAll('"', '""')}"`;
  const rows = tickets.map((x) => [x.id, x.title, LinliMessages.categoryName(lang, x), x.location, t("status_names")[x.status] || x.status, nodeName(x.level_tenant_id), x.assignee_name || "", when(x.due_at), when(x.created_at), x.supervised ? t("supervised") : ""]);
  const text = "\ufeff" + [header, ...rows].map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
  const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" })), download: `tickets-${new Date().toISOString().slice(0, 10)}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
}

async function ticketsBoard(message, filters = {}) {
  const draw = screen();
  const [r, people] = await Promise.all([api("GET", "/api/tickets?limit=200"), api("GET", "/admin/accounts")]);
  const staff = (people.data?.staff || []).filter((s) => s.roles.some((g) => HANDLING_ROLES.includes(g.role)));
  const section = el("section", { id: "tickets" }, el("h1", {}, t("tickets_title")));
  if (message) section.append(message);
  if (!r.ok) { section.append(notice(failure(r), false)); draw(section); return; }
  const now = Date.now();
  const all = r.data.tickets;
  const search = el("input", { type: "search", id: "ticket-search", value: filters.q || "", "aria-label": t("search_tickets"), placeholder: t("search_tickets") });
  const categories = [...new Map(all.map((x) => [x.category, LinliMessages.categoryName(lang, x)])).entries()];
  const category = el("select", { id: "ticket-category", "aria-label": t("all_categories") }, el("option", { value: "" }, t("all_categories")), ...categories.map(([k, v]) => el("option", { value: k }, v)));
  category.value = filters.category || "";
  const shown = () => {
    const q = search.value.trim().toLowerCase();
    return all.filter((x) => (!category.value || x.category === category.value) && (!q || [x.title, x.location, LinliMessages.categoryName(lang, x), x.description].some((v) => v?.toLowerCase().includes(q))));
  };
  const board = el("div", { class: "board" });
  const drawBoard = () => {
    const tickets = shown().sort((a, b) => ticketOrder(a, b, now));
    board.replaceChildren(...["open", "dispatched", "accepted", "resolved"].map((status) => column(status, tickets.filter((x) => x.status === status || (status === "resolved" && x.status === "closed")))));
    if (tickets.length === 0) board.prepend(el("p", { class: "muted", id: "no-tickets" }, t("no_tickets")));
  };
  search.oninput = drawBoard;
  category.onchange = drawBoard;
  const exportButton = el("button", { class: "secondary", type: "button", id: "export-csv", onclick: () => downloadCsv(shown().sort((a, b) => ticketOrder(a, b, now))) }, t("export_csv"));
  section.append(el("div", { class: "card toolbar", role: "search" }, search, category, exportButton), board);
  if (me.manages) section.append(await dutyLines(filters));
  drawBoard();
  draw(section);

  // The duty lines 一键求助 gives residents, set by those who manage a node.
  async function dutyLines() {
    const lines = await api("GET", "/admin/duty-lines");
    const box = el("details", { class: "card", id: "duty-lines" }, el("summary", {}, t("duty_lines")), el("p", { class: "muted" }, t("duty_note")));
    const list = lines.ok ? lines.data.lines : [];
    box.append(list.length ? el("ul", {}, ...list.map((l) => el("li", {}, `${l.tenant_name}：${l.phone}`))) : el("p", { class: "muted" }, t("duty_none")));
    const managed = nodes.filter((n) => ["county", "street", "community"].includes(n.kind) && (me.platform || isManaged(n.id)));
    const node = el("select", { id: "duty-node" }, ...managed.map((n) => el("option", { value: n.id }, "\u3000".repeat(n.depth) + n.name)));
    const phone = el("input", { type: "tel", id: "duty-phone", maxlength: "24", inputmode: "tel" });
    const fill = () => { phone.value = list.find((l) => l.tenant_id === node.value)?.phone || ""; };
    node.onchange = fill;
    fill();
    const form = el("form", { class: "duty-form" },
      el("label", { for: "duty-node" }, t("duty_node")), node, el("label", { for: "duty-phone" }, t("duty_phone")), phone,
      el("button", { class: "primary", type: "submit", id: "duty-save" }, t("duty_save")));
    form.onsubmit = async (e) => {
      e.preventDefault();
      const res = await api("PUT", `/admin/duty-lines/${encodeURIComponent(node.value)}`, { phone: phone.value.trim() });
      ticketsBoard(res.ok ? notice("✓ " + t("duty_saved")) : notice(failure(res), false), { q: search.value, category: category.value });
    };
    if (managed.length) box.append(form);
    return box;
  }

  function column(status, items) {
    const box = el("div", { class: "column", "data-status": status }, el("h2", {}, `${t("status_names")[status]} (${items.length})`));
    for (const x of items) box.append(card(x));
    return box;
  }

  function card(x) {
    const cls = dueClass(x, now);
    // An urgent or high ticket is never marked a calm green "on time": its own tag says it all.
    const calm = isOpen(x) && !isUrgent(x) && !isHigh(x);
    const tag = cls === "overdue" ? el("span", { class: "tag bad" }, t("overdue")) : cls === "due-soon" ? el("span", { class: "tag warn" }, t("due_soon")) : calm ? el("span", { class: "tag ok" }, t("on_time")) : null;
    const card = el("div", { class: "ticket " + cls + (isUrgent(x) ? " urgent" : ""), "data-ticket": x.id, "data-urgent": isUrgent(x) ? "1" : null },
      isUrgent(x) ? el("span", { class: "tag urgent" }, t("urgent")) : isHigh(x) ? el("span", { class: "tag high" }, t("high")) : null,
      el("strong", {}, x.title), el("br"),
      el("span", { class: "muted" }, `${LinliMessages.categoryName(lang, x)} · ${x.location} · ${nodeName(x.level_tenant_id)}${x.assignee_name ? " · " + x.assignee_name : ""}`), el("br"),
      tag, x.supervised ? el("span", { class: "tag bad" }, t("supervised")) : null,
      el("span", { class: "muted" }, `${t("due")} ${when(x.due_at)}`));
    // Only people who handle tickets, and none picked for the operator.
    if (x.status === "open" && staff.length) {
      const who = el("select", { "aria-label": t("assignee") }, el("option", { value: "" }, t("choose")),
        ...staff.map((s) => el("option", { value: s.id }, `${s.display_name} · ${s.roles.filter((g) => HANDLING_ROLES.includes(g.role)).map((g) => roleName(g.role)).join("、")}`)));
      card.append(el("br"), who, el("button", { class: "primary", type: "button", "data-action": "dispatch", onclick: async () => {
        if (!who.value) { who.focus(); return; }
        const res = await api("POST", `/api/tickets/${encodeURIComponent(x.id)}/dispatch`, { assignee: who.value });
        ticketsBoard(res.ok ? notice("✓ " + t("dispatch") + "：" + x.title) : notice(failure(res), false), { q: search.value, category: category.value });
      } }, t("dispatch")));
    }
    if (!["resolved", "closed"].includes(x.status) && !x.supervised) {
      card.append(el("br"), el("button", { class: "secondary", type: "button", "data-action": "supervise", onclick: async () => {
        const note = prompt(t("supervise_note"), lang === "en" ? "Please handle this today." : "请于今日内办结。");
        if (note === null) return;
        const res = await api("POST", `/api/tickets/${encodeURIComponent(x.id)}/supervise`, { note });
        ticketsBoard(res.ok ? notice("✓ " + t("supervise") + "：" + x.title) : notice(failure(res), false), { q: search.value, category: category.value });
      } }, t("supervise")));
    }
    // The ticket's trace, loaded when opened.
    const detail = el("details", { class: "trace" }, el("summary", {}, t("ticket_detail")));
    detail.ontoggle = async () => {
      if (!detail.open || detail.dataset.loaded) return;
      const d = await api("GET", `/api/tickets/${encodeURIComponent(x.id)}`);
      detail.dataset.loaded = "1";
      if (!d.ok) { detail.append(notice(failure(d), false)); return; }
      const photos = (d.data.photos || []).map((n) => el("a", { href: `/api/tickets/${encodeURIComponent(x.id)}/photos/${n}`, target: "_blank", rel: "noopener" },
        el("img", { src: `/api/tickets/${encodeURIComponent(x.id)}/photos/${n}`, alt: `${t("photo")} ${n}`, class: "ticket-photo", loading: "lazy" })));
      detail.append(x.description ? el("p", {}, x.description) : "", photos.length ? el("p", { class: "photos" }, ...photos) : "", el("h3", {}, t("trace")),
        el("ol", { class: "steps" }, ...d.data.steps.map((step) => el("li", {}, `${when(step.at)} · ${step.actor} · ${t("action_names")?.[step.action] || step.action}${step.note ? "：" + step.note : ""}`))));
    };
    card.append(detail);
    return card;
  }
}

// ---- devices and alarms ----

// "3栋2单元501 · 幸福社区第一网格"; a device bound to a grid is labelled by the grid alone.
const place = (location) => (location.label === nodeName(location.tenant) ? location.label : `${location.label} · ${nodeName(location.tenant)}`);

async function devicesView() {
  const draw = screen();
  const [devices, alarms] = await Promise.all([api("GET", "/admin/devices"), api("GET", "/admin/alarms?limit=50")]);
  const section = el("section", { id: "devices" }, el("h1", {}, t("devices_title")));
  const feed = el("table", { id: "alarm-feed" }, el("tr", {}, ...["raised", "severity", "type", "location", "actions"].map((k) => el("th", {}, t(k)))));
  for (const a of alarms.data?.alarms || []) {
    const cls = a.status === "active" ? "bad" : a.status === "acknowledged" ? "warn" : "ok";
    const cell = el("td", {}, el("span", { class: "tag " + cls }, t("alarm_states")[a.status] || a.status));
    if (a.status === "active") {
      cell.append(el("button", { class: "secondary", type: "button", onclick: async () => { await api("POST", `/admin/alarms/${encodeURIComponent(a.id)}/acknowledge`, {}); devicesView(); } }, t("acknowledge")));
    }
    feed.append(el("tr", { "data-alarm": a.id }, el("td", {}, when(a.raised_at)), el("td", {}, el("span", { class: "tag " + (a.severity === "critical" || a.severity === "major" ? "bad" : "warn") }, named("severity_names", a.severity))), el("td", {}, `${a.rule_name} · ${named("device_types", a.device_type)}`), el("td", {}, place(a.location)), cell));
  }
  const list = el("table", { id: "device-list" }, el("tr", {}, ...["devices", "type", "location", "last_seen"].map((k) => el("th", {}, t(k)))),
    ...(devices.data?.devices || []).map((d) => el("tr", { "data-device": d.id },
      el("td", {}, d.name, " ", el("span", { class: "tag " + (d.online ? "ok" : "bad") }, d.online ? t("online") : t("offline"))),
      el("td", {}, named("device_types", d.device_type)), el("td", {}, place(d.location)), el("td", {}, when(d.last_seen_at)))));
  if (!alarms.ok) section.append(notice(failure(alarms), false));
  section.append(el("div", { class: "card" }, el("h2", {}, t("alarms")), feed), el("div", { class: "card" }, el("h2", {}, t("devices")), list));
  draw(section);
  // The feed is live: refresh while this view is open.
  refreshTimer = setTimeout(() => { if (location.hash.startsWith("#/devices")) devicesView(); }, 5000);
}

// ---- audit ----

async function auditView(params) {
  const draw = screen();
  const actor = el("input", { type: "text", id: "audit-actor", value: params.get("actor") || "" });
  const field = el("input", { type: "text", id: "audit-field", value: params.get("field") || "" });
  const query = new URLSearchParams({ limit: "200" });
  if (actor.value) query.set("actor", actor.value);
  if (field.value) query.set("field", field.value);
  const [r, packages] = await Promise.all([api("GET", "/api/audit?" + query), api("GET", "/admin/packages")]);
  if (packages.ok) packagesSeen = packages.data.packages;
  const form = el("form", { class: "card" }, el("label", { class: "inline", for: "audit-actor" }, t("actor"), actor), el("label", { class: "inline", for: "audit-field" }, t("fields"), field),
    el("button", { class: "primary", type: "submit" }, t("search")));
  form.onsubmit = (e) => { e.preventDefault(); location.hash = "#/audit?" + new URLSearchParams({ actor: actor.value, field: field.value }); };
  const section = el("section", { id: "audit" }, el("h1", {}, t("audit_title")), form);
  if (!r.ok) section.append(notice(failure(r), false));
  else section.append(el("div", { class: "card" }, el("table", { id: "audit-entries" }, el("tr", {}, ...["at", "actor", "subject", "fields", "outcome"].map((k) => el("th", {}, t(k)))),
    ...r.data.map((e) => el("tr", {}, el("td", {}, when(e.at)), el("td", { title: e.actor }, partyName(e.actor, e.actor_name)), el("td", { title: e.subject }, partyName(e.subject, e.subject_name)),
      el("td", {}, e.fields.map((f) => t("field_names")?.[f] || f).join(lang === "en" ? ", " : "、")), el("td", {}, named("outcome_names", e.outcome)))))));
  draw(section);
}

// ---- routing ----

// ---- a plugin's page (staff views), sandboxed like in the resident app ----

let openedPage = null;

function pageView(params) {
  const draw = screen();
  const url = params.get("url") || "";
  const route = LinliBridge.pageRoute(url);
  if (!route) { location.hash = "#/installations"; return; }
  openedPage?.bridge.detach();
  const plugin = /^[a-z0-9-]+$/.test(params.get("plugin") || "") ? params.get("plugin") : route.prefix;
  const title = `${plugin} · ${nodeName(route.tenant)}`;
  // Its calls go with the staff member's own session, never the platform admin token: a
  // plugin must not act as the operator.
  const { frame, bridge } = LinliBridge.open({
    url, route, plugin, title,
    context: () => ({ lang, elder: false }),
    navigate: (to) => { location.hash = to ? `#/page?plugin=${encodeURIComponent(plugin)}&url=${encodeURIComponent(to)}` : "#/installations"; },
    // Consent is the resident's to give, in the resident app.
    consent: async () => false,
  });
  openedPage = { frame, bridge };
  draw(el("section", { id: "plugin-page" },
    el("h1", {}, title),
    me.platform && !me.roles.length ? notice(t("page_as_token"), false) : null,
    frame));
}

async function route() {
  applyLanguage();
  clearTimeout(refreshTimer);
  const hash = location.hash || "#/dashboard";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  if (!me && path !== "/login") return loginView();
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", path.startsWith(a.getAttribute("href").slice(1))));
  const parts = path.split("/").map(decodeURIComponent);
  switch (parts[1]) {
    case "login": return loginView();
    case "dashboard": return dashboardView(parts[2]);
    case "catalogue": return catalogueView();
    case "review": return reviewView(parts[2], parts[3]);
    case "installations": return installationsView();
    case "keys": return keysView();
    case "people": return peopleView();
    case "import": return importView();
    case "tickets": return ticketsBoard();
    case "devices": return devicesView();
    case "audit": return auditView(params);
    case "page": return pageView(params);
    default: location.hash = "#/dashboard";
  }
}

document.getElementById("lang").onclick = () => { lang = lang === "en" ? "zh-CN" : "en"; localStorage.setItem("linli.lang", lang); route(); };
document.getElementById("logout").onclick = async () => {
  sessionStorage.removeItem("linli.console.token");
  await api("POST", "/api/auth/logout");
  me = null;
  await loadMe();
  location.hash = "#/login";
  route();
};
window.addEventListener("hashchange", route);
loadMe().then(route);
