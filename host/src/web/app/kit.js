// A helper every plugin page may include (`<script src="/app/kit.js"></script>`): it
// applies the resident's language and elder-friendly mode (适老化) chosen in the app, and
// offers `linli.call(method, path, body)` for the plugin's own API, so plugin pages do
// not each carry a fetch wrapper.
"use strict";

(() => {
  const lang = localStorage.getItem("linli.lang") || "zh-CN";
  const elder = localStorage.getItem("linli.elder") === "1";
  document.documentElement.lang = lang;
  document.documentElement.classList.toggle("elder", elder);
  // The plugin's API root: the page lives under …/p/{prefix}/ui/.
  const api = location.pathname.replace(/\/ui\/.*$/, "");

  async function call(method, path, body) {
    const init = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) { init.headers["content-type"] = "application/json"; init.body = JSON.stringify(body); }
    let res = await fetch(api + path, init);
    if (res.status === 401) {
      const renewed = await fetch("/api/auth/refresh", { method: "POST", credentials: "same-origin" });
      if (renewed.ok) res = await fetch(api + path, init);
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
    return { ok: res.ok, status: res.status, data, error: res.ok ? null : data?.error?.message || `HTTP ${res.status}` };
  }

  // Pick the string for the page's language from {"zh-CN": …, en: …}.
  const pick = (texts) => texts[lang] ?? texts["zh-CN"];

  window.linli = { call, lang, elder, pick, api };
})();
