// What every browser flow shares: Debian's Chromium through playwright-core, a phone-sized
// zh-CN page, screenshots into the artifact folder, the flow's result printed as JSON on
// the last line, and on failure a screenshot and a non-zero exit.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

// The page (or a plugin page's frame) checked by axe-core: no critical or serious finding.
// axe is put in by the browser's debugging protocol, which the pages' content security
// policy does not govern, so the check runs in the sandboxed plugin frames too. Returns the
// number of rules that passed.
export async function audit(target, label) {
  await target.evaluate(AXE_SOURCE);
  const result = await target.evaluate(() => window.axe.run(document, { iframes: false, resultTypes: ["violations"] }));
  const serious = result.violations.filter((v) => v.impact === "critical" || v.impact === "serious");
  if (serious.length > 0) {
    const found = serious.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ")}`);
    throw new Error(`axe-core on ${label}:\n  ${found.join("\n  ")}`);
  }
  return result.passes?.length ?? 0;
}

// In the elder-friendly mode every control a person can press is at least 60×60 CSS px.
export async function assertElderTargets(target, label) {
  const small = await target.evaluate(() => {
    const controls = document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, [role=button], summary");
    return [...controls].filter((n) => {
      const box = n.getBoundingClientRect();
      const shown = box.width > 0 && box.height > 0 && getComputedStyle(n).visibility !== "hidden";
      return shown && (box.height < 59.5 || box.width < 59.5);
    }).map((n) => `${n.tagName.toLowerCase()}${n.id ? "#" + n.id : ""}${n.className && typeof n.className === "string" ? "." + n.className.split(" ").join(".") : ""} "${(n.innerText || n.value || "").trim().slice(0, 20)}" ${Math.round(n.getBoundingClientRect().width)}×${Math.round(n.getBoundingClientRect().height)}`);
  });
  if (small.length > 0) throw new Error(`elder mode on ${label}: controls under 60 px:\n  ${small.join("\n  ")}`);
}

// The frame of the plugin page the app shows.
export async function pluginFrame(page) {
  const handle = await page.locator("#plugin-frame").elementHandle();
  const frame = await handle.contentFrame();
  await frame.waitForLoadState("load");
  return frame;
}

// `viewport` sizes every page of the flow: a phone by default, wider for the console.
export async function runFlow(artifacts, flow, { viewport = { width: 420, height: 900 } } = {}) {
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
  // Each person gets a browser context of their own (their own cookies).
  const person = async () => {
    const page = await browser.newPage({ viewport, locale: "zh-CN" });
    page.setDefaultTimeout(15000);
    // A script error in the app or the console fails nothing by itself; it is the first
    // thing to read when a flow does.
    page.on("pageerror", (e) => console.error(`[page error] ${e}`));
    return page;
  };
  const page = await person();
  const shot = (name, which = page) => which.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });
  try {
    console.log(JSON.stringify(await flow(page, shot, person)));
  } catch (e) {
    await shot("failure").catch(() => {});
    console.error(String(e?.stack || e));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

// What a screen shows in words: each visible text, and each label (aria-label, title,
// placeholder, alt) as `{text, attribute}`, leaving out hidden elements and those matching
// `skip` (the other language's switch, code).
function shownTexts(target, skip) {
  return target.evaluate((skipped) => {
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement;
      if (!parent || parent.closest(`${skipped}, code, script, style, [hidden]`)) continue;
      const box = parent.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;
      out.push({ text: node.textContent });
    }
    for (const element of document.querySelectorAll("[aria-label], [title], [placeholder], img[alt]")) {
      if (element.closest(`${skipped}, [hidden]`)) continue;
      for (const attribute of ["aria-label", "title", "placeholder", "alt"]) {
        const text = element.getAttribute(attribute);
        if (text) out.push({ text, attribute });
      }
    }
    out.push({ text: document.title, attribute: "title" });
    return out;
  }, skip);
}

// Every `pattern` match in what the screen shows, after taking out the `allowed` texts (the
// longest first: 幸福社区第一网格 before 幸福社区).
async function foundOnScreen(target, skip, pattern, allowed) {
  const longestFirst = [...allowed].sort((a, b) => b.length - a.length);
  const found = new Set();
  for (const { text, attribute } of await shownTexts(target, skip)) {
    const rest = longestFirst.reduce((left, name) => left.replaceAll(name, ""), text);
    for (const match of rest.match(pattern) || []) found.add(attribute ? `${match} (${attribute})` : match);
  }
  return [...found];
}

