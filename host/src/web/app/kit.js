// The page side of the bridge (the app's side is /app/bridge.js). Include it in every plugin
// page: <script src="/app/kit.js"></script>.
//
// A plugin page runs sandboxed, in an opaque origin: it holds no session and cannot call the
// host itself. `linli.call(method, path, body)` asks the app, which calls the plugin's own
// routes (…/p/{prefix}{path}) as the signed-in person and hands back the answer. When the
// plugin answers `consent-required`, the app shows the host's consent screen and, if the
// person agrees, the call is made again. The page also gets the person's language and
// elder-friendly mode (适老化), navigation, its frame's height (kept in step automatically)
// and a small storage of its own. See sdk/README.md, "Plugin pages".
"use strict";

(() => {
  const VERSION = 1;
  const params = new URLSearchParams(location.search);
  const context = { lang: params.get("linli-lang") === "en" ? "en" : "zh-CN", elder: params.get("linli-elder") === "1" };
  const framed = window.parent !== window;
  // Chromium names the app's origin; elsewhere "*" (the host allows only itself to frame
  // plugin pages: frame-ancestors 'self').
  const appOrigin = location.ancestorOrigins?.length ? location.ancestorOrigins[0] : "*";
  const pending = new Map();
  const listeners = new Map();
  let nextId = 1;

  function apply() {
    document.documentElement.lang = context.lang;
    document.documentElement.classList.toggle("elder", context.elder);
  }
  apply();

  window.addEventListener("message", (event) => {
    if (!framed || event.source !== window.parent) return;
    const message = event.data;
    if (!message || typeof message !== "object" || message.linli !== VERSION) return;
    if (typeof message.event === "string") {
      if (message.event === "context" && message.data) {
        context.lang = message.data.lang === "en" ? "en" : "zh-CN";
        context.elder = message.data.elder === true;
        linli.lang = context.lang;
        linli.elder = context.elder;
        apply();
      }
      for (const listener of listeners.get(message.event) || []) listener(message.data);
      return;
    }
    const waiting = pending.get(message.id);
    if (!waiting) return;
    pending.delete(message.id);
    if (message.ok) waiting.resolve(message.result);
    else waiting.reject(Object.assign(new Error(message.error?.message || "the app refused"), { code: message.error?.code || "failed" }));
  });

  const outsideApp = () => Object.assign(new Error("请在邻里应用中打开此页面（open this page in the Linli app）"), { code: "no-app" });

  function ask(method, params) {
    if (!framed) return Promise.reject(outsideApp());
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      window.parent.postMessage({ linli: VERSION, id, method, params }, appOrigin);
    });
  }

  async function callOnce(method, path, body, headers) {
    const answer = await ask("call", { method, path, body, headers });
    let data = null;
    try { data = answer.body ? JSON.parse(answer.body) : null; } catch { data = answer.body; }
    return { ok: answer.ok, status: answer.status, headers: answer.headers, text: answer.body, data, error: answer.ok ? null : data?.error?.message || `HTTP ${answer.status}` };
  }

  // The plugin's own route `path` (e.g. "/applications"), as the signed-in person.
  async function call(method, path, body, headers) {
    try {
      let answer = await callOnce(method, path, body, headers);
      if (answer.status === 403 && answer.data?.error?.code === "consent-required") {
        const decided = await ask("consent", {});
        if (decided.granted) answer = await callOnce(method, path, body, headers);
      }
      return answer;
    } catch (e) {
      return { ok: false, status: 0, headers: {}, text: "", data: null, error: e.message, code: e.code };
    }
  }

  // Pick the string for the page's language from {"zh-CN": …, en: …}.
  const pick = (texts) => texts[context.lang] ?? texts["zh-CN"];

  // The frame follows the page's height, so the page never scrolls inside a fixed box.
  if (framed && "ResizeObserver" in window) {
    let last = 0;
    const report = () => {
      const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
      if (Math.abs(height - last) > 2) { last = height; ask("resize", { height }).catch(() => {}); }
    };
    new ResizeObserver(report).observe(document.documentElement);
    window.addEventListener("load", report);
  }

  // Opened on its own (not inside the app): say where it works.
  if (!framed) {
    document.addEventListener("DOMContentLoaded", () => {
      const note = document.createElement("p");
      note.setAttribute("role", "note");
      note.className = "linli-outside";
      const link = document.createElement("a");
      link.href = "/app/#/open?url=" + encodeURIComponent(location.pathname.replace(/\?.*$/, ""));
      link.textContent = "在邻里应用中打开 (open in the Linli app)";
      note.append("此页面需在邻里应用中使用。", link);
      document.body.prepend(note);
    });
  }

  const linli = {
    version: VERSION,
    lang: context.lang,
    elder: context.elder,
    pick,
    call,
    context: () => ask("context", {}),
    // "home" (the app's home), "help" (the app's 一键求助 screen), or a page of this
    // plugin's ui/ by a relative path.
    navigate: (to, path) => ask("navigate", to === "home" || to === "help" ? { to } : { to: "page", path: to === "page" ? path : to }),
    // The host's consent screen for what the county granted this plugin: { granted }.
    consent: () => ask("consent", {}),
    storage: {
      get: (key) => ask("storage.get", { key }).then((r) => r.value),
      set: (key, value) => ask("storage.set", { key, value: String(value) }),
      remove: (key) => ask("storage.remove", { key }),
    },
    // "context": the language or the elder-friendly mode changed (the page is already
    // updated; listen to re-render text).
    on: (event, listener) => listeners.set(event, [...(listeners.get(event) || []), listener]),
  };
  window.linli = linli;
})();
