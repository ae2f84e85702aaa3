// "Sign in with Linli" from a vendor's web app, in the browser: the authorize URL sends a
// signed-out resident to the app's login, back to the consent screen, and on "allow" to
// the vendor's callback with a code. Run by tests/tests/browser.rs:
//   node oidc_sign_in.mjs AUTHORIZE_URL CALLBACK_PREFIX ARTIFACT_DIR PHONE PASSWORD
// Prints {"callback": URL} on success; on failure saves a screenshot and exits non-zero.
import { runFlow } from "./harness.mjs";

const [authorize, callback, artifacts, phone, password] = process.argv.slice(2);
await runFlow(artifacts, async (page, shot) => {
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
  return { callback: page.url() };
});
