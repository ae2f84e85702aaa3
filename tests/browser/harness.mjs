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

// A zh-CN screen shows no English: every visible text has no word of two or more Latin
// letters, except inside elements marked `lang="en"` (the switch to English), code and
// what the caller names in `allowed` (proper names, codes the person typed).
export async function assertNoEnglish(target, label, allowed = []) {
  const words = await target.evaluate((allowedWords) => {
    const found = new Set();
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement;
      if (!parent || parent.closest('[lang="en"], code, script, style, [hidden]')) continue;
      const box = parent.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;
      for (const word of node.textContent.match(/[A-Za-z]{2,}/g) || []) if (!allowedWords.includes(word)) found.add(word);
    }
    for (const element of document.querySelectorAll("[aria-label], [title], [placeholder], img[alt]")) {
      if (element.closest('[lang="en"], [hidden]')) continue;
      for (const attribute of ["aria-label", "title", "placeholder", "alt"]) {
        for (const word of element.getAttribute(attribute)?.match(/[A-Za-z]{2,}/g) || []) if (!allowedWords.includes(word)) found.add(`${word} (${attribute})`);
      }
    }
    return [...found];
  }, allowed);
  if (words.length > 0) throw new Error(`English on the zh-CN screen ${label}: ${words.join(", ")}`);
}
