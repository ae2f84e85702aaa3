// The resident app: one login for every plugin. Sessions live in HttpOnly cookies set by
// /api/auth/login, so this script never holds a token. Routes are hash fragments:
// #/login, #/home, #/services, #/inbox, #/me, #/open?url=…, #/consent/{plugin}?return=…,
// #/consents, #/tickets, #/ticket/{id}, #/bookings, #/report (报事报修), #/help (一键求助),
// #/contacts (紧急联系人). The tab bar (首页 · 办事 · 消息 · 我的)
// is on every page once signed in; logging out is under 我的. The elder-friendly mode (适老化: larger type, high
// contrast, every control at least 60 px, a simpler home) is a switch in the header,
// remembered on the device and applied to plugin pages too (through /app/kit.js).
"use strict";

// The words come from the shared catalogue (messages/zh-CN.js, messages/en.js).
const TEXT = Object.fromEntries(["zh-CN", "en"].map((l) => [l, LinliMessages[l].app]));
let lang = localStorage.getItem("linli.lang") === "en" ? "en" : "zh-CN";
let elder = localStorage.getItem("linli.elder") === "1";
const t = (key) => TEXT[lang][key] ?? TEXT["zh-CN"][key] ?? key;
const view = document.getElementById("view");
let me = null;
let unread = 0;

// Views load what they show before they draw it; one whose route was left meanwhile (the
// person moved on) must not draw over the next. Each view claims the screen when it starts;
// drawing sets the document's title from the view's heading and moves the focus there, so a
// screen reader announces the new page.
let claims = 0;
function screen() {
  const mine = ++claims;
  return (...nodes) => {
    if (mine !== claims) return;
    view.replaceChildren(...nodes);
    const heading = view.querySelector("h1");
    document.title = heading ? `${heading.textContent} · ${t("brand")}` : t("app_title");
    if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
    window.scrollTo(0, 0);
  };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node[k] = v; else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== undefined && c !== null && c !== "") node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// The app's icons, drawn here: a plugin names one (manifest `[app] icon`) and ships no image.
const ICON_PATHS = {
  care: "M12 21s-7-4.4-7-10a4 4 0 0 1 7-2.6A4 4 0 0 1 19 11c0 5.6-7 10-7 10z",
  parking: "M6 21V3h7a5 5 0 0 1 0 10H6",
  legal: "M12 3v18M5 21h14M4 8h16M7 8l-3 7h6zM17 8l-3 7h6z",
  time: "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18M12 7v5l3 3",
  repair: "M14 6a4 4 0 0 0 5 5l-9 9a2 2 0 0 1-3-3l9-9a4 4 0 0 0-2-2z",
  home: "M3 11l9-8 9 8M5 9v12h14V9M10 21v-6h4v6",
  health: "M9 3h6v6h6v6h-6v6H9v-6H3V9h6z",
  chat: "M4 5h16v11H9l-5 4z",
  star: "M12 3l2.8 5.8 6.2.9-4.5 4.4 1 6.3L12 17.4 6.5 20.4l1-6.3L3 9.7l6.2-.9z",
  bell: "M6 17V11a6 6 0 0 1 12 0v6l2 2H4zM10 21h4",
  tickets: "M5 3h14v18H5zM9 8h6M9 12h6M9 16h4",
  bookings: "M4 5h16v16H4zM4 10h16M9 3v4M15 3v4",
  inbox: "M4 5h16v14H4zM4 6l8 7 8-7",
  me: "M12 3a4 4 0 1 0 0 8a4 4 0 1 0 0-8M4 21c1-5 15-5 16 0",
  services: "M4 4h7v7H4zM13 4h7v7h-7zM4 13h7v7H4zM13 13h7v7h-7z",
  consent: "M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6zM8.5 12l2.5 2.5 4.5-5",
  search: "M10 3a7 7 0 1 0 0 14a7 7 0 1 0 0-14M15 15l6 6",
  report: "M12 3l9 16H3zM12 10v4M12 17v.5",
  help: "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18M12 7v6M12 16v.5",
  phone: "M5 4h4l2 5-2.5 1.5a11 11 0 0 0 5 5L15 13l5 2v4a2 2 0 0 1-2 2A16 16 0 0 1 3 6a2 2 0 0 1 2-2",
  contacts: "M9 4a3.5 3.5 0 1 0 0 7a3.5 3.5 0 1 0 0-7M2 20c.7-4.5 13.3-4.5 14 0M17 8h5M19.5 5.5v5",
};
function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICON_PATHS[name] || ICON_PATHS.services);
  svg.append(path);
  return svg;
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) { init.headers["content-type"] = "application/json"; init.body = JSON.stringify(body); }
  let res;
  try { res = await LinliBridge.sessionFetch(path, init); } catch { return { ok: false, status: 0, data: { error: { code: "network" } } }; }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  return { ok: res.ok, status: res.status, data };
}

// What went wrong, in the person's language (messages/say.js); the host's English message is
// for developers and stays out of the screen.
const problem = (r) => LinliMessages.failure(lang, r);
const problemLine = (r) => el("p", { class: "error", role: "alert", "data-code": LinliMessages.codeOf(r) }, problem(r));

