// "Sign in with Linli" from a vendor's web app, in the browser: the authorize URL sends a
// signed-out resident to the app's login, back to the consent screen, and on "allow" to
// the vendor's callback with a code. Run by tests/tests/browser.rs:
//   node oidc_sign_in.mjs AUTHORIZE_URL CALLBACK_PREFIX ARTIFACT_DIR PHONE PASSWORD
// Prints {"callback": URL} on success; on failure saves a screenshot and exits non-zero.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [authorize, callback, artifacts, phone, password] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 420, height: 900 }, locale: "zh-CN" });
page.setDefaultTimeout(15000);
const shot = (name) => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });
try {
  // The vendor's callback is not served here: answer it in the browser.
  await page.route(`${callback}**`, (route) => route.fulfill({ status: 200, contentType: "text/html", body: "<p id=signed-in>ok</p>" }));
  await page.goto(authorize);
  await page.fill("#phone", phone);
  await page.fill("#password", password);
  await shot("1-login");
  await page.click("#login-button");

  await page.locator("#allow").waitFor();
  const screen = await page.locator("body").innerText();
  for (const expected of ["颐养之家", "你的姓名", "同意"]) {
    if (!screen.includes(expected)) throw new Error(`the consent screen does not mention ${expected}: ${screen}`);
  }
  await shot("2-consent");
  await page.click("#allow");
  await page.locator("#signed-in").waitFor();
  console.log(JSON.stringify({ callback: page.url() }));
} catch (e) {
  await shot("failure").catch(() => {});
  console.error(String(e?.stack || e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
