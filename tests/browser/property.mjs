// Property services in the app: a resident reports a leak with a photo; the property office
// (a second person, in the same plugin page) resolves it; she rates it. She consents to her
// house being looked up, pays her bill through the demo gateway and sees the receipt and the
// balance; she issues a visitor pass and the gate acknowledges it. The page passes axe-core
// in the normal and the elder-friendly mode. Run by tests/tests/browser.rs:
//   node property.mjs BASE_URL ARTIFACT_DIR PHONE OFFICE_PHONE PASSWORD
// Prints {"receipt", "balance", "rated", "gate"} on success.
import { writeFileSync } from "node:fs";
import { assertElderTargets, assertNoEnglish, audit, openService, pluginFrame, runFlow, signInToApp } from "./harness.mjs";

const [base, artifacts, phone, officePhone, password] = process.argv.slice(2);
// An 8×8 PNG, the "photo" of the leak.
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR4nGOQm/AfK2IYWhIAr+9rQUHkcqkAAAAASUVORK5CYII=", "base64");

const signIn = async (page, who, staff = false) => {
  await signInToApp(page, base, who, password);
  return reopen(page, staff);
};
const reopen = (page, staff = false) => openService(page, base, "property", staff ? "xingfu" : undefined);

await runFlow(artifacts, async (page, shot, person) => {
  const photo = `${artifacts}/leak.png`;
  writeFileSync(photo, PNG);
  let frame = await signIn(page, phone);
  await frame.locator("#repair-kind option").first().waitFor({ state: "attached" });
  await audit(await pluginFrame(page), "the property page");
  await assertNoEnglish(await pluginFrame(page), "the property page");
  await frame.locator("#repair-kind").selectOption("water");
  await frame.locator("#repair-location").fill("3栋2单元501 厨房");
  await frame.locator("#repair-description").fill("厨房水管接口漏水，地面有积水");
  await frame.locator("#repair-photo").setInputFiles(photo);
  await frame.locator("#repair-send").click();
  await frame.locator("#status.ok, #status.error:not(:empty)").waitFor();
  const sent = await frame.locator("#status").innerText();
  if (!sent.includes("照片已上传")) throw new Error(`the report or its photo failed: ${sent}`);
  await frame.locator('#my-repairs .repair[data-status="open"]').waitFor();
  await shot("1-reported");

  // The property office, in its own browser, resolves it from the same page.
  const office = await person();
  const officeFrame = await signIn(office, officePhone, true);
  await officeFrame.locator("#office:not([hidden]) .resolve").first().waitFor();
  await audit(await pluginFrame(office), "the property page, office part");
  await officeFrame.locator("#office [data-office-repair] input").first().fill("已更换厨房水管接口");
  await officeFrame.locator("#office .resolve").first().click();
  await officeFrame.locator("#status.ok").waitFor();
  await shot("2-resolved", office);

  // She sees it resolved and rates it.
  frame = await reopen(page);
  await frame.locator('#my-repairs .repair[data-status="resolved"] .rate').waitFor();
  await frame.locator("#my-repairs .rating").first().selectOption("5");
  await frame.locator("#my-repairs .rate").first().click();
  await frame.locator('#my-repairs .repair[data-status="closed"]').waitFor();
  const rated = await frame.locator('#my-repairs .repair[data-status="closed"]').innerText();

  // Her fees: the app asks her consent first, then the bill; she pays and gets a receipt.
  await frame.locator("#fees-load").click();
  await page.locator("#consent-dialog #consent-agree").waitFor();
  await audit(page, "the consent screen over the property page");
  await page.click("#consent-agree");
  frame = page.frameLocator("#plugin-frame");
  await frame.locator('#bills .bill[data-status="unpaid"] .pay').first().click();
  await frame.locator("#confirm-pay").click();
  await frame.locator("#receipt").waitFor();
  const receipt = await frame.locator("#receipt").innerText();
  await frame.locator('#bills .bill[data-status="paid"]').first().waitFor();
  const balance = await frame.locator("#fees-summary").getAttribute("data-balance");
  await shot("3-receipt");

  // A visitor pass: the gate takes the plate.
  await frame.locator("#pass-visitor").fill("女儿小红");
  await frame.locator("#pass-plate").fill("浙A66666");
  await frame.locator("#pass-send").click();
  await frame.locator("#my-passes .pass[data-gate]").first().waitFor();
  const gate = await frame.locator("#my-passes .pass").first().getAttribute("data-gate");
  await shot("4-pass");

  // The elder-friendly mode: larger text and targets, still no serious finding.
  await page.goto(`${base}/app/`);
  await page.click("#elder");
  await page.locator('html.elder .tiles button[data-plugin="property"]').click();
  await page.frameLocator("#plugin-frame").locator("html.elder #repair-send").waitFor();
  const elderPage = await pluginFrame(page);
  await audit(elderPage, "the property page, elder mode");
  await assertElderTargets(elderPage, "the property page");
  await shot("5-elder");
  return { receipt, balance: Number(balance), rated, gate };
});
