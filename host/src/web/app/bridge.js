// The app's side of the bridge to a plugin page (the page's side is /app/kit.js). A plugin's
// page runs in a sandboxed frame: an opaque origin with no cookie, no token and no storage of
// the host. The app holds the session and answers, over postMessage, only what this protocol
// allows: calls to the plugin's *own* routes (made here, as the signed-in person), the
// language and elder-friendly mode, navigation within the plugin's pages or back to the app,
// the host's consent screen, the frame's height, and a small storage of the plugin's own.
// Everything the page sends is checked here: the sender, the size, the method and every
// parameter. Used by the resident app and the console. Protocol version 1 (sdk/README.md).
"use strict";

window.LinliBridge = (() => {
  const VERSION = 1;
  const MAX_MESSAGE_CHARS = 1 << 20;
  const MAX_ANSWER_CHARS = 8 << 20;
  const MAX_PENDING = 16;
  const HTTP_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]);
  const REQUEST_HEADERS = new Set(["content-type", "accept", "accept-language", "if-match", "if-none-match"]);
  const STORAGE_KEYS = 32;
  const STORAGE_VALUE_CHARS = 4096;
  const CONSENT_QUIET_MS = 30000;
  // The same flags as the host's page policy (api/page_policy.rs SANDBOX_FLAGS).
  const SANDBOX = "allow-scripts allow-forms allow-popups allow-modals";

  const refuse = (code, message) => Object.assign(new Error(message), { code });

  // The URL of a call, which must stay inside the plugin's own prefix once the browser has
  // resolved every `..` and `%2e%2e`.
  function ownRoute(base, path) {
    if (typeof path !== "string" || !path.startsWith("/") || path.length > 2048 || /[\\#\u0000-\u001f\u007f]/.test(path)) {
      throw refuse("invalid-path", "the path must start with / and be at most 2048 characters, without \\ or #");
    }
    const url = new URL(base + path, location.origin);
    const inside = url.pathname === base || url.pathname.startsWith(base + "/");
    if (url.origin !== location.origin || !inside || /%2f|%5c/i.test(url.pathname)) {
      throw refuse("outside-plugin", "a page may call only its own plugin's routes");
    }
    return url.pathname + url.search;
  }

  function requestHeaders(given) {
    const headers = {};
    if (given === undefined || given === null) return headers;
    if (typeof given !== "object" || Array.isArray(given)) throw refuse("invalid-headers", "headers must be an object of strings");
    for (const [key, value] of Object.entries(given)) {
      const name = String(key).toLowerCase();
      const allowed = REQUEST_HEADERS.has(name) || (/^x-[a-z0-9-]{1,64}$/.test(name) && !name.startsWith("x-linli-"));
      if (!allowed) throw refuse("invalid-headers", `a page may not set the header ${name}`);
      if (typeof value !== "string" || value.length > 1024 || /[\r\n]/.test(value)) throw refuse("invalid-headers", `the header ${name} is not a short single-line string`);
      headers[name] = value;
    }
    return headers;
  }

  function storageKey(plugin, key) {
    if (typeof key !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(key)) throw refuse("invalid-key", "keys are 1–64 of A-Z a-z 0-9 . _ -");
    return `linli.page.${plugin}.${key}`;
  }

  // opts: frame, base (/t/{tenant}/p/{prefix}), plugin (id), tenant, context() → {lang, elder},
  // fetch(path, init) → Response (as the signed-in person), navigate(url | null for home),
  // consent() → Promise<boolean>.
  function attach(opts) {
    const { frame, base, plugin } = opts;
    let pending = 0;
    let consentOpen = false;
    let consentQuietUntil = 0;
    const handlers = {
      context: () => ({ version: VERSION, plugin, tenant: opts.tenant, ...opts.context() }),
      async call(params) {
        const method = String(params.method || "GET").toUpperCase();
        if (!HTTP_METHODS.has(method)) throw refuse("invalid-method", `${method} is not an HTTP method a page may use`);
        const init = { method, headers: requestHeaders(params.headers) };
        if (params.body !== undefined && params.body !== null) {
          if (method === "GET" || method === "HEAD") throw refuse("invalid-body", `${method} has no body`);
          init.body = typeof params.body === "string" ? params.body : JSON.stringify(params.body);
          if (typeof params.body !== "string" && !init.headers["content-type"]) init.headers["content-type"] = "application/json";
        }
        const res = await opts.fetch(ownRoute(base, params.path), init);
        const body = await res.text();
        if (body.length > MAX_ANSWER_CHARS) throw refuse("too-large", "the plugin's answer is too large to pass to the page");
        // What the plugin set for its page; the host's own security headers stay here.
        const headers = {};
        res.headers.forEach((value, name) => {
          if (["content-type", "content-disposition", "content-language", "etag", "last-modified", "location", "retry-after"].includes(name) || (name.startsWith("x-") && !name.startsWith("x-linli-"))) headers[name] = value;
        });
        return { status: res.status, ok: res.ok, headers, body };
      },
      navigate(params) {
        if (params.to === "home") return opts.navigate(null);
        // 一键求助 is the app's own screen: a page may send the person there, not call it.
        if (params.to === "help") {
          if (!opts.help) throw refuse("invalid-navigation", "one-tap help is only in the resident app");
          return opts.help();
        }
        const path = params.path;
        const invalid = () => refuse("invalid-navigation", "navigate to \"home\", or to a page of the plugin's own ui/ by a relative path");
        if (params.to !== "page" || typeof path !== "string" || path.length > 512 || path.startsWith("/") || /[\\#\u0000-\u001f\u007f]/.test(path)) throw invalid();
        const pages = `${base}/ui/`;
        const url = new URL(pages + path, location.origin);
        if (url.origin !== location.origin || !url.pathname.startsWith(pages) || /%2f|%5c/i.test(url.pathname)) throw invalid();
        return opts.navigate(url.pathname + url.search);
      },
      // One consent screen at a time, and none for a while after the person declined: a
      // page must not wear them down by asking again and again.
      async consent() {
        if (consentOpen) throw refuse("busy", "the consent screen is already open");
        if (Date.now() < consentQuietUntil) return { granted: false };
        consentOpen = true;
        try {
          const granted = await opts.consent();
          if (!granted) consentQuietUntil = Date.now() + CONSENT_QUIET_MS;
          return { granted };
        } finally {
          consentOpen = false;
        }
      },
      resize(params) {
        const height = Number(params.height);
        if (!Number.isFinite(height)) throw refuse("invalid-height", "the height is a number of CSS pixels");
        frame.style.height = `${Math.round(Math.min(Math.max(height, 120), 100000))}px`;
        return {};
      },
      "storage.get": (params) => ({ value: localStorage.getItem(storageKey(plugin, params.key)) }),
      "storage.set": (params) => {
        const key = storageKey(plugin, params.key);
        if (typeof params.value !== "string" || params.value.length > STORAGE_VALUE_CHARS) throw refuse("invalid-value", `values are strings of at most ${STORAGE_VALUE_CHARS} characters`);
        const prefix = `linli.page.${plugin}.`;
        const used = Object.keys(localStorage).filter((k) => k.startsWith(prefix) && k !== key).length;
        if (used >= STORAGE_KEYS) throw refuse("storage-full", `a plugin keeps at most ${STORAGE_KEYS} values here`);
        localStorage.setItem(key, params.value);
        return {};
      },
      "storage.remove": (params) => {
        localStorage.removeItem(storageKey(plugin, params.key));
        return {};
      },
    };

    async function onMessage(event) {
      // Only the page in this frame, which is always in an opaque origin ("null").
      if (event.source !== frame.contentWindow || event.origin !== "null") return;
      const message = event.data;
      if (!message || typeof message !== "object" || message.linli !== VERSION) return;
      const id = message.id;
      if (!((typeof id === "string" && id.length <= 64) || Number.isSafeInteger(id))) return;
      const reply = (answer) => event.source.postMessage({ linli: VERSION, id, ...answer }, "*");
      const fail = (e) => reply({ ok: false, error: { code: e.code || "failed", message: String(e.message || e) } });
      let size = Infinity;
      try { size = JSON.stringify(message).length; } catch { /* not serialisable: too large below */ }
      if (size > MAX_MESSAGE_CHARS) return fail(refuse("too-large", `a message is at most ${MAX_MESSAGE_CHARS} characters`));
      const method = typeof message.method === "string" && Object.hasOwn(handlers, message.method) ? handlers[message.method] : null;
      if (!method) return fail(refuse("unknown-method", `the app offers ${Object.keys(handlers).join(", ")}`));
      const params = message.params ?? {};
      if (typeof params !== "object" || Array.isArray(params)) return fail(refuse("invalid-params", "params must be an object"));
      if (pending >= MAX_PENDING) return fail(refuse("busy", `at most ${MAX_PENDING} requests at once`));
      pending += 1;
      try {
        reply({ ok: true, result: await method(params) });
      } catch (e) {
        fail(e);
      } finally {
        pending -= 1;
      }
    }

    window.addEventListener("message", onMessage);
    return {
      // Tell the page that the language or the elder-friendly mode changed.
      update() {
        frame.contentWindow?.postMessage({ linli: VERSION, event: "context", data: handlers.context() }, "*");
      },
      detach() {
        window.removeEventListener("message", onMessage);
      },
    };
  }

  // The page's URL with the app's language and mode, which kit.js reads before the page
  // first draws (the bridge answers only later).
  function pageUrl(url, context) {
    const sep = url.includes("?") ? "&" : "?";
    return `${url}${sep}linli-lang=${encodeURIComponent(context.lang)}&linli-elder=${context.elder ? "1" : "0"}`;
  }

  // Where a plugin page lives: only the host's own `/t/{tenant}/p/{prefix}/…` opens in a
  // frame. Null for anything else.
  function pageRoute(url) {
    const match = /^\/t\/([a-z0-9-]+)\/p\/([a-z0-9-]+)\//.exec(url);
    return match ? { tenant: match[1], prefix: match[2], base: `/t/${match[1]}/p/${match[2]}` } : null;
  }

  // A plugin page in its sandboxed frame (#plugin-frame) with the bridge attached; the
  // calls it asks for are made with the person's session (sessionFetch).
  // opts: url, route (pageRoute(url)), plugin, title, context, navigate, consent.
  function open(opts) {
    const frame = document.createElement("iframe");
    frame.className = "plugin-frame";
    frame.id = "plugin-frame";
    frame.setAttribute("sandbox", SANDBOX);
    frame.title = opts.title;
    frame.src = pageUrl(opts.url, opts.context());
    const { tenant, base } = opts.route;
    const bridge = attach({ frame, base, tenant, plugin: opts.plugin, context: opts.context, fetch: sessionFetch, navigate: opts.navigate, help: opts.help, consent: opts.consent });
    return { frame, bridge };
  }

  // A request as the signed-in person, with the session cookie and never a token (the app's
  // and the console's calls, and the calls they make for a plugin page); a session that ran
  // out (15 minutes) is renewed from the refresh cookie once.
  async function sessionFetch(path, init) {
    init = { ...init, credentials: "same-origin" };
    let res = await fetch(path, init);
    if (res.status === 401 && !path.startsWith("/api/auth/")) {
      const renewed = await fetch("/api/auth/refresh", { method: "POST", credentials: "same-origin" });
      if (renewed.ok) res = await fetch(path, init);
    }
    return res;
  }

  return { open, pageRoute, sessionFetch };
})();
