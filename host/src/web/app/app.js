// The resident app: one login for every plugin. Sessions live in HttpOnly cookies set by
// /api/auth/login, so this script never holds a token. Routes are hash fragments:
// #/login, #/home, #/open?url=…, #/consent/{plugin}?return=…, #/consents, #/inbox,
// #/tickets, #/ticket/{id}, #/bookings. The elder-friendly mode (适老化: larger type, high
// contrast, large touch targets, a simpler home) is a switch in the header, remembered on
// the device and applied to plugin pages too (through /app/kit.js).
"use strict";

const TEXT = {
  "zh-CN": {
    brand: "邻里", logout: "退出", other: "English",
    login_title: "登录", phone: "手机号", password: "密码", login: "登录",
    login_failed: "登录失败：", home_title: "我的社区服务", no_plugins: "本社区还没有安装服务。",
    open: "打开", back: "← 返回首页", my_consents: "我的授权",
    consent_title: "个人信息授权", consent_asks: "申请使用您的以下信息：", consent_why: "用途：",
    consent_vendor: "提供方：", agree: "同意并继续", decline: "不同意",
    consents_title: "我的授权", no_consents: "您还没有向任何服务授权个人信息。", revoke: "撤回授权",
    revoked: "已撤回", field_names: { "real-name": "实名姓名", "id-number": "身份证号", phone: "手机号", "birth-date": "出生日期", address: "住址", openid: "登录身份", profile: "姓名" },
    inbox: "消息", inbox_title: "我的消息", no_messages: "暂无消息。", unread: "未读", mark_read: "标为已读",
    tickets: "工单", tickets_title: "我的工单", no_tickets: "暂无工单。", ticket_title: "工单详情", due: "办理时限：",
    level: "当前责任层级：", assignee: "处理人：", rate: "评价", rating: "满意度（1–5）", supervised: "督办中",
    status_names: { open: "待派单", dispatched: "已派单", accepted: "处理中", resolved: "已办结", closed: "已关闭" },
    action_names: { created: "创建", dispatched: "派单", accepted: "接单", commented: "备注", resolved: "办结", closed: "关闭", escalated: "超时升级", supervised: "督办" },
    elder_on: "长辈模式", elder_off: "标准模式", bookings: "我的预约", bookings_title: "我的停车预约", no_bookings: "暂无预约。",
    no_parking: "本社区还没有开通共享停车。", book_parking: "预约车位", plate: "车牌",
    booking_status: { booked: "已预约", completed: "已结束", cancelled: "已取消" }, fee: "费用", yuan: "元",
  },
  en: {
    brand: "Linli", logout: "Log out", other: "中文",
    login_title: "Log in", phone: "Mobile number", password: "Password", login: "Log in",
    login_failed: "Login failed: ", home_title: "My community services", no_plugins: "No services are installed for your community yet.",
    open: "Open", back: "← Home", my_consents: "My consents",
    consent_title: "Consent to share personal data", consent_asks: "asks to use:", consent_why: "Why: ",
    consent_vendor: "Provided by: ", agree: "Agree and continue", decline: "Decline",
    consents_title: "My consents", no_consents: "You have not shared personal data with any service.", revoke: "Withdraw",
    revoked: "Withdrawn", field_names: { "real-name": "Real name", "id-number": "ID number", phone: "Phone", "birth-date": "Birth date", address: "Address", openid: "Sign-in identity", profile: "Name" },
    inbox: "Messages", inbox_title: "My messages", no_messages: "No messages.", unread: "unread", mark_read: "Mark read",
    tickets: "Tickets", tickets_title: "My tickets", no_tickets: "No tickets.", ticket_title: "Ticket", due: "Due: ",
    level: "Responsible level: ", assignee: "Assignee: ", rate: "Rate", rating: "Satisfaction (1–5)", supervised: "under supervision",
    status_names: { open: "Waiting for dispatch", dispatched: "Dispatched", accepted: "In progress", resolved: "Resolved", closed: "Closed" },
    action_names: { created: "Created", dispatched: "Dispatched", accepted: "Accepted", commented: "Comment", resolved: "Resolved", closed: "Closed", escalated: "Escalated", supervised: "Supervised" },
    elder_on: "Large & simple", elder_off: "Standard view", bookings: "My bookings", bookings_title: "My parking bookings", no_bookings: "No bookings.",
    no_parking: "Shared parking is not available in your community yet.", book_parking: "Book a space", plate: "Plate",
    booking_status: { booked: "Booked", completed: "Finished", cancelled: "Cancelled" }, fee: "Fee", yuan: "CNY",
  },
};
let lang = localStorage.getItem("linli.lang") || "zh-CN";
let elder = localStorage.getItem("linli.elder") === "1";
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

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick" || k === "onsubmit") node[k] = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) { init.headers["content-type"] = "application/json"; init.body = JSON.stringify(body); }
  const res = await LinliBridge.sessionFetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  return { ok: res.ok, status: res.status, data };
}