// A plugin's name and description in the person's language.
const nameOf = (p) => (lang === "en" && p.name_en) || p.name;
const descriptionOf = (p) => (lang === "en" && p.description_en) || p.description;

// Which services this person opens most, counted on this device only.
function usage() {
  try { return JSON.parse(localStorage.getItem("linli.used") || "{}") || {}; } catch { return {}; }
}
function countUse(plugin) {
  const used = usage();
  used[plugin] = (used[plugin] || 0) + 1;
  localStorage.setItem("linli.used", JSON.stringify(used));
}

let pluginsLoaded = null;
async function plugins() {
  const r = await api("GET", "/api/app/plugins");
  pluginsLoaded = r.ok && Array.isArray(r.data) ? r.data : [];
  return pluginsLoaded;
}
const openHash = (p) => "#/open?url=" + encodeURIComponent(p.url);

function applyLanguage() {
  document.documentElement.lang = lang;
  document.documentElement.classList.toggle("elder", elder);
  const other = document.getElementById("lang");
  other.textContent = t("other");
  other.lang = lang === "en" ? "zh-CN" : "en";
  const toggle = document.getElementById("elder");
  toggle.textContent = elder ? t("elder_off") : t("elder_on");
  toggle.setAttribute("aria-pressed", String(elder));
  document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
}

// The tab bar: where the person is, and how many messages are unread.
const TABS = [["home", "#/home", "tab-home"], ["services", "#/services", "tab-services"], ["inbox", "#/inbox", "my-inbox"], ["me", "#/me", "tab-me"]];
function drawTabs(current) {
  const nav = document.getElementById("tabs");
  nav.hidden = !me;
  nav.setAttribute("aria-label", t("tabs_label"));
  nav.replaceChildren(...TABS.map(([name, href, id]) => {
    const link = el("a", { href, id, "data-tab": name, "aria-current": name === current ? "page" : undefined }, icon(name), el("span", {}, t("tabs")[name]));
    if (name === "inbox" && unread > 0) link.append(el("span", { class: "badge" }, el("span", { "aria-hidden": "true" }, String(unread)), el("span", { class: "sr" }, t("unread")(unread))));
    return link;
  }));
}
async function refreshUnread() {
  const r = await api("GET", "/api/inbox");
  unread = r.ok ? r.data.unread : 0;
  return r;
}

const backLink = (href = "#/home", label = t("back_home")) => el("a", { href, class: "back" }, el("span", { "aria-hidden": "true" }, "← "), label);

function loginView(message) {
  const draw = screen();
  const phone = el("input", { type: "tel", id: "phone", autocomplete: "username", inputmode: "numeric", required: true });
  const password = el("input", { type: "password", id: "password", autocomplete: "current-password", required: true });
  const error = el("p", { class: "error", id: "login-error", role: "alert" }, message || "");
  const form = el("form", { class: "card", id: "login-form" },
    el("h1", {}, t("login_title")),
    el("label", { for: "phone" }, t("phone")), phone,
    el("label", { for: "password" }, t("password")), password,
    error,
    el("button", { class: "primary", type: "submit", id: "login-button" }, t("login")));
  form.onsubmit = async (e) => {
    e.preventDefault();
    const r = await api("POST", "/api/auth/login", { phone: phone.value.trim(), password: password.value });
    if (!r.ok) { error.textContent = t("login_failed") + problem(r); error.dataset.code = LinliMessages.codeOf(r); return; }
    await loadMe();
    if (continueSignIn()) return;
    location.hash = sessionStorage.getItem("linli.after-login") || "#/home";
    sessionStorage.removeItem("linli.after-login");
    route();
  };
  draw(form);
}

// A service on the home: its icon and name; opening it counts for "used most".
function serviceButton(p, cls = "service") {
  return el("button", { class: cls, type: "button", "data-plugin": p.plugin_id, onclick: () => { location.hash = openHash(p); } }, icon(p.icon), el("span", { class: "label" }, nameOf(p)));
}

function grouped(list) {
  const order = [...Object.keys(TEXT["zh-CN"].categories)];
  const groups = new Map(order.map((c) => [c, []]));
  for (const p of list) groups.get(order.includes(p.category) ? p.category : "other").push(p);
  return [...groups].filter(([, items]) => items.length > 0);
}

