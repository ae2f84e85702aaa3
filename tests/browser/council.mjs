// The community council in the app: 王阿姨 votes on a proposal (the app asks her consent to
// find her household first); her husband's vote is refused, one vote per household; the
// community worker closes the vote and the result shows; she signs up for an activity, the
// worker marks her present, and she redeems her points. The page passes axe-core in the
// normal and the elder-friendly mode. Run by tests/tests/browser.rs:
//   node council.mjs BASE_URL ARTIFACT_DIR PHONE HUSBAND_PHONE WORKER_PHONE PASSWORD
// Prints {"refused", "result", "redeemed", "balance"} on success.
import { assertElderTargets, assertNoEnglish, audit, openService, pluginFrame, runFlow, signInToApp } from "./harness.mjs";

const [base, artifacts, phone, husbandPhone, workerPhone, password] = process.argv.slice(2);

const signIn = async (page, who, staff = false) => {
  await signInToApp(page, base, who, password);
  return open(page, staff);
};
const open = (page, staff = false) => openService(page, base, "council", staff ? "xingfu" : undefined);

await runFlow(artifacts, async (page, shot, person) => {
  let frame = await signIn(page, phone);
  await frame.locator('.proposal[data-status="open"] .vote[data-choice="yes"]').waitFor();
  await audit(await pluginFrame(page), "the council page");
  await assertNoEnglish(await pluginFrame(page), "the council page");
  await frame.locator('.proposal .vote[data-choice="yes"]').first().click();
  await page.locator("#consent-dialog #consent-agree").waitFor();
  await page.click("#consent-agree");
  frame = page.frameLocator("#plugin-frame");
  await frame.locator("#status.ok").waitFor();
  await shot("1-voted");

  const husband = await person();
  let husbandFrame = await signIn(husband, husbandPhone);
  await husbandFrame.locator('.proposal .vote[data-choice="no"]').first().click();
  await husband.locator("#consent-dialog #consent-agree").waitFor();
  await husband.click("#consent-agree");
  husbandFrame = husband.frameLocator("#plugin-frame");
  await husbandFrame.locator("#status.error:not(:empty)").waitFor();
  const refused = await husbandFrame.locator("#status").innerText();
  await shot("2-refused", husband);

  const worker = await person();
  const workerFrame = await signIn(worker, workerPhone, true);
  await workerFrame.locator("#staff:not([hidden])").waitFor();
  await audit(await pluginFrame(worker), "the council page, staff part");
  await workerFrame.locator(".proposal .close").first().click();
  await workerFrame.locator('.proposal[data-status="closed"] .result').waitFor();
  const result = await workerFrame.locator(".proposal .result").first().innerText();
  await shot("3-closed", worker);

  // She signs up; the worker marks her present; her points arrive and she redeems them.
  frame = await open(page);
  await frame.locator(".activity .signup").first().click();
  await frame.locator('.activity[data-mine="signed"]').waitFor();
  const attendance = await open(worker, true);
  await attendance.locator("[data-attendance] input[type=checkbox]").first().check();
  await attendance.locator("[data-attendance] .mark").first().click();
  await attendance.locator("#status.ok").waitFor();
  frame = await open(page);
  await frame.locator('.activity[data-mine="present"]').waitFor();
  await frame.locator(".reward .redeem").first().click();
  await frame.locator("#status.ok, #status.error:not(:empty)").waitFor();
  const redeemed = await frame.locator("#status").innerText();
  const balance = Number(await frame.locator("#points-balance").innerText());
  await shot("4-redeemed");

  await page.goto(`${base}/app/`);
  await page.click("#elder");
  await page.locator('html.elder .tiles button[data-plugin="council"]').click();
  await page.frameLocator("#plugin-frame").locator("html.elder .proposal").first().waitFor();
  const elderPage = await pluginFrame(page);
  await audit(elderPage, "the council page, elder mode");
  await assertElderTargets(elderPage, "the council page");
  await shot("5-elder");
  return { refused, result, redeemed, balance };
});