function applyLanguage() {
  document.documentElement.lang = lang;
  document.documentElement.classList.toggle("elder", elder);
  document.getElementById("lang").textContent = t("other");
  const toggle = document.getElementById("elder");
  toggle.textContent = elder ? t("elder_off") : t("elder_on");
  toggle.setAttribute("aria-pressed", String(elder));
  document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
}

function loginView(message) {
  const draw = screen();
  const phone = el("input", { type: "tel", id: "phone", autocomplete: "username", inputmode: "numeric" });
  const password = el("input", { type: "password", id: "password", autocomplete: "current-password" });
  const form = el("form", { class: "card", id: "login-form" },
    el("h2", {}, t("login_title")),
    el("label", { for: "phone" }, t("phone")), phone,
    el("label", { for: "password" }, t("password")), password,
    el("p", { class: "error", id: "login-error" }, message || ""),
    el("button", { class: "primary", type: "submit", id: "login-button" }, t("login")));
  form.onsubmit = async (e) => {
    e.preventDefault();
    const r = await api("POST", "/api/auth/login", { phone: phone.value.trim(), password: password.value });
    if (!r.ok) { document.getElementById("login-error").textContent = t("login_failed") + (r.data?.error?.message || r.status); return; }
    await loadMe();
    if (continueSignIn()) return;
    location.hash = sessionStorage.getItem("linli.after-login") || "#/home";
    sessionStorage.removeItem("linli.after-login");
    route();
  };
  draw(form);
}

async function homeView() {
  const draw = screen();
  const r = await api("GET", "/api/app/plugins");
  const list = el("section", { id: "plugins" }, el("h1", {}, t("home_title")));
  if (!r.ok || r.data.length === 0) list.append(el("p", { class: "muted" }, t("no_plugins")));
  if (elder) {
    // The simple home: one big tile per service and for messages, tickets and bookings.
    const inbox = await api("GET", "/api/inbox");
    const unread = inbox.ok && inbox.data.unread > 0 ? ` (${inbox.data.unread})` : "";
    const tile = (label, hash, attrs = {}) => el("button", { class: "tile", type: "button", onclick: () => { location.hash = hash; }, ...attrs }, label);
    const tiles = el("div", { class: "tiles" });
    for (const p of r.data || []) if (p.url) tiles.append(tile(p.name, "#/open?url=" + encodeURIComponent(p.url), { "data-plugin": p.plugin_id }));
    tiles.append(tile(t("inbox") + unread, "#/inbox", { id: "my-inbox" }), tile(t("tickets"), "#/tickets", { id: "my-tickets" }), tile(t("bookings"), "#/bookings", { id: "my-bookings" }));
    list.append(tiles);
    draw(list);
    return;
  }
  for (const p of r.data || []) {
    const card = el("article", { class: "card plugin", "data-plugin": p.plugin_id },
      el("h2", {}, p.name), el("p", { class: "muted" }, `${p.tenant_name} · ${p.description}`));
    if (p.url) card.append(el("button", { class: "primary", type: "button", onclick: () => { location.hash = "#/open?url=" + encodeURIComponent(p.url); } }, t("open")));
    list.append(card);
  }
  const inbox = await api("GET", "/api/inbox");
  const unread = inbox.ok && inbox.data.unread > 0 ? ` (${inbox.data.unread} ${t("unread")})` : "";
  list.append(el("p", {},
    el("a", { href: "#/inbox", id: "my-inbox" }, t("inbox") + unread), " · ",
    el("a", { href: "#/tickets", id: "my-tickets" }, t("tickets")), " · ",
    el("a", { href: "#/bookings", id: "my-bookings" }, t("bookings")), " · ",
    el("a", { href: "#/consents", id: "my-consents" }, t("my_consents"))));
  draw(list);
}