// What is new for her since she last looked: unread messages, and her tickets that moved in
// the last week (newest first, a few of each).
const WEEK_MS = 7 * 24 * 3600 * 1000;
function newsFor(inbox, tickets) {
  const items = [];
  for (const n of (inbox?.ok ? inbox.data.items : []).filter((x) => !x.read_at).slice(0, 3)) {
    items.push(el("li", {}, el("a", { href: "#/inbox", class: "button-link news" }, icon("inbox"), el("span", {}, t("news_message")(n.title)))));
  }
  const moved = (tickets?.ok ? tickets.data.tickets : []).filter((x) => x.status !== "closed" && Date.now() - x.updated_at < WEEK_MS)
    .sort((a, b) => b.updated_at - a.updated_at).slice(0, 2);
  for (const x of moved) {
    items.push(el("li", {}, el("a", { href: "#/ticket/" + encodeURIComponent(x.id), class: "button-link news" }, icon("tickets"), el("span", {}, t("news_ticket")(x.title, t("status_names")[x.status] || x.status)))));
  }
  if (items.length === 0) return "";
  return el("section", { id: "whats-new", "aria-labelledby": "news-title" }, el("h2", { id: "news-title" }, t("news")), el("ul", { class: "news-list" }, ...items));
}

async function homeView() {
  const draw = screen();
  const [list, inbox, tickets] = await Promise.all([plugins(), refreshUnread(), me?.kind === "resident" ? api("GET", "/api/tickets?limit=20") : null]);
  const news = newsFor(inbox, tickets);
  drawTabs("home");
  const openable = list.filter((p) => p.url);
  const section = el("section", { id: "plugins" }, el("h1", {}, me ? t("hello")(me.display_name) : t("home_title")));
  if (openable.length === 0) section.append(el("p", { class: "muted" }, t("no_plugins")));
  if (elder) {
    // The simple home: one big tile per service, then the person's own things.
    const tile = (label, hash, attrs = {}, name = "services") => el("button", { class: "tile", type: "button", onclick: () => { location.hash = hash; }, ...attrs }, icon(name), el("span", {}, label));
    const tiles = el("div", { class: "tiles" });
    if (me.kind === "resident") tiles.append(tile(t("help"), "#/help", { id: "help-button", class: "tile urgent" }, "help"));
    for (const p of byUse(openable)) tiles.append(tile(nameOf(p), openHash(p), { "data-plugin": p.plugin_id }, p.icon));
    tiles.append(
      tile(t("report"), "#/report", { id: "report-problem" }, "report"),
      tile(t("inbox") + (unread > 0 ? ` · ${t("unread")(unread)}` : ""), "#/inbox", { id: "elder-inbox" }, "inbox"),
      tile(t("tickets"), "#/tickets", { id: "my-tickets" }, "tickets"),
      tile(t("bookings"), "#/bookings", { id: "my-bookings" }, "bookings"));
    section.append(tiles, news);
    draw(section);
    return;
  }
  const search = el("input", { type: "search", id: "search", autocomplete: "off", "aria-label": t("search"), placeholder: t("search") });
  const none = el("p", { class: "muted", id: "search-none", hidden: true }, t("search_none"));
  const body = el("div", { id: "service-groups" });
  const used = usage();
  const frequent = byUse(openable).filter((p) => used[p.plugin_id] > 0).slice(0, 4);
  if (frequent.length > 0) body.append(group("frequent", t("frequent"), frequent));
  for (const [category, items] of grouped(openable)) body.append(group(category, t("categories")[category], items));
  search.oninput = () => {
    const q = search.value.trim().toLowerCase();
    let shown = 0;
    for (const button of body.querySelectorAll("button.service")) {
      const p = openable.find((x) => x.plugin_id === button.dataset.plugin);
      const match = !q || [p.name, p.name_en, p.description, p.description_en].some((s) => s && s.toLowerCase().includes(q));
      button.hidden = !match;
      if (match) shown += 1;
    }
    for (const g of body.querySelectorAll(".group")) g.hidden = !g.querySelector("button.service:not([hidden])");
    none.hidden = shown > 0;
  };
  const quick = el("div", { class: "quick" },
    me.kind === "resident" ? el("a", { href: "#/help", id: "help-button", class: "quick-action urgent" }, icon("help"), el("span", {}, t("help"))) : "",
    el("a", { href: "#/report", id: "report-problem", class: "quick-action" }, icon("report"), el("span", {}, t("report"))));
  section.append(quick, news, el("div", { class: "search" }, icon("search"), search), none, body);
  draw(section);
}

function group(id, title, items) {
  return el("section", { class: "group", "data-group": id, "aria-labelledby": `group-${id}` },
    el("h2", { id: `group-${id}` }, title),
    el("div", { class: "grid" }, ...items.map((p) => serviceButton(p))));
}

const byUse = (list) => { const used = usage(); return [...list].sort((a, b) => (used[b.plugin_id] || 0) - (used[a.plugin_id] || 0)); };

// 办事: the person's own requests, then every service with what it does.
async function servicesView() {
  const draw = screen();
  const [list] = await Promise.all([plugins(), refreshUnread()]);
  drawTabs("services");
  const mine = el("ul", { class: "menu" },
    el("li", {}, el("a", { href: "#/report" }, icon("report"), el("span", {}, t("report")))),
    el("li", {}, el("a", { href: "#/tickets", id: "my-tickets" }, icon("tickets"), el("span", {}, t("tickets")))),
    el("li", {}, el("a", { href: "#/bookings", id: "my-bookings" }, icon("bookings"), el("span", {}, t("bookings")))));
  const all = el("div", { class: "service-list" });
  for (const p of list.filter((x) => x.url)) {
    all.append(el("article", { class: "card plugin", "data-plugin": p.plugin_id },
      el("h3", {}, icon(p.icon), el("span", {}, nameOf(p))),
      el("p", {}, descriptionOf(p)),
      el("p", { class: "muted" }, t("serving")(p.tenant_name)),
      el("button", { class: "primary", type: "button", onclick: () => { location.hash = openHash(p); } }, t("open"))));
  }
  draw(el("section", { id: "services" }, el("h1", {}, t("services_title")),
    el("h2", {}, t("my_affairs")), mine,
    el("h2", {}, t("all_services")), all));
}

