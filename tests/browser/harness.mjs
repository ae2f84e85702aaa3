// What every browser flow shares: Debian's Chromium through playwright-core, a phone-sized
// zh-CN page, screenshots into the artifact folder, the flow's result printed as JSON on
// the last line, and on failure a screenshot and a non-zero exit.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

// `viewport` sizes every page of the flow: a phone by default, wider for the console.
export async function runFlow(artifacts, flow, { viewport = { width: 420, height: 900 } } = {}) {
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
  // Each person gets a browser context of their own (their own cookies).
  const person = async () => {
    const page = await browser.newPage({ viewport, locale: "zh-CN" });
    page.setDefaultTimeout(15000);
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
