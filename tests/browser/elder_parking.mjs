// A resident switches the app to the elder-friendly mode (适老化), opens shared parking
// from the simplified home, books a space for their plate, and finds it under 我的预约.
// Run by tests/tests/browser.rs:
//   node elder_parking.mjs BASE_URL ARTIFACT_DIR PHONE PASSWORD PLATE
// Prints {"font_px", "booked", "listed"} on success.
import { assertElderTargets, assertNoEnglish, audit, pluginFrame, runFlow } from "./harness.mjs";

const [base, artifacts, phone, password, plate] = process.argv.slice(2);
await runFlow(artifacts, async (page, shot) => {
  await page.goto(`${base}/app/`);
  await page.fill("#phone", phone);
  await page.fill("#password", password);
  await page.click("#login-button");
  await page.locator("#plugins").waitFor();
  await shot("1-standard");
  await audit(page, "the app's home");
  await assertNoEnglish(page, "the app's home");

  await page.click("#elder");
  await page.locator("html.elder .tiles").waitFor();
  const fontPx = await page.evaluate(() => parseFloat(getComputedStyle(document.documentElement).fontSize));
  const tileHeight = await page.locator('.tiles button[data-plugin="parking"]').evaluate((b) => b.getBoundingClientRect().height);
  if (fontPx < 20 || tileHeight < 64) throw new Error(`elder mode: type ${fontPx}px, tile ${tileHeight}px`);
  await shot("2-elder-home");
  await audit(page, "the app's home, elder mode");
  await assertElderTargets(page, "the app's home");
  await assertNoEnglish(page, "the app's home, elder mode");

  await page.click('.tiles button[data-plugin="parking"]');
  const frame = page.frameLocator("#plugin-frame");
  await frame.locator("html.elder #search").waitFor();
  const parkingPage = await pluginFrame(page);
  await audit(page, "the app around the parking page, elder mode");
  await assertElderTargets(page, "the app around the parking page");
  await audit(parkingPage, "the parking page, elder mode");
  await assertElderTargets(parkingPage, "the parking page");
  await assertNoEnglish(parkingPage, "the parking page");
  await frame.locator("#plate").fill(plate);
  await frame.locator("#search").click();
  await frame.locator(".offer button.book").first().click();
  // The plugin's answer either way, so a refusal fails with its reason rather than a timeout.
  await frame.locator("#status.ok, #status.error:not(:empty)").waitFor();
  if (await frame.locator("#status.error").count()) throw new Error(`the booking was refused: ${await frame.locator("#status").innerText()}`);
  const booked = await frame.locator("#status").innerText();
  await frame.locator('#my-bookings .booking[data-status="booked"]').first().waitFor();
  await shot("3-booked");

  await page.goto(`${base}/app/#/bookings`);
  await page.locator("#bookings article[data-booking]").first().waitFor();
  const listed = await page.locator("#bookings article[data-booking]").allInnerTexts();
  await shot("4-my-bookings");
  await audit(page, "my bookings, elder mode");
  await assertElderTargets(page, "my bookings");
  await assertNoEnglish(page, "my bookings", [plate.replace(/[^A-Za-z]/g, "")].filter((w) => w.length > 1));
  return { font_px: fontPx, booked, listed };
});
