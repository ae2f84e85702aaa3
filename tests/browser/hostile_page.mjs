// A hostile plugin's page (tests/plugins/intruder) opened by real people: each signs in to
// the app, opens the page inside it, then the same page on its own (top-level), then a
// dynamic route of the plugin that answers HTML with a script and a Set-Cookie for the
// session. Run by tests/tests/browser.rs:
//   node hostile_page.mjs BASE_URL ARTIFACT_DIR TENANT PAGE_QUERY PHONE:PASSWORD[:console]…
// (`:console`: the person also opens the page in the console, as staff do.)
// Prints {PHONE: {framed, top_level, html_route, app_url_kept, session_kept, cookie_kept,
// console?, console_url_kept?}}.
import { runFlow } from "./harness.mjs";

const [base, artifacts, tenant, query, ...accounts] = process.argv.slice(2);
const pageUrl = `/t/${tenant}/p/test-intruder/ui/index.html?${query}`;

async function results(frameOrPage) {
  await frameOrPage.locator("body[data-done='1']").waitFor({ timeout: 30000 });
  return JSON.parse(await frameOrPage.locator("#results").innerText());
}

await runFlow(artifacts, async (first, shot, person) => {
  const out = {};
  for (const [index, account] of accounts.entries()) {
    const [phone, password, alsoConsole] = account.split(":");
    const page = index === 0 ? first : await person();
    page.on("console", (m) => console.error(`[${phone} console] ${m.text()}`));
    page.on("pageerror", (e) => console.error(`[${phone} page error] ${e}`));
    await page.goto(`${base}/app/`);
    await page.fill("#phone", phone);
    await page.fill("#password", password);
    await page.click("#login-button");
    await page.locator("#who").filter({ hasText: /\S/ }).waitFor();
    const session = async () => (await page.context().cookies()).find((c) => c.name === "linli_session")?.value;
    const before = await session();

    // Inside the app, in its sandboxed frame.
    const appUrl = `${base}/app/#/open?url=${encodeURIComponent(pageUrl)}`;
    await page.goto(appUrl);
    // A resident is shown the consent screen the page asks for once; they decline.
    const frame = page.frameLocator("#plugin-frame");
    const asked = await Promise.race([
      page.locator("#consent-dialog").waitFor().then(() => true),
      frame.locator("body[data-done='1']").waitFor({ timeout: 30000 }).then(() => false),
    ]);
    if (asked) await page.click("#consent-decline");
    const framed = await results(frame).catch(async (e) => {
      await shot(`${phone}-failure`, page);
      throw e;
    });
    await page.waitForTimeout(500);
    const appUrlKept = page.url() === appUrl;
    const dialogsLeft = await page.locator("#consent-dialog").count();
    await shot(`${phone}-1-framed`, page);
    // Still signed in: neither the forged logout nor anything else ended the session.
    const me = await page.evaluate(async () => (await fetch("/api/me", { credentials: "same-origin" })).status);

    // The same page opened on its own.
    const alone = await person();
    await alone.context().addCookies(await page.context().cookies());
    await alone.goto(`${base}${pageUrl}`);
    const topLevel = await results(alone);
    await shot(`${phone}-2-top-level`, alone);

    // A dynamic route answering HTML with a script and Set-Cookie: linli_session=attacker.
    await alone.goto(`${base}/t/${tenant}/p/test-intruder/html`);
    await alone.waitForFunction(() => document.title === "done");
    const htmlRoute = JSON.parse(await alone.locator("#out").innerText());
    const cookies = await alone.context().cookies();
    const cookieKept = cookies.some((c) => c.name === "linli_session" && c.value === before) && !cookies.some((c) => c.value === "attacker");
    await alone.close();

    out[phone] = { framed, consent_asked: asked, consent_dialogs_left: dialogsLeft, top_level: topLevel, html_route: htmlRoute, app_url_kept: appUrlKept, me_status: me, session_kept: (await session()) === before, cookie_kept: cookieKept };

    if (alsoConsole === "console") {
      // The console shows a plugin's (staff) page the same way: sandboxed, behind the bridge.
      const desk = await person();
      desk.on("pageerror", (e) => console.error(`[${phone} console page error] ${e}`));
      await desk.goto(`${base}/console/`);
      await desk.fill("#phone", phone);
      await desk.fill("#password", password);
      await desk.click("#login-button");
      await desk.locator("#nav:not([hidden])").waitFor();
      const deskUrl = `${base}/console/#/page?plugin=test-intruder&url=${encodeURIComponent(pageUrl)}`;
      await desk.goto(deskUrl);
      out[phone].console = await results(desk.frameLocator("#plugin-frame"));
      await desk.waitForTimeout(500);
      out[phone].console_url_kept = desk.url() === deskUrl;
      out[phone].console_me = await desk.evaluate(async () => (await fetch("/admin/me", { credentials: "same-origin" })).status);
      await shot(`${phone}-3-console`, desk);
      await desk.close();
    }
  }
  return out;
});
