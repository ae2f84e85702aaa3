// A resident logs in to the app, opens legal aid, consents to share their ID number,
// applies and sees the receipt. Run by tests/tests/browser.rs:
//   node legal_aid.mjs BASE_URL ARTIFACT_DIR PHONE PASSWORD
// Prints {"receipt": …} on success; on failure saves a screenshot and exits non-zero.
import { assertNoChinese, assertNoEnglish, audit, pluginFrame, runFlow } from "./harness.mjs";

const [base, artifacts, phone, password] = process.argv.slice(2);
await runFlow(artifacts, async (page, shot) => {
  await page.goto(`${base}/app/`);
  await page.fill("#phone", phone);
  await page.fill("#password", password);
  await shot("1-login");
  await page.click("#login-button");

  const legalAid = page.locator('[data-plugin="legal-aid"]');
  await legalAid.waitFor();
  await shot("2-home");
  await audit(page, "the app's home");
  await legalAid.click();

  let frame = page.frameLocator("#plugin-frame");
  await frame.locator("#category option").first().waitFor({ state: "attached" });
  await frame.locator("#category").selectOption("劳动争议");
  await frame.locator("#facts").fill("公司拖欠三个月工资共计一万二千元，多次催要未果。");
  await frame.locator("#documents").fill("劳动合同、工资条");
  await frame.locator("#submit").click();

  // Not consented yet: the page asks the app (the bridge), and the app shows, over the
  // page, what legal aid asks for and why. The page itself never sees the screen.
  await page.locator("#consent-dialog #consent-agree").waitFor();
  const consentText = await page.locator("#consent").innerText();
  await audit(page, "the consent screen over the legal-aid page");
  await assertNoEnglish(page, "the consent screen", ["linli"]);
  for (const expected of ["法律援助", "身份证号", "实名姓名"]) {
    if (!consentText.includes(expected)) throw new Error(`the consent screen does not mention ${expected}: ${consentText}`);
  }
  const typed = await frame.locator("#facts").inputValue();
  if (!typed.includes("拖欠")) throw new Error(`the page lost what was typed: ${typed}`);
  await shot("3-consent");
  await page.click("#consent-agree");

  // Agreed: the application goes in as it was typed, without typing it again.
  frame = page.frameLocator("#plugin-frame");
  const receipt = (await frame.locator("#receipt-number").innerText()).trim();
  await shot("4-receipt");
  if (!/^FY\d{8}-\d{4}$/.test(receipt)) throw new Error(`unexpected receipt number ${receipt}`);
  const listed = await frame.locator(`#mine [data-receipt="${receipt}"]`).innerText();
  if (!listed.includes("待审查")) throw new Error(`the application is not listed as waiting for review: ${listed}`);
  await assertNoEnglish(await pluginFrame(page), "legal aid with an application", ["FY"]);

  // The page in English: its words follow the app; the application stays as she wrote it.
  const applicant = listed.split("\n").find((line) => line.includes("申请日"))?.split(" · ")[0] || "";
  await page.click("#lang");
  await frame.locator(`#mine [data-receipt="${receipt}"] .state`, { hasText: "Waiting for review" }).waitFor();
  await audit(await pluginFrame(page), "legal aid in English");
  await assertNoChinese(await pluginFrame(page), "legal aid", [typed, "劳动合同、工资条", applicant].filter(Boolean));
  await shot("5-english");
  await page.click("#lang");

  // My consents lists legal aid, and can withdraw it.
  await page.goto(`${base}/app/#/consents`);
  await page.locator('[data-subject="legal-aid"]').waitFor();
  await shot("6-consents");
  return { receipt };
});