const when = (ms) => new Date(ms).toLocaleString(lang === "en" ? "en" : "zh-CN", { hour12: false });
// Names in a sentence: 王小红、李师傅 / Wang, Li.
const listOf = (names) => names.join(lang === "en" ? ", " : "、");

async function inboxView() {
  const draw = screen();
  const r = await refreshUnread();
  drawTabs("inbox");
  const section = el("section", { id: "inbox" }, el("h1", {}, t("inbox_title")));
  if (!r.ok) section.append(problemLine(r));
  const items = r.ok ? r.data.items : [];
  if (r.ok && items.length === 0) section.append(el("p", { class: "muted" }, t("no_messages")));
  for (const n of items) {
    const card = el("article", { class: "card" + (n.read_at ? "" : " unread"), "data-source": n.source },
      el("h2", {}, n.title), el("p", {}, n.body), el("p", { class: "muted" }, when(n.created_at)));
    const actions = el("p", { class: "actions" });
    const ticket = /^ticket:(.+)$/.exec(n.source);
    if (ticket) actions.append(el("a", { href: "#/ticket/" + encodeURIComponent(ticket[1]), class: "button-link" }, t("see_ticket")));
    if (!n.read_at) {
      actions.append(el("button", { class: "secondary", type: "button", onclick: async () => { await api("POST", `/api/inbox/${encodeURIComponent(n.id)}/read`); inboxView(); } }, t("mark_read")));
    }
    if (actions.childNodes.length) card.append(actions);
    section.append(card);
  }
  draw(section);
}

// 我的: who is signed in, their consents, the display and the language.
async function meView() {
  const draw = screen();
  await refreshUnread();
  drawTabs("me");
  const elderSwitch = el("button", { class: "secondary", type: "button", id: "elder-switch", "aria-pressed": String(elder), onclick: () => document.getElementById("elder").click() }, elder ? t("elder_off") : t("elder_on"));
  const langSwitch = el("button", { class: "secondary", type: "button", id: "lang-switch", lang: lang === "en" ? "zh-CN" : "en", onclick: () => document.getElementById("lang").click() }, t("other"));
  draw(el("section", { id: "me" }, el("h1", {}, t("me_title")),
    el("div", { class: "card" }, el("h2", {}, me.display_name), el("p", { class: "muted" }, me.phone)),
    el("ul", { class: "menu" },
      me.kind === "resident" ? el("li", {}, el("a", { href: "#/contacts", id: "my-contacts" }, icon("contacts"), el("span", {}, t("contacts")))) : "",
      el("li", {}, el("a", { href: "#/consents", id: "my-consents" }, icon("consent"), el("span", {}, t("my_consents")))),
      el("li", {}, el("a", { href: "#/tickets" }, icon("tickets"), el("span", {}, t("tickets")))),
      el("li", {}, el("a", { href: "#/bookings" }, icon("bookings"), el("span", {}, t("bookings"))))),
    el("div", { class: "card settings" },
      el("p", {}, el("span", { class: "setting" }, t("display")), elderSwitch),
      el("p", {}, el("span", { class: "setting" }, t("language")), langSwitch)),
    el("p", {}, el("button", { class: "secondary", type: "button", id: "logout", onclick: logout }, t("logout")))));
}

async function ticketsView() {
  const draw = screen();
  // Residents see what they reported; staff what is assigned to them and their area.
  const mine = me.kind === "resident" ? "" : "?mine=assigned";
  const [own, area] = await Promise.all([api("GET", "/api/tickets" + mine), me.kind === "resident" ? null : api("GET", "/api/tickets"), refreshUnread()]);
  drawTabs("services");
  const seen = new Set();
  const all = [...(own?.ok ? own.data.tickets : []), ...(area?.ok ? area.data.tickets : [])].filter((x) => !seen.has(x.id) && seen.add(x.id));
  const section = el("section", { id: "tickets" }, backLink("#/services", t("back")), el("h1", {}, t("tickets_title")));
  if (!own.ok) section.append(problemLine(own));
  else if (all.length === 0) section.append(el("p", { class: "muted" }, t("no_tickets")));
  for (const x of all) {
    section.append(el("article", { class: "card", "data-ticket": x.id },
      el("h2", {}, el("a", { href: "#/ticket/" + encodeURIComponent(x.id) }, x.title)),
      el("p", { class: "muted" }, `${LinliMessages.categoryName(lang, x)} · ${x.location} · ${t("status_names")[x.status] || x.status}${x.supervised ? " · " + t("supervised") : ""}`)));
  }
  draw(section);
}

