// The admin console for county, street and community operators. Staff sign in with
// their account (session cookie, like the resident app); the platform operator may use
// the admin token instead (kept in sessionStorage for this tab only). The host decides
// what each operator sees and may change; this page only shows it.
// Routes: #/login, #/dashboard[/{tenant}], #/catalogue, #/review/{plugin}/{version},
// #/installations, #/keys, #/people, #/import, #/tickets, #/devices, #/audit.
"use strict";

const TEXT = {
  "zh-CN": {
    brand: "邻里 · 管理后台", logout: "退出", other: "English", cancel: "取消", confirm: "确认",
    nav_dashboard: "数据看板", nav_catalogue: "插件目录", nav_installations: "已安装插件", nav_keys: "供应商密钥",
    nav_people: "组织与人员", nav_import: "基础数据导入", nav_tickets: "工单看板", nav_devices: "设备与告警", nav_audit: "审计日志",
    login_title: "工作人员登录", phone: "手机号", password: "密码", login: "登录", token_login: "使用平台管理员令牌",
    token: "管理员令牌", login_failed: "登录失败：", no_console: "您的账号没有管理后台权限。",
    dashboard_title: "数据看板", drill_hint: "点击下级名称或条形图查看下一级", compare: "各下级对比", tickets_by_status: "工单状态",
    usage_title: "插件访问量（近7天）", figure: "指标", children_table: "下级明细", plugin_unavailable: "插件暂未提供数据：",
    catalogue_title: "插件目录", upload: "上传插件包", upload_for: "上传到县", choose_file: "选择 .lpkg 文件", uploaded: "已上传并通过校验：",
    open_page: "打开页面", page_as_token: "以平台管理员令牌登录：插件页面看不到您的身份（插件从不以管理员身份运行）。请用工作人员账号登录以使用插件的工作页面。",
    ui_connect: "页面可连接的外部地址", ui_connect_note: "插件页面只能从勾选的地址加载内容、与之通信；其余地址一律被浏览器拦截。",
    plugin: "插件", version: "版本", vendor: "供应商", county: "所属县", uploaded_at: "上传时间", review_install: "审查并安装",
    review_title: "审查插件权限", description: "说明", signed_by: "签名密钥", requested: "申请的权限（逐项授予）", reason: "理由：",
    scope: "安装范围", install: "安装", installed_ok: "已安装：", limits: "资源限制", deadline: "单次请求时限", memory: "内存上限", concurrency: "并发上限",
    reuse: (n) => `实例复用：同一调用者（同一社区、同一居民或匿名访客）最多连续 ${n} 次请求共用一个实例，前一次请求留在插件内存中的内容下一次可见`,
    confirm_install: (p, t, g) => `确认为「${t}」安装「${p}」，并授予 ${g} 项权限？`,
    installations_title: "已安装插件", tenant: "范围", grants: "已授予权限", actions: "操作", upgrade: "升级", rollback: "回滚", uninstall: "卸载",
    purge: "同时删除插件数据", history: "变更记录", permissions: "调整权限", save_grants: "保存权限",
    confirm_grants: (p, g) => `确认「${p}」今后只拥有以下权限：${g.join("、") || "无"}？`, confirm_upgrade: (p, v) => `确认将「${p}」升级到 ${v}？数据保留。`,
    confirm_rollback: (p, v) => `确认将「${p}」回滚到 ${v}？数据保留。`, confirm_uninstall: (p) => `确认卸载「${p}」？`, none: "无",
    keys_title: "供应商密钥", key_id: "密钥编号", public_key: "公钥（ed25519:…）", trust: "信任此密钥", added: "添加时间",
    people_title: "组织与人员", tree: "组织架构", staff: "工作人员", name: "姓名", roles: "角色", new_staff: "新增工作人员", role: "角色", create: "创建",
    import_title: "基础数据导入", kind: "数据类型", file: "CSV 文件（UTF-8）", start_import: "开始导入", progress: "进度", problems: "问题",
    row: "行", column: "列", problem: "问题", import_kinds: { residents: "居民", places: "场所", organisations: "组织机构" },
    import_states: { validating: "校验中", writing: "写入中", done: "已完成", rejected: "已拒绝（未写入任何数据）", failed: "失败" },
    duty_lines: "一键求助值班电话", duty_note: "居民按下一键求助时，拨打离她最近的上级设置的值班电话。", duty_node: "设置范围", duty_phone: "值班电话", duty_save: "保存", duty_none: "尚未设置值班电话。", duty_saved: "值班电话已保存",
    errors: {
      "bad-credentials": "手机号或密码不正确。", locked: "登录失败次数过多，账号暂时锁定。", "rate-limited": "尝试次数过多，请稍后再试。",
      "too-many-requests": "操作太频繁，请稍后再试。", unauthenticated: "登录已过期，请重新登录。", "permission-denied": "没有权限：",
      "not-found": "没有找到：", "invalid-argument": "填写的内容有误：", conflict: "内容已被更改或有冲突：", "limit-exceeded": "超出限制：",
      unavailable: "服务暂时不可用，请稍后再试。", internal: "系统出错，请联系平台管理员。", network: "网络连接失败，请检查网络后重试。",
    },
    error_generic: "操作未成功：",
    import_columns: { real_name: "姓名", id_number: "身份证号", phone: "手机号", grid: "网格", building: "楼栋", unit: "单元", room: "房号", tags: "标签", household: "户", name: "名称", kind: "类型", address: "地址", contact: "联系方式" },
    import_problems: {
      "not-utf8": "文件不是 UTF-8 文本，请另存为“CSV UTF-8”格式。", "header-unreadable": "无法读取表头。", "column-twice": "此列出现了两次。",
      "column-unknown": (v) => `无法识别的列；可用的列为：${v}。`, "column-missing": "缺少此必填列。", "too-many-problems": (v) => `问题超过 ${v} 个，已停止检查（文件是否选错？）。`,
      "field-count": (v) => `字段数与表头不一致（本行/表头：${v}）。`, "row-unreadable": "无法读取此行。", empty: "不能为空。",
      "grid-unknown": (v) => `网格“${v}”不存在。`, "grid-outside": (v) => `“${nodeName(v)}”不在本次导入的范围内。`, "name-length": "姓名须为 1–50 个字。",
      "birth-in-future": "身份证号中的出生日期晚于今天。", "id-number-invalid": "身份证号无效（长度、出生日期或校验位有误，可能输错）。",
      "id-number-repeated": (v) => `与第 ${v} 行的身份证号重复。`, "already-registered": "此居民已登记。", "phone-invalid": (v) => `“${v}”不是 11 位手机号。`,
      "house-incomplete": "楼栋、单元、房号须同时填写或同时留空。", "no-rows": "文件只有表头，没有数据行。", database: "数据库出错，未导入任何数据，请稍后重试。",
    },
    tenant_kinds: { county: "县", street: "镇街", community: "社区", grid: "网格" },
    unit_ms: "毫秒", unit_mib: "兆字节",
    tickets_title: "工单看板", dispatch: "派单", assignee: "处理人", due: "时限", overdue: "已超时", due_soon: "即将超时", on_time: "正常", supervise: "督办", supervise_note: "督办意见",
    supervised: "督办中", status_names: { open: "待派单", dispatched: "已派单", accepted: "处理中", resolved: "已办结", closed: "已关闭" },
    devices_title: "设备与告警", devices: "设备", alarms: "告警动态", online: "在线", offline: "离线", last_seen: "最后上报", location: "位置",
    type: "类型", acknowledge: "确认处置", severity: "级别", raised: "发生时间", alarm_states: { active: "未处理", acknowledged: "处置中", cleared: "已恢复" },
    audit_title: "审计日志", actor: "操作者", subject: "对象", fields: "字段", outcome: "结果", at: "时间", search: "查询",
    severity_names: { info: "提示", warning: "一般", major: "重要", critical: "紧急" },
    device_types: { "water-meter": "水表", "fall-button": "跌倒求助按钮", "smoke-detector": "烟雾报警器", "door-sensor": "门磁", "parking-sensor": "车位检测器", "gate-controller": "道闸" },
    outcome_names: { allowed: "已读取", denied: "已拒绝", "consent-required": "待本人授权", "consent-given": "本人已授权", "consent-withdrawn": "本人已撤回" },
    actor_kinds: { plugin: "插件", account: "账号", resident: "居民", client: "第三方应用", staff: "工作人员" },
    field_names: { "real-name": "实名姓名", "id-number": "身份证号", phone: "手机号", "birth-date": "出生日期", address: "住址", "resident-record": "本人社区档案",
      "emergency-contacts": "紧急联系人", "emergency-contacts:changed": "紧急联系人（登记）", openid: "登录身份", profile: "姓名" },
    action_names: { created: "创建", dispatched: "派单", accepted: "接单", commented: "备注", resolved: "办结", closed: "关闭", escalated: "超时升级", supervised: "督办" },
    photo: "照片", urgent: "紧急", installed_at: "已安装：", review: "审查", choose: "请选择…", filter: "筛选", search_tickets: "搜索标题、地点或类别",
    all_categories: "全部类别", export_csv: "导出 CSV", trace: "办理过程", ticket_detail: "详情", no_tickets: "没有符合条件的工单。",
    capability_names: { data: "数据存储", identity: "身份", base: "社区基础数据", ledger: "账本", devices: "设备", tickets: "工单", notify: "通知", log: "日志" },
    role_names: { "county-admin": "县级管理员", "street-admin": "镇街管理员", "community-worker": "社区工作者", "grid-worker": "网格员", volunteer: "志愿者", lawyer: "律师", "vendor-developer": "供应商开发者" },
  },
  en: {
    brand: "Linli · Console", logout: "Log out", other: "中文", cancel: "Cancel", confirm: "Confirm",
    nav_dashboard: "Dashboard", nav_catalogue: "Plugin catalogue", nav_installations: "Installations", nav_keys: "Vendor keys",
    nav_people: "Tenants & staff", nav_import: "Base-data import", nav_tickets: "Work orders", nav_devices: "Devices & alarms", nav_audit: "Audit log",
    login_title: "Staff sign-in", phone: "Mobile number", password: "Password", login: "Log in", token_login: "Use the platform admin token",
    token: "Admin token", login_failed: "Login failed: ", no_console: "Your account has no console role.",
    dashboard_title: "Dashboard", drill_hint: "Click a child's name or bar to go one level down", compare: "Children compared", tickets_by_status: "Work orders by status",
    usage_title: "Plugin requests (7 days)", figure: "Figure", children_table: "By child", plugin_unavailable: "No figures from the plugin: ",
    catalogue_title: "Plugin catalogue", upload: "Upload a package", upload_for: "For county", choose_file: "Choose a .lpkg file", uploaded: "Uploaded and verified: ",
    open_page: "Open page", page_as_token: "Signed in with the platform admin token: plugin pages do not see who you are (a plugin never acts as the operator). Sign in with a staff account to use a plugin's staff pages.",
    ui_connect: "External origins its pages reach", ui_connect_note: "The plugin's pages may load from and connect to the ticked origins only; the browser blocks every other.",
    plugin: "Plugin", version: "Version", vendor: "Vendor", county: "County", uploaded_at: "Uploaded", review_install: "Review and install",
    review_title: "Review permissions", description: "Description", signed_by: "Signing key", requested: "Requested permissions (grant each)", reason: "Reason: ",
    scope: "Install for", install: "Install", installed_ok: "Installed: ", limits: "Limits", deadline: "Deadline per request", memory: "Memory", concurrency: "Concurrency",
    reuse: (n) => `Instance reuse: up to ${n} requests of one caller (same community, same resident or anonymous visitors) share an instance; what one request leaves in the plugin's memory the next one sees`,
    confirm_install: (p, t, g) => `Install “${p}” for “${t}” with ${g} permission(s)?`,
    installations_title: "Installations", tenant: "Scope", grants: "Granted", actions: "Actions", upgrade: "Upgrade", rollback: "Roll back", uninstall: "Uninstall",
    purge: "Also delete its data", history: "History", permissions: "Permissions", save_grants: "Save permissions",
    confirm_grants: (p, g) => `From now on “${p}” holds only: ${g.join(", ") || "nothing"}?`, confirm_upgrade: (p, v) => `Upgrade “${p}” to ${v}? Data is kept.`,
    confirm_rollback: (p, v) => `Roll “${p}” back to ${v}? Data is kept.`, confirm_uninstall: (p) => `Uninstall “${p}”?`, none: "none",
    keys_title: "Vendor keys", key_id: "Key id", public_key: "Public key (ed25519:…)", trust: "Trust this key", added: "Added",
    people_title: "Tenants & staff", tree: "Tenant tree", staff: "Staff", name: "Name", roles: "Roles", new_staff: "New staff member", role: "Role", create: "Create",
    import_title: "Base-data import", kind: "Kind", file: "CSV file (UTF-8)", start_import: "Import", progress: "Progress", problems: "Problems",
    row: "Row", column: "Column", problem: "Problem", import_kinds: { residents: "Residents", places: "Places", organisations: "Organisations" },
    import_states: { validating: "Validating", writing: "Writing", done: "Done", rejected: "Rejected (nothing written)", failed: "Failed" },
    duty_lines: "Duty lines for one-tap help", duty_note: "A resident's call for help goes to the line set nearest above her home.", duty_node: "For", duty_phone: "Duty line", duty_save: "Save", duty_none: "No duty line set yet.", duty_saved: "Duty line saved",
    errors: {
      "bad-credentials": "Wrong mobile number or password.", locked: "Too many failed logins; the account is locked for a while.", "rate-limited": "Too many attempts; try again later.",
      "too-many-requests": "Too many requests; try again later.", unauthenticated: "Your session ended; log in again.", "permission-denied": "Not allowed:",
      "not-found": "Not found:", "invalid-argument": "Something entered is not valid:", conflict: "This changed meanwhile or conflicts:", "limit-exceeded": "A limit was reached:",
      unavailable: "The service is unavailable; try again later.", internal: "The platform failed; tell its operator.", network: "No connection; check the network.",
    },
    error_generic: "That did not work:",
    import_columns: { real_name: "Name", id_number: "ID number", phone: "Phone", grid: "Grid", building: "Building", unit: "Unit", room: "Room", tags: "Tags", household: "Household", name: "Name", kind: "Kind", address: "Address", contact: "Contact" },
    import_problems: {},
    tenant_kinds: { county: "County", street: "Street", community: "Community", grid: "Grid" },
    unit_ms: "ms", unit_mib: "MiB",
    tickets_title: "Work orders", dispatch: "Dispatch", assignee: "Assignee", due: "Due", overdue: "Overdue", due_soon: "Due soon", on_time: "On time", supervise: "Supervise", supervise_note: "Supervision note",
    supervised: "supervised", status_names: { open: "Waiting", dispatched: "Dispatched", accepted: "In progress", resolved: "Resolved", closed: "Closed" },
    devices_title: "Devices & alarms", devices: "Devices", alarms: "Alarm feed", online: "online", offline: "offline", last_seen: "Last seen", location: "Location",
    type: "Type", acknowledge: "Acknowledge", severity: "Severity", raised: "Raised", alarm_states: { active: "Active", acknowledged: "Acknowledged", cleared: "Cleared" },
    audit_title: "Audit log", actor: "Actor", subject: "Subject", fields: "Fields", outcome: "Outcome", at: "At", search: "Search",
    severity_names: { info: "Info", warning: "Warning", major: "Major", critical: "Critical" },
    device_types: { "water-meter": "Water meter", "fall-button": "Fall button", "smoke-detector": "Smoke detector", "door-sensor": "Door sensor", "parking-sensor": "Parking sensor", "gate-controller": "Gate" },
    outcome_names: { allowed: "Read", denied: "Refused", "consent-required": "Consent needed", "consent-given": "Consent given", "consent-withdrawn": "Consent withdrawn" },
    actor_kinds: { plugin: "Plugin", account: "Account", resident: "Resident", client: "Client app", staff: "Staff" },
    field_names: { "real-name": "Real name", "id-number": "ID number", phone: "Phone", "birth-date": "Birth date", address: "Address", "resident-record": "Own community record",
      "emergency-contacts": "Emergency contacts", "emergency-contacts:changed": "Emergency contacts (recorded)", openid: "Sign-in identity", profile: "Name" },
    action_names: { created: "Created", dispatched: "Dispatched", accepted: "Accepted", commented: "Comment", resolved: "Resolved", closed: "Closed", escalated: "Escalated", supervised: "Supervised" },
    photo: "Photo", urgent: "Urgent", installed_at: "Installed at: ", review: "Review", choose: "Choose…", filter: "Filter", search_tickets: "Search title, place or category",
    all_categories: "All categories", export_csv: "Export CSV", trace: "Trace", ticket_detail: "Details", no_tickets: "No ticket matches.",
    capability_names: { data: "Data store", identity: "Identity", base: "Community base data", ledger: "Ledger", devices: "Devices", tickets: "Work orders", notify: "Notifications", log: "Log" },
    role_names: { "county-admin": "County admin", "street-admin": "Street admin", "community-worker": "Community worker", "grid-worker": "Grid worker", volunteer: "Volunteer", lawyer: "Lawyer", "vendor-developer": "Vendor developer" },
  },
};
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