const when = (ms) => new Date(ms).toLocaleString(lang === "en" ? "en" : "zh-CN", { hour12: false });

async function inboxView() {
  const draw = screen();
  const r = await api("GET", "/api/inbox");
  const section = el("section", { id: "inbox" }, el("h1", {}, t("inbox_title")));
  const items = r.ok ? r.data.items : [];
  if (items.length === 0) section.append(el("p", { class: "muted" }, t("no_messages")));
  for (const n of items) {
    const card = el("article", { class: "card" + (n.read_at ? "" : " unread"), "data-source": n.source },
      el("h2", {}, n.title), el("p", {}, n.body), el("p", { class: "muted" }, when(n.created_at)));
    const ticket = /^ticket:(.+)$/.exec(n.source);
    if (ticket) card.append(el("a", { href: "#/ticket/" + encodeURIComponent(ticket[1]) }, t("ticket_title")), " ");
    if (!n.read_at) {
      card.append(el("button", { class: "secondary", type: "button", onclick: async () => { await api("POST", `/api/inbox/${encodeURIComponent(n.id)}/read`); inboxView(); } }, t("mark_read")));
    }
    section.append(card);
  }
  section.append(el("p", {}, el("a", { href: "#/home" }, t("back"))));
  draw(section);
}

async function ticketsView() {
  const draw = screen();
  // Residents see what they reported; staff what is assigned to them and their area.
  const mine = me.kind === "resident" ? "" : "?mine=assigned";
  const [own, area] = await Promise.all([api("GET", "/api/tickets" + mine), me.kind === "resident" ? null : api("GET", "/api/tickets")]);
  const seen = new Set();
  const all = [...(own?.ok ? own.data.tickets : []), ...(area?.ok ? area.data.tickets : [])].filter((x) => !seen.has(x.id) && seen.add(x.id));
  const section = el("section", { id: "tickets" }, el("h1", {}, t("tickets_title")));
  if (all.length === 0) section.append(el("p", { class: "muted" }, t("no_tickets")));
  for (const x of all) {
    section.append(el("article", { class: "card", "data-ticket": x.id },
      el("h2", {}, el("a", { href: "#/ticket/" + encodeURIComponent(x.id) }, x.title)),
      el("p", { class: "muted" }, `${x.category_name} · ${x.location} · ${t("status_names")[x.status] || x.status}${x.supervised ? " · " + t("supervised") : ""}`)));
  }
  section.append(el("p", {}, el("a", { href: "#/home" }, t("back"))));
  draw(section);
}

async function ticketView(id) {
  const draw = screen();
  const r = await api("GET", `/api/tickets/${encodeURIComponent(id)}`);
  if (!r.ok) { draw(el("p", { class: "error" }, r.data?.error?.message || r.status)); return; }
  const x = r.data.ticket;
  const steps = el("ol", { class: "steps" }, ...r.data.steps.map((s) =>
    el("li", {}, `${when(s.at)} · ${s.actor} · ${t("action_names")[s.action] || s.action}${s.note ? "：" + s.note : ""}`)));
  const section = el("section", { class: "card", id: "ticket" },
    el("h1", {}, x.title),
    el("p", {}, `${x.category_name} · ${x.location} · ${t("status_names")[x.status] || x.status}`),
    el("p", { class: "muted" }, t("due") + when(x.due_at) + " · " + t("level") + r.data.level_name + (x.assignee_name ? " · " + t("assignee") + x.assignee_name : "")),
    x.description ? el("p", {}, x.description) : "",
    steps);
  if (x.status === "resolved" && r.data.yours) {
    const rating = el("select", { id: "rating", "aria-label": t("rating") }, ...[5, 4, 3, 2, 1].map((n) => el("option", { value: String(n) }, "★".repeat(n))));
    const rate = el("button", { class: "primary", type: "button", id: "rate" }, t("rate"));
    rate.onclick = async () => { await api("POST", `/api/tickets/${encodeURIComponent(id)}/close`, { rating: Number(rating.value) }); ticketView(id); };
    section.append(el("p", {}, t("rating"), " ", rating, " ", rate));
  }
  draw(section, el("p", {}, el("a", { href: "#/tickets" }, t("back"))));
}