async function ticketView(id) {
  const draw = screen();
  const r = await api("GET", `/api/tickets/${encodeURIComponent(id)}`);
  drawTabs("services");
  if (!r.ok) { draw(backLink("#/tickets", t("back")), el("h1", {}, t("ticket_title")), problemLine(r)); return; }
  const x = r.data.ticket;
  const steps = el("ol", { class: "steps" }, ...r.data.steps.map((s) =>
    el("li", {}, `${when(s.at)} · ${s.actor} · ${t("action_names")[s.action] || s.action}${s.note ? "：" + s.note : ""}`)));
  const section = el("section", { class: "card", id: "ticket" },
    el("h1", {}, x.title),
    el("p", {}, `${LinliMessages.categoryName(lang, x)} · ${x.location} · ${t("status_names")[x.status] || x.status}`),
    el("p", { class: "muted" }, t("due") + when(x.due_at) + " · " + t("level") + r.data.level_name + (x.assignee_name ? " · " + t("assignee") + x.assignee_name : "")),
    x.description ? el("p", {}, x.description) : "",
    photosOf(x, r.data.photos),
    steps);
  if (x.status === "resolved" && r.data.yours) {
    const rating = el("select", { id: "rating" }, ...[5, 4, 3, 2, 1].map((n) => el("option", { value: String(n) }, t("stars")(n))));
    const rate = el("button", { class: "primary", type: "button", id: "rate" }, t("rate"));
    rate.onclick = async () => { await api("POST", `/api/tickets/${encodeURIComponent(id)}/close`, { rating: Number(rating.value) }); ticketView(id); };
    section.append(el("p", { class: "rate" }, el("label", { for: "rating" }, t("rating")), rating, rate));
  }
  const left = sessionStorage.getItem("linli.notice");
  sessionStorage.removeItem("linli.notice");
  draw(backLink("#/tickets", t("back")), left ? el("p", { class: "error", role: "alert" }, left) : "", section);
}

const MAX_PHOTOS = 4;

function photosOf(ticket, numbers) {
  if (!numbers?.length) return "";
  return el("div", { class: "photos", role: "group", "aria-label": t("photos") }, ...numbers.map((n) =>
    el("a", { href: `/api/tickets/${encodeURIComponent(ticket.id)}/photos/${n}`, target: "_blank", rel: "noopener" },
      el("img", { src: `/api/tickets/${encodeURIComponent(ticket.id)}/photos/${n}`, alt: `${t("photos")} ${n} · ${ticket.title}`, loading: "lazy" }))));
}

// A phone's photo is several megabytes; it is sent as a JPEG of at most 1600 px, which shows
// a broken light as well and fits the host's limit.
async function shrink(file) {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve, reject) => canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("encode"))), "image/jpeg", 0.82));
}