// A zh-CN screen shows no English: no word of two or more Latin letters, except inside
// elements marked `lang="en"` (the switch to English), code and what the caller names in
// `allowed` (proper names, codes the person typed).
export async function assertNoEnglish(target, label, allowed = []) {
  const words = await foundOnScreen(target, '[lang="en"]', /(?<![A-Za-z])[A-Za-z]{2,}(?![A-Za-z])/g, allowed);
  if (words.length > 0) throw new Error(`English on the zh-CN screen ${label}: ${words.join(", ")}`);
}

// An English screen shows no Chinese: no CJK character, except inside elements marked
// `lang="zh-CN"` (the switch back to Chinese), code, and what the caller names in `allowed`
// (names and words people gave: 幸福社区, 王阿姨, a ticket's title).
export async function assertNoChinese(target, label, allowed = []) {
  const runs = await foundOnScreen(target, '[lang|="zh"]', /[\u3400-\u9fff][\u3400-\u9fff\u3000-\u303f\uff00-\uffef]*/g, allowed);
  if (runs.length > 0) throw new Error(`Chinese on the English screen ${label}: ${runs.join(", ")}`);
}

// The message catalogues (host/src/web/app/messages) as the page loaded them: the same keys
// in zh-CN and en, no English word in a zh-CN text (but the formats and names listed) and no
// Chinese in an en text (but the switch back to Chinese). Texts that are functions are
// called with stand-in values.
export async function assertCatalogues(page) {
  const problems = await page.evaluate(() => {
    const standIn = new Proxy(function () {}, { get: (_, key) => (key === Symbol.toPrimitive ? () => "7" : standIn), apply: () => "7" });
    const leaves = (value, path, out) => {
      if (typeof value === "function") value = value(standIn, standIn, standIn);
      if (typeof value === "string") out[path] = value;
      else if (value && typeof value === "object") for (const [key, inner] of Object.entries(value)) leaves(inner, path ? `${path}.${key}` : key, out);
      return out;
    };
    const zh = leaves(LinliMessages["zh-CN"], "", {});
    const en = leaves(LinliMessages.en, "", {});
    const out = [];
    for (const key of Object.keys(zh)) if (!(key in en)) out.push(`${key} has no English`);
    for (const key of Object.keys(en)) if (!(key in zh)) out.push(`${key} has no Chinese`);
    const formats = ["English", "CSV", "UTF", "JPEG", "PNG", "WebP", "lpkg", "ed"];
    for (const [key, text] of Object.entries(zh)) for (const word of text.match(/[A-Za-z]{2,}/g) || []) if (!formats.includes(word)) out.push(`zh-CN ${key}: ${word}`);
    for (const [key, text] of Object.entries(en)) if (/[\u3400-\u9fff]/.test(text) && !key.endsWith(".other")) out.push(`en ${key}: ${text}`);
    return out;
  });
  if (problems.length > 0) throw new Error(`The message catalogues disagree:\n${problems.join("\n")}`);
}

// Sign in to the app at `base` with a phone number and password.
export async function signInToApp(page, base, phone, password) {
  await page.goto(`${base}/app/`);
  await page.fill("#phone", phone);
  await page.fill("#password", password);
  await page.click("#login-button");
  await page.locator("#who").filter({ hasText: /\S/ }).waitFor();
}

// Open a plugin's page afresh, through the app's home: a resident from its tile, staff (who
// name `tenant`) at /t/{tenant}/p/{plugin}/ui/index.html. The page's frame locator.
export async function openService(page, base, plugin, tenant) {
  await page.goto(`${base}/app/`);
  await page.locator("#who").filter({ hasText: /\S/ }).waitFor();
  if (tenant) await page.goto(`${base}/app/#/open?url=${encodeURIComponent(`/t/${tenant}/p/${plugin}/ui/index.html`)}`);
  else await page.locator(`[data-plugin="${plugin}"]`).first().click();
  return page.frameLocator("#plugin-frame");
}