async function bookingsView() {
  const draw = screen();
  const section = el("section", { id: "bookings" }, el("h1", {}, t("bookings_title")));
  const [r, plugins] = await Promise.all([api("GET", "/p/parking/bookings/mine"), api("GET", "/api/app/plugins")]);
  const parking = (plugins.data || []).find((p) => p.plugin_id === "parking");
  if (!parking) section.append(el("p", { class: "muted" }, t("no_parking")));
  else if (!r.ok) section.append(el("p", { class: "error" }, r.data?.error?.message || r.status));
  else if (r.data.length === 0) section.append(el("p", { class: "muted" }, t("no_bookings")));
  for (const b of r.ok ? r.data : []) {
    const fee = b.charged ?? b.quoted_fee;
    section.append(el("article", { class: "card", "data-booking": b.id },
      el("h2", {}, `${b.space_label} · ${b.plate}`),
      el("p", {}, `${b.from.replace("T", " ")} – ${b.to.replace("T", " ")}`),
      el("p", { class: "muted" }, `${t("booking_status")[b.status] || b.status} · ${t("fee")} ${(fee / 100).toFixed(2)} ${t("yuan")}`)));
  }
  if (parking?.url) section.append(el("p", {}, el("button", { class: "primary", type: "button", id: "book-parking", onclick: () => { location.hash = "#/open?url=" + encodeURIComponent(parking.url); } }, t("book_parking"))));
  section.append(el("p", {}, el("a", { href: "#/home" }, t("back"))));
  draw(section);
}

// The plugin page on screen, with its end of the bridge (/app/bridge.js).
let opened = null;

async function openView(params) {
  const draw = screen();
  const url = params.get("url") || "";
  const route = LinliBridge.pageRoute(url);
  if (!route) { location.hash = "#/home"; return; }
  if (opened?.url === url && view.contains(opened.frame)) {
    // The language or the mode changed: the page follows without reloading.
    opened.bridge.update();
    view.querySelector("a.back").textContent = t("back");
    document.title = `${opened.title} · ${t("brand")}`;
    return;
  }
  opened?.bridge.detach();
  const plugins = await api("GET", "/api/app/plugins");
  const entry = (plugins.ok && Array.isArray(plugins.data) ? plugins.data : []).find((p) => p.url?.startsWith(route.base + "/"));
  const plugin = entry?.plugin_id || route.prefix;
  const title = entry?.name || route.prefix;
  const { frame, bridge } = LinliBridge.open({
    url, route, plugin, title,
    context: () => ({ lang, elder }),
    navigate: (to) => { location.hash = to ? "#/open?url=" + encodeURIComponent(to) : "#/home"; },
    consent: () => askConsent(plugin),
  });
  opened = { url, frame, bridge, title };
  draw(el("p", {}, el("a", { href: "#/home", class: "back" }, t("back"))), frame);
  document.title = `${opened.title} · ${t("brand")}`;
}

// The host's consent screen for `plugin`: what it asks for, why, who provides it; the
// person decides. Resolves true when every field it asks for is consented.
function consentCard(req, onAgree, onDecline) {
  const boxes = req.fields.map((f) => el("li", {}, `☑ ${lang === "en" ? f.label_en : f.label_zh}`));
  const agree = el("button", { class: "primary", type: "button", id: "consent-agree", onclick: onAgree }, t("agree"));
  const decline = el("button", { class: "secondary", type: "button", id: "consent-decline", onclick: onDecline }, t("decline"));
  return el("section", { class: "card", id: "consent" },
    el("h1", {}, t("consent_title")),
    el("p", {}, el("strong", {}, req.plugin_name), " ", t("consent_asks")),
    el("ul", { class: "fields" }, ...boxes),
    el("p", {}, t("consent_why"), req.reason),
    el("p", { class: "muted" }, t("consent_vendor"), req.vendor),
    el("p", {}, agree, " ", decline));
}

async function giveConsent(plugin, req, via) {
  const done = await api("POST", `/api/consents/${encodeURIComponent(plugin)}`, { fields: req.fields.map((f) => f.name), via });
  return done.ok;
}