// 报事报修: what, where, a photo or two; the ticket goes to the community's board. Kinds of
// report a service of her community takes (its `[[app.reports]]`, e.g. 物业维修 for the
// property service) open that service's page instead, where its own form follows them up.
async function reportView() {
  const draw = screen();
  const [categories, services] = await Promise.all([api("GET", "/api/tickets/categories"), plugins(), refreshUnread()]);
  drawTabs("services");
  const handovers = services.filter((p) => p.url && p.reports?.length).flatMap((p) => p.reports.map((report) => ({ plugin: p, report })));
  const standsIn = (category) => handovers.find((h) => h.report.replaces === category.id);
  const handoverOption = (h) => el("option", { value: "plugin:" + handovers.indexOf(h) }, t("report_by")((lang === "en" && h.report.name_en) || h.report.name, nameOf(h.plugin)));
  // Nothing chosen for her: a wrong default would send a broken light to the alarm desk.
  const category = el("select", { id: "report-category", required: true }, el("option", { value: "" }, t("choose")),
    ...(categories.ok ? categories.data : []).filter((c) => c.id !== "device-alarm").map((c) => (standsIn(c) ? handoverOption(standsIn(c)) : el("option", { value: c.id }, LinliMessages.categoryName(lang, c)))),
    ...handovers.filter((h) => !h.report.replaces || !(categories.data || []).some((c) => c.id === h.report.replaces)).map(handoverOption));
  const title = el("input", { type: "text", id: "report-title-input", required: true, maxlength: "100", placeholder: t("report_what_hint") });
  const description = el("textarea", { id: "report-description", rows: "3", maxlength: "4000" });
  const where = el("input", { type: "text", id: "report-where", maxlength: "200", placeholder: t("report_where_hint") });
  const photos = el("input", { type: "file", id: "report-photos", accept: "image/*", capture: "environment", multiple: true });
  const status = el("div", { id: "report-status", role: "status" });
  const send = el("button", { class: "primary", type: "submit", id: "report-send" }, t("report_send"));
  const fields = el("div", { id: "report-fields" },
    el("label", { for: "report-title-input" }, t("report_what")), title,
    el("label", { for: "report-where" }, t("report_where")), where,
    el("label", { for: "report-description" }, t("report_details")), description,
    el("label", { for: "report-photos" }, t("report_photos")(MAX_PHOTOS)), photos,
    status, send);
  const handover = el("div", { id: "report-handover", hidden: true });
  category.onchange = () => {
    const chosen = category.value.startsWith("plugin:") ? handovers[Number(category.value.slice(7))] : null;
    fields.hidden = Boolean(chosen);
    handover.hidden = !chosen;
    title.required = !chosen;
    if (!chosen) return;
    const service = nameOf(chosen.plugin);
    const url = `${chosen.plugin.url}?report=${encodeURIComponent(chosen.report.id)}`;
    handover.replaceChildren(el("p", {}, t("report_handover")(service)),
      el("a", { href: "#/open?url=" + encodeURIComponent(url), class: "button-link primary", id: "report-go" }, t("report_go")(service)));
  };
  const form = el("form", { class: "card", id: "report-form" },
    el("label", { for: "report-category" }, t("report_category")), category, fields, handover);
  if (!categories.ok) form.prepend(problemLine(categories));
  form.onsubmit = async (e) => {
    e.preventDefault();
    if (category.value.startsWith("plugin:")) return;
    send.disabled = true;
    status.textContent = t("report_sending");
    const r = await api("POST", "/api/tickets", { category: category.value, title: title.value.trim(), description: description.value.trim(), location: where.value.trim() });
    if (!r.ok) { send.disabled = false; status.replaceChildren(problemLine(r)); return; }
    const failed = [];
    for (const file of [...photos.files].slice(0, MAX_PHOTOS)) {
      try {
        const res = await LinliBridge.sessionFetch(`/api/tickets/${encodeURIComponent(r.data.id)}/photos`, { method: "POST", headers: { "content-type": "image/jpeg" }, body: await shrink(file) });
        if (!res.ok) failed.push(file.name);
      } catch {
        failed.push(file.name);
      }
    }
    if (failed.length) sessionStorage.setItem("linli.notice", t("report_photo_failed") + listOf(failed));
    location.hash = "#/ticket/" + encodeURIComponent(r.data.id);
  };
  draw(el("section", { id: "report" }, backLink("#/services", t("back")), el("h1", {}, t("report_title")), form));
}

// 一键求助: what pressing will do, one confirmation (a pocket press must not alarm the
// community), then what was done and the number to call.
async function helpView() {
  const draw = screen();
  const [plan] = await Promise.all([api("GET", "/api/help"), refreshUnread()]);
  drawTabs("home");
  const section = el("section", { id: "help" }, backLink(), el("h1", {}, t("help_title")));
  if (!plan.ok) { draw(section, problemLine(plan)); return; }
  const { duty_line: line, contacts } = plan.data;
  const names = contacts.map((c) => c.relation ? `${c.name}（${c.relation}）` : c.name);
  section.append(el("div", { class: "card", id: "help-plan" },
    el("p", {}, t("help_will")),
    el("ul", {}, el("li", {}, t("help_ticket")),
      el("li", {}, names.length ? t("help_texts")(listOf(names)) : t("help_no_contacts")),
      line ? el("li", {}, t("help_line")(line.phone, line.tenant_name)) : "")));
  const status = el("div", { id: "help-status", role: "status" });
  const confirm = el("button", { class: "primary urgent", type: "button", id: "help-confirm" }, t("help_confirm"));
  const cancel = el("a", { href: "#/home", class: "button-link", id: "help-cancel" }, t("help_cancel"));
  confirm.onclick = async () => {
    confirm.disabled = true;
    status.textContent = t("help_sending");
    const r = await api("POST", "/api/help");
    if (!r.ok) { confirm.disabled = false; status.replaceChildren(problemLine(r)); return; }
    helpDone(r.data);
  };
  section.append(status, el("p", { class: "actions" }, confirm, cancel));
  draw(section);
}

function helpDone(answer) {
  const draw = screen();
  const line = answer.duty_line;
  draw(el("section", { id: "help-result" }, backLink(),
    el("h1", {}, answer.repeated ? t("help_repeated") : t("help_done")),
    el("div", { class: "card" },
      answer.texted.length ? el("p", { id: "help-texted" }, t("help_texted")(listOf(answer.texted))) : "",
      answer.not_texted.length ? el("p", { class: "error" }, t("help_not_texted")(listOf(answer.not_texted))) : "",
      el("p", {}, el("a", { href: "#/ticket/" + encodeURIComponent(answer.ticket.id), id: "help-ticket", class: "button-link" }, t("help_see")))),
    line ? el("p", {}, el("a", { href: "tel:" + line.phone.replace(/[^0-9+]/g, ""), class: "button-link urgent", id: "help-call" }, icon("phone"), el("span", {}, t("help_call")(line.phone)))) : ""));
}

