// Property services in the app: a resident chooses 物业维修 in the app's 报事报修, which opens
// the property page's repair form, and reports a leak with a photo; the community worker (a
// second person, in the same plugin page) dispatches it to the community's property company,
// whose staff member (a third) resolves it; she rates it. She consents to her house being
// looked up, pays her bill through the demo gateway and sees the receipt and the balance; she
// issues a visitor pass and the gate acknowledges it. The pages pass axe-core in the normal
// and the elder-friendly mode. Run by tests/tests/browser.rs:
//   node property.mjs BASE_URL ARTIFACT_DIR PHONE OFFICE_PHONE COMPANY_STAFF_PHONE PASSWORD
// Prints {"receipt", "balance", "rated", "gate", "assignee"} on success.
import { writeFileSync } from "node:fs";
import { assertElderTargets, assertNoEnglish, audit, openService, pluginFrame, runFlow, signInToApp } from "./harness.mjs";

const [base, artifacts, phone, officePhone, companyPhone, password] = process.argv.slice(2);
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
  // 报事报修 in the app: 物业维修 is the property service's, and opens its repair form.
  await signInToApp(page, base, phone, password);
  await page.goto(`${base}/app/#/report`);
  await page.locator("#report-category option", { hasText: "物业维修（智慧物业）" }).waitFor({ state: "attached" });
  const repairOption = await page.locator("#report-category option", { hasText: "物业维修（智慧物业）" }).getAttribute("value");
  await page.selectOption("#report-category", repairOption);
  await page.locator("#report-handover:not([hidden]) #report-go").waitFor();
  if (await page.locator("#report-fields").isVisible()) throw new Error("the host's own report fields stay on screen for a property repair");
  await audit(page, "the app's report form, handing over to the property service");
  await page.click("#report-go");
  let frame = page.frameLocator("#plugin-frame");
  await frame.locator("#repair-kind option").first().waitFor({ state: "attached" });
  const opened = await page.locator("#plugin-frame").getAttribute("src");
  if (!opened.includes("report=repair")) throw new Error(`the report form opened ${opened}`);
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

  // The community worker, in her own browser, sends it to the community's property company.
  const office = await person();
  const officeFrame = await signIn(office, officePhone, true);
  await officeFrame.locator("#office:not([hidden]) #company-now").waitFor();
  await audit(await pluginFrame(office), "the property page, office part");
  await officeFrame.locator('#office [data-office-repair][data-status="open"] .dispatch').first().click();
  await officeFrame.locator('#office [data-office-repair][data-status="dispatched"]').first().waitFor();
  const assignee = await officeFrame.locator('#office [data-office-repair][data-status="dispatched"]').first().innerText();
  await shot("2-dispatched", office);

  // The property company's staff member resolves it from the same page.
  const company = await person();
  const companyFrame = await signIn(company, companyPhone, true);
  await companyFrame.locator('#office:not([hidden]) [data-office-repair][data-status="dispatched"] .resolve').first().waitFor();
  if (await companyFrame.locator("#company-set").count()) throw new Error("the company's staff may choose the company");
  await companyFrame.locator("#office [data-office-repair] input").first().fill("已更换厨房水管接口");
  await companyFrame.locator("#office .resolve").first().click();
  await companyFrame.locator("#status.ok").waitFor();
  await shot("3-resolved", company);

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
  await shot("4-receipt");

  // A visitor pass: the gate takes the plate.
  await frame.locator("#pass-visitor").fill("女儿小红");
  await frame.locator("#pass-plate").fill("浙A66666");
  await frame.locator("#pass-send").click();
  await frame.locator("#my-passes .pass[data-gate]").first().waitFor();
  const gate = await frame.locator("#my-passes .pass").first().getAttribute("data-gate");
  await shot("5-pass");

  // The elder-friendly mode: larger text and targets, still no serious finding.
  await page.goto(`${base}/app/`);
  await page.click("#elder");
  await page.locator('html.elder .tiles button[data-plugin="property"]').click();
  await page.frameLocator("#plugin-frame").locator("html.elder #repair-send").waitFor();
  const elderPage = await pluginFrame(page);
  await audit(elderPage, "the property page, elder mode");
  await assertElderTargets(elderPage, "the property page");
  await shot("6-elder");
  return { receipt, balance: Number(balance), rated, gate, assignee };
});