// Asked by a plugin page through the bridge: a dialog over the page, which keeps its state.
async function askConsent(plugin) {
  const r = await api("GET", `/api/consents/${encodeURIComponent(plugin)}`);
  if (!r.ok || r.data.fields.length === 0) return false;
  if (r.data.fields.every((f) => f.consented)) return true;
  document.getElementById("consent-dialog")?.remove();
  return new Promise((resolve) => {
    const dialog = el("dialog", { id: "consent-dialog", "aria-labelledby": "consent-title" });
    const close = (granted) => { dialog.close(); dialog.remove(); resolve(granted); };
    const card = consentCard(r.data, async () => close(await giveConsent(plugin, r.data, "plugin-page")), () => close(false));
    card.querySelector("h1").id = "consent-title";
    dialog.append(card);
    dialog.addEventListener("cancel", () => close(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

// The consent screen as a page of its own (#/consent/{plugin}?return=…), for links.
async function consentView(plugin, params) {
  const draw = screen();
  const r = await api("GET", `/api/consents/${encodeURIComponent(plugin)}`);
  if (!r.ok) { draw(el("p", { class: "error" }, r.data?.error?.message || r.status)); return; }
  const back = params.get("return") || "#/home";
  draw(consentCard(r.data,
    async () => { if (await giveConsent(plugin, r.data, "app")) { location.hash = back.startsWith("#/") ? back : "#/home"; route(); } },
    () => { location.hash = "#/home"; }));
}

async function consentsView() {
  const draw = screen();
  const r = await api("GET", "/api/consents");
  const section = el("section", { id: "consents" }, el("h1", {}, t("consents_title")));
  const bySubject = {};
  const labels = {};
  for (const c of r.data || []) { (bySubject[c.subject] ||= []).push(c.scope); labels[c.subject] = c.label || c.subject; }
  if (Object.keys(bySubject).length === 0) section.append(el("p", { class: "muted" }, t("no_consents")));
  for (const [subject, scopes] of Object.entries(bySubject)) {
    const names = scopes.map((s) => t("field_names")[s] || s).join("、");
    const revoke = el("button", { class: "secondary", type: "button" }, t("revoke"));
    revoke.onclick = async () => { await api("DELETE", `/api/consents/${encodeURIComponent(subject)}`); consentsView(); };
    section.append(el("article", { class: "card", "data-subject": subject }, el("h2", {}, labels[subject]), el("p", {}, names), revoke));
  }
  section.append(el("p", {}, el("a", { href: "#/home" }, t("back"))));
  draw(section);
}

// A vendor's web app signing in through /oidc/authorize sends people here to log in
// first (`?next=…`); once signed in they go back. Only the host's own authorize endpoint
// is a target, so the parameter cannot send anyone elsewhere.
function continueSignIn() {
  const next = new URLSearchParams(location.search).get("next");
  if (!me || !next || !next.startsWith("/oidc/authorize?")) return false;
  location.replace(next);
  return true;
}

async function loadMe() {
  const r = await api("GET", "/api/me");
  me = r.ok ? r.data : null;
  document.getElementById("who").textContent = me ? me.display_name : "";
  document.getElementById("logout").hidden = !me;
}

async function route() {
  applyLanguage();
  document.title = lang === "en" ? "Linli · community services" : "邻里 · 社区服务";
  const hash = location.hash || "#/home";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  if (!me && path !== "/login") {
    sessionStorage.setItem("linli.after-login", hash);
    return loginView();
  }
  if (path === "/login") return loginView();
  if (path === "/home") return homeView();
  if (path === "/open") return openView(params);
  if (path === "/consents") return consentsView();
  if (path === "/inbox") return inboxView();
  if (path === "/tickets") return ticketsView();
  if (path === "/bookings") return bookingsView();
  const ticket = path.match(/^\/ticket\/([0-9a-f-]+)$/);
  if (ticket) return ticketView(ticket[1]);
  const consent = path.match(/^\/consent\/([a-z0-9-]+)$/);
  if (consent) return consentView(consent[1], params);
  location.hash = "#/home";
}

document.getElementById("elder").onclick = () => { elder = !elder; localStorage.setItem("linli.elder", elder ? "1" : "0"); route(); };
document.getElementById("lang").onclick = () => { lang = lang === "en" ? "zh-CN" : "en"; localStorage.setItem("linli.lang", lang); route(); };
document.getElementById("logout").onclick = async () => { await api("POST", "/api/auth/logout"); me = null; location.hash = "#/login"; route(); };
window.addEventListener("hashchange", route);
// `fresh` (prompt=login): log in again even with a session.
loadMe().then(() => (new URLSearchParams(location.search).has("fresh") ? false : continueSignIn()) || route());