// 我的 · 紧急联系人: the people 一键求助 and care alarms text, kept with her base record.
async function contactsView(message) {
  const draw = screen();
  const r = await api("GET", "/api/me/contacts");
  drawTabs("me");
  const section = el("section", { id: "contacts" }, backLink("#/me", t("back")), el("h1", {}, t("contacts_title")), el("p", { class: "muted" }, t("contacts_note")));
  if (message) section.append(el("p", { class: "ok", role: "status" }, message));
  if (!r.ok) { draw(section, problemLine(r)); return; }
  const list = r.data.contacts;
  const save = async (next) => {
    const done = await api("PUT", "/api/me/contacts", { contacts: next });
    if (done.ok) contactsView(t("saved")); else status.replaceChildren(problemLine(done));
  };
  const status = el("div", { id: "contacts-status", role: "status" });
  if (list.length === 0) section.append(el("p", { class: "muted" }, t("no_contacts_yet")));
  const items = el("ul", { class: "menu", id: "contact-list" }, ...list.map((c) => el("li", { class: "contact" },
    el("span", {}, `${c.name}${c.relation ? `（${c.relation}）` : ""} ${c.phone}`),
    el("button", { class: "secondary", type: "button", onclick: () => save(list.filter((x) => x.phone !== c.phone)) }, t("contact_remove")))));
  const name = el("input", { type: "text", id: "contact-name", required: true, maxlength: "40", autocomplete: "name" });
  const relation = el("input", { type: "text", id: "contact-relation", maxlength: "20" });
  const phone = el("input", { type: "tel", id: "contact-phone", required: true, maxlength: "11", inputmode: "numeric", autocomplete: "tel" });
  const form = el("form", { class: "card", id: "contact-form" },
    el("label", { for: "contact-name" }, t("contact_name")), name,
    el("label", { for: "contact-relation" }, t("contact_relation")), relation,
    el("label", { for: "contact-phone" }, t("contact_phone")), phone,
    el("button", { class: "primary", type: "submit", id: "contact-add" }, t("contact_add")));
  form.onsubmit = (e) => { e.preventDefault(); save([...list, { name: name.value.trim(), relation: relation.value.trim(), phone: phone.value.trim() }]); };
  if (list.length < 5) section.append(items, form, status); else section.append(items, status);
  draw(section);
}

async function bookingsView() {
  const draw = screen();
  const [r, list] = await Promise.all([api("GET", "/p/parking/bookings/mine"), plugins(), refreshUnread()]);
  drawTabs("services");
  const section = el("section", { id: "bookings" }, backLink("#/services", t("back")), el("h1", {}, t("bookings_title")));
  const parking = list.find((p) => p.plugin_id === "parking");
  if (!parking) section.append(el("p", { class: "muted" }, t("no_parking")));
  else if (!r.ok) section.append(problemLine(r));
  else if (r.data.length === 0) section.append(el("p", { class: "muted" }, t("no_bookings")));
  for (const b of r.ok && Array.isArray(r.data) ? r.data : []) {
    const fee = b.charged ?? b.quoted_fee;
    section.append(el("article", { class: "card", "data-booking": b.id },
      el("h2", {}, `${b.space_label} · ${b.plate}`),
      el("p", {}, `${b.from.replace("T", " ")} – ${b.to.replace("T", " ")}`),
      el("p", { class: "muted" }, `${t("booking_status")[b.status] || b.status} · ${t("fee")} ${(fee / 100).toFixed(2)} ${t("yuan")}`)));
  }
  if (parking?.url) section.append(el("p", {}, el("button", { class: "primary", type: "button", id: "book-parking", onclick: () => { location.hash = openHash(parking); } }, t("book_parking"))));
  draw(section);
}

// The plugin page on screen, with its end of the bridge (/app/bridge.js).
let opened = null;

async function openView(params) {
  const url = params.get("url") || "";
  const route = LinliBridge.pageRoute(url);
  if (!route) { location.hash = "#/home"; return; }
  if (opened?.url === url && view.contains(opened.frame)) {
    // The language or the mode changed: the page follows without reloading.
    opened.bridge.update();
    const entry = pluginsLoaded?.find((p) => p.plugin_id === opened.plugin);
    if (entry) { opened.frame.title = nameOf(entry); view.querySelector("h1").textContent = nameOf(entry); }
    view.querySelector("a.back").replaceWith(backLink());
    document.title = `${view.querySelector("h1").textContent} · ${t("brand")}`;
    drawTabs(null);
    return;
  }
  const draw = screen();
  opened?.bridge.detach();
  const list = await plugins();
  const entry = list.find((p) => p.url?.startsWith(route.base + "/"));
  const plugin = entry?.plugin_id || route.prefix;
  const title = entry ? nameOf(entry) : route.prefix;
  if (entry) countUse(plugin);
  const { frame, bridge } = LinliBridge.open({
    url, route, plugin, title,
    context: () => ({ lang, elder }),
    navigate: (to) => { location.hash = to ? "#/open?url=" + encodeURIComponent(to) : "#/home"; },
    help: () => { location.hash = me?.kind === "resident" ? "#/help" : "#/home"; },
    consent: () => askConsent(plugin),
  });
  opened = { url, frame, bridge, plugin };
  drawTabs(null);
  // The page shows its own title; the heading here names it for screen readers and the tab.
  draw(el("div", { class: "page-head" }, backLink(), el("h1", { class: "sr" }, title)), frame);
}