// A failure in the console's language: the error's code picks the sentence, and the host's
// detail follows when it is in that language (host messages are `中文 (English)` or English).
function failure(r) {
  const code = r.data?.error?.code || (r.status === 0 ? "network" : "");
  const message = typeof r.data?.error?.message === "string" ? r.data.error.message : "";
  const bilingual = /^(.*?)\s*\(([^()]*)\)\s*$/.exec(message);
  const detail = bilingual && /[\u4e00-\u9fff]/.test(bilingual[1]) ? (lang === "en" ? bilingual[2] : bilingual[1]) : lang === "en" ? message : "";
  const sentence = t("errors")[code] || t("error_generic");
  if (detail) return `${sentence}${lang === "en" && sentence.endsWith(":") ? " " : ""}${detail}`;
  return sentence.replace(/：$/, "。").replace(/:$/, ".");
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
  const [name, scope] = grant.split(":");
  const capability = t("capability_names")[name] || name;
  if (!scope) return capability;
  const info = capabilityInfo.find((c) => c.name === name)?.scopes.find((x) => x.name === scope);
  return `${capability} · ${info ? (lang === "en" ? info.summary_en : info.summary_zh) : scope}`;
}
// An audit actor or subject (`plugin:legal-aid`, `account:6ac1…`) as a kind and a name.
// `name`: what the host knows of the party (an account's name, a resident's masked name).
function partyName(party, name) {
  const [kind, id] = party.split(/:(.*)/s);
  const plugin = kind === "plugin" && packagesSeen.find((p) => p.plugin_id === id);
  const label = plugin ? ((lang === "en" && plugin.manifest.translations?.en?.name) || plugin.manifest.name) : name || id;
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

function applyLanguage() {
  document.documentElement.lang = lang;
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
  document.getElementById("who").textContent = me ? me.display_name + (me.roles.length ? " · " + me.roles.map((g) => roleName(g.role)).join("、") : "") : "";
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
      el("td", {}, el("strong", {}, p.manifest.name), el("br"), el("span", { class: "muted" }, p.plugin_id)),
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
      el("p", { class: "reason" }, t("reason"), c.reason));
    for (const s of c.scopes || []) {
      const scope = el("input", { type: "checkbox", id: `grant-${c.name}-${s}`, value: `${c.name}:${s}`, checked: true });
      boxes.push(scope);
      const scopeInfo = info(c.name)?.scopes?.find((x) => x.name === s);
      const scopeName = scopeInfo ? (lang === "en" ? scopeInfo.summary_en : scopeInfo.summary_zh) : "";
      perm.append(el("label", { class: "inline", for: scope.id, style: "margin-left:1.6rem" }, scope, scopeName ? `${scopeName} ` : "", el("code", {}, `${c.name}:${s}`)));
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
    if (!(await ask(t("confirm_install")(m.name, nodeName(tenant.value), grants.length)))) return;
    const r = await api("POST", "/admin/installations", { plugin_id: p.plugin_id, version: p.version, tenant_id: tenant.value, grants });
    if (!r.ok) { status.replaceChildren(notice(failure(r), false)); return; }
    location.hash = "#/installations";
    installationsView(notice(t("installed_ok") + `${m.name} → ${nodeName(r.data.tenant_id)}`));
  };
  const limits = m.limits || {};
  draw(el("section", { id: "review" },
    el("h1", {}, `${t("review_title")} · ${m.name} ${p.version}`),
    el("div", { class: "card" },
      el("p", {}, el("strong", {}, t("description") + "："), m.description),
      el("p", { class: "muted" }, `${t("vendor")}: ${p.vendor} · ${t("signed_by")}: `, el("code", {}, p.key_id), " · ", el("code", {}, `sha256 ${p.sha256.slice(0, 16)}…`)),
      el("p", { class: "muted" }, `${t("limits")}: ${t("deadline")} ${limits.deadline_ms ?? "—"} ${t("unit_ms")} · ${t("memory")} ${limits.memory_mib ?? "—"} ${t("unit_mib")} · ${t("concurrency")} ${limits.max_concurrency ?? "—"}`),
      (limits.requests_per_instance ?? 1) > 1 ? el("p", { class: "muted" }, t("reuse")(limits.requests_per_instance)) : null),
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
    const name = (packages.data?.packages || []).find((p) => p.plugin_id === i.plugin_id)?.manifest.name || i.plugin_id;
    const versions = (packages.data?.packages || []).filter((p) => p.plugin_id === i.plugin_id && p.version !== i.version).map((p) => p.version);
    const cell = el("td", {});
    if (manages && versions.length) {
      const pick = el("select", { id: `upgrade-${i.id}` }, ...versions.map((v) => el("option", { value: v }, v)));
      cell.append(pick, el("button", { class: "secondary", type: "button", onclick: () => act(t("confirm_upgrade")(name, pick.value), "POST", `/admin/installations/${encodeURIComponent(i.id)}/upgrade`, { version: pick.value }) }, t("upgrade")));
    }
    if (manages && i.previous_version) {
      cell.append(el("button", { class: "secondary", type: "button", "data-action": "rollback", onclick: () => act(t("confirm_rollback")(name, i.previous_version), "POST", `/admin/installations/${encodeURIComponent(i.id)}/rollback`) }, t("rollback")));
    }
    const entry = (packages.data?.packages || []).find((p) => p.plugin_id === i.plugin_id && p.version === i.version)?.manifest.ui_entry;
    if (entry) {
      const url = `/t/${i.tenant_id}/p/${i.route_prefix}/${entry}`;
      cell.append(el("a", { class: "button secondary", "data-action": "open-page", href: `#/page?plugin=${encodeURIComponent(i.plugin_id)}&url=${encodeURIComponent(url)}` }, t("open_page")));
    }
    const purge = el("input", { type: "checkbox", id: `purge-${i.id}` });
    if (manages) cell.append(el("button", { class: "danger", type: "button", "data-action": "uninstall", onclick: () => act(t("confirm_uninstall")(name) + (purge.checked ? " " + t("purge") : ""), "DELETE", `/admin/installations/${encodeURIComponent(i.id)}?purge=${purge.checked}`) }, t("uninstall")),
      el("label", { class: "inline", for: purge.id }, purge, t("purge")));
    // Grant or revoke what the installed version requests.
    const manifest = (packages.data?.packages || []).find((p) => p.plugin_id === i.plugin_id && p.version === i.version)?.manifest;
    const permissions = el("details", { "data-permissions": i.id }, el("summary", {}, t("permissions")));
    if (manifest && manages) {
      const requested = [...manifest.capabilities.flatMap((c) => [c.name, ...(c.scopes || []).map((s) => `${c.name}:${s}`)]), ...(manifest.ui?.connect || []).map((o) => `ui-connect:${o}`)];
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
  if (!say) return lang === "en" ? p.problem : `${t("error_generic")}${p.problem}`;
  return typeof say === "function" ? say(p.value ?? "") : say;
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
// Alarm tickets first (a smoke alarm in an elder's home is not a routine visit), then the
// overdue, then by time limit.
// Alarms and calls for help (一键求助, falls, smoke: the `emergency` category, 15 minutes).
const isUrgent = (x) => (x.source === "alarm" || x.category === "emergency") && !["resolved", "closed"].includes(x.status);
function ticketOrder(a, b, now) {
  const rank = (x) => (isUrgent(x) ? 0 : dueClass(x, now) === "overdue" ? 1 : dueClass(x, now) === "due-soon" ? 2 : 3);
  return rank(a) - rank(b) || a.due_at - b.due_at;
}

// A CSV file of the tickets shown, downloaded by the browser (UTF-8 with a byte-order mark
// so that spreadsheet programs read the Chinese).
function downloadCsv(tickets) {
  const header = ["id", "title", "category", "location", "status", "level", "assignee", "due", "created", "supervised"];
  const cell = (v) => `"${String(v ?? "").replaceAll('"', '""')}"`;
  const rows = tickets.map((x) => [x.id, x.title, x.category_name, x.location, t("status_names")[x.status] || x.status, nodeName(x.level_tenant_id), x.assignee_name || "", when(x.due_at), when(x.created_at), x.supervised ? t("supervised") : ""]);
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
  const categories = [...new Map(all.map((x) => [x.category, x.category_name])).entries()];
  const category = el("select", { id: "ticket-category", "aria-label": t("all_categories") }, el("option", { value: "" }, t("all_categories")), ...categories.map(([k, v]) => el("option", { value: k }, v)));
  category.value = filters.category || "";
  const shown = () => {
    const q = search.value.trim().toLowerCase();
    return all.filter((x) => (!category.value || x.category === category.value) && (!q || [x.title, x.location, x.category_name, x.description].some((v) => v?.toLowerCase().includes(q))));
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
    const tag = cls === "overdue" ? el("span", { class: "tag bad" }, t("overdue")) : cls === "due-soon" ? el("span", { class: "tag warn" }, t("due_soon")) : x.status === "resolved" || x.status === "closed" ? null : el("span", { class: "tag ok" }, t("on_time"));
    const card = el("div", { class: "ticket " + cls + (isUrgent(x) ? " urgent" : ""), "data-ticket": x.id, "data-urgent": isUrgent(x) ? "1" : null },
      isUrgent(x) ? el("span", { class: "tag urgent" }, t("urgent")) : null,
      el("strong", {}, x.title), el("br"),
      el("span", { class: "muted" }, `${x.category_name} · ${x.location} · ${nodeName(x.level_tenant_id)}${x.assignee_name ? " · " + x.assignee_name : ""}`), el("br"),
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