// The host's consent screen for `plugin`: what it asks for, why, who provides it; the
// person decides. Resolves true when every field it asks for is consented.
function consentCard(req, onAgree, onDecline) {
  const boxes = req.fields.map((f) => el("li", {}, el("span", { "aria-hidden": "true" }, "☑ "), lang === "en" ? f.label_en : f.label_zh));
  const agree = el("button", { class: "primary", type: "button", id: "consent-agree", onclick: onAgree }, t("agree"));
  const decline = el("button", { class: "secondary", type: "button", id: "consent-decline", onclick: onDecline }, t("decline"));
  const name = (lang === "en" && req.plugin_name_en) || req.plugin_name;
  const reason = (lang === "en" && req.reason_en) || req.reason;
  return el("section", { class: "card", id: "consent" },
    el("h1", {}, t("consent_title")),
    el("p", {}, el("strong", {}, name), " ", t("consent_asks")),
    el("ul", { class: "fields" }, ...boxes),
    el("p", {}, t("consent_why"), reason),
    el("p", { class: "muted" }, t("consent_vendor"), req.vendor),
    el("p", { class: "actions" }, agree, decline));
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
  const returnFocus = document.activeElement;
  return new Promise((resolve) => {
    const dialog = el("dialog", { id: "consent-dialog", "aria-labelledby": "consent-title" });
    const close = (granted) => { dialog.close(); dialog.remove(); returnFocus?.focus?.(); resolve(granted); };
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
  drawTabs("me");
  if (!r.ok) { draw(el("h1", {}, t("consent_title")), problemLine(r)); return; }
  const back = params.get("return") || "#/home";
  draw(consentCard(r.data,
    async () => { if (await giveConsent(plugin, r.data, "app")) { location.hash = back.startsWith("#/") ? back : "#/home"; route(); } },
    () => { location.hash = "#/home"; }));
}

async function consentsView() {
  const draw = screen();
  const r = await api("GET", "/api/consents");
  drawTabs("me");
  const section = el("section", { id: "consents" }, backLink("#/me", t("back")), el("h1", {}, t("consents_title")));
  const bySubject = {};
  const labels = {};
  for (const c of r.data || []) { (bySubject[c.subject] ||= []).push(c.scope); labels[c.subject] = c.label || c.subject; }
  if (!r.ok) section.append(problemLine(r));
  else if (Object.keys(bySubject).length === 0) section.append(el("p", { class: "muted" }, t("no_consents")));
  for (const [subject, scopes] of Object.entries(bySubject)) {
    const names = listOf(scopes.map((s) => t("field_names")[s] || s));
    const revoke = el("button", { class: "secondary", type: "button" }, t("revoke"));
    revoke.onclick = async () => { await api("DELETE", `/api/consents/${encodeURIComponent(subject)}`); consentsView(); };
    section.append(el("article", { class: "card", "data-subject": subject }, el("h2", {}, labels[subject]), el("p", {}, names), revoke));
  }
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
}

async function logout() {
  await api("POST", "/api/auth/logout");
  me = null;
  document.getElementById("who").textContent = "";
  location.hash = "#/login";
  route();
}

async function route() {
  applyLanguage();
  const hash = location.hash || "#/home";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  if (!me && path !== "/login") {
    sessionStorage.setItem("linli.after-login", hash);
    drawTabs(null);
    return loginView();
  }
  if (path === "/login") { drawTabs(null); return loginView(); }
  if (path === "/home") return homeView();
  if (path === "/services") return servicesView();
  if (path === "/me") return meView();
  if (path === "/open") return openView(params);
  if (path === "/consents") return consentsView();
  if (path === "/inbox") return inboxView();
  if (path === "/tickets") return ticketsView();
  if (path === "/bookings") return bookingsView();
  if (path === "/report") return reportView();
  if (path === "/help") return helpView();
  if (path === "/contacts") return contactsView();
  const ticket = path.match(/^\/ticket\/([0-9a-f-]+)$/);
  if (ticket) return ticketView(ticket[1]);
  const consent = path.match(/^\/consent\/([a-z0-9-]+)$/);
  if (consent) return consentView(consent[1], params);
  location.hash = "#/home";
}

document.getElementById("elder").onclick = () => { elder = !elder; localStorage.setItem("linli.elder", elder ? "1" : "0"); route(); };
document.getElementById("lang").onclick = () => { lang = lang === "en" ? "zh-CN" : "en"; localStorage.setItem("linli.lang", lang); route(); };
document.getElementById("skip").onclick = (e) => { e.preventDefault(); (view.querySelector("h1") || view).focus(); };
window.addEventListener("hashchange", route);
// `fresh` (prompt=login): log in again even with a session.
loadMe().then(() => (new URLSearchParams(location.search).has("fresh") ? false : continueSignIn()) || route());
