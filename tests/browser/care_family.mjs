// 王阿姨 in the elder-friendly mode opens 智慧养老: after her consent, her own page (no staff
// form); she adds her daughter as an emergency contact and invites her. Her daughter, in
// another browser, declines to link her own record, enters the code and follows her mother;
// the fall button at the mother's home goes off and the daughter's page shows it. Then the
// mother presses 一键求助 from her care page: the app's confirmation, the call, the text to
// her daughter and the duty line to ring. axe-core, elder target sizes and the no-English
// check on every screen of hers. Run by tests/tests/browser.rs:
//   node care_family.mjs BASE_URL ARTIFACT_DIR ELDER_PHONE DAUGHTER_PHONE PASSWORD DEVICE SECRET
// Then what is new for each on the home, and her screens in English through axe.
// Prints {"code", "contacts", "daughter_sees", "texted", "call", "mother_news", "daughter_news"}.
import { assertElderTargets, assertNoEnglish, audit, pluginFrame, runFlow } from "./harness.mjs";

const [base, artifacts, elderPhone, daughterPhone, password, device, secret] = process.argv.slice(2);

async function logIn(page, phone) {
  await page.goto(`${base}/app/`);
  await page.fill("#phone", phone);
  await page.fill("#password", password);
  await page.click("#login-button");
  await page.locator("#who").filter({ hasText: /\S/ }).waitFor();
}

// Her screens: no serious axe finding, every control ≥ 60 px, no English word.
async function checkScreen(target, label, allowed = []) {
  await audit(target, label);
  await assertElderTargets(target, label);
  await assertNoEnglish(target, label, allowed);
}

await runFlow(artifacts, async (mother, shot, person) => {
  await logIn(mother, elderPhone);
  await mother.click("#elder");
  await mother.locator("#help-button.tile").waitFor();
  await checkScreen(mother, "the elder home");

  // Her care page: the consent to link her record, then her own page.
  await mother.locator('.tiles [data-plugin="elderly-care"]').click();
  await mother.locator("#consent-agree").click();
  const care = mother.frameLocator("#plugin-frame");
  await care.locator("#mine:not([hidden])").waitFor();
  if (await care.locator("#staff").isVisible()) throw new Error("the elder was shown the care desk");
  await care.locator("#contact-name").fill("王小红");
  await care.locator("#contact-relation").fill("女儿");
  await care.locator("#contact-phone").fill(daughterPhone);
  await care.locator("#contact-add").click();
  await care.locator("#mine-contacts").filter({ hasText: "王小红" }).waitFor();
  await care.locator("#invite").click();
  const code = (await care.locator("#invite-value").innerText()).trim();
  if (!/^\d{8}$/.test(code)) throw new Error(`no invitation code: ${code}`);
  const contacts = await care.locator("#mine-contacts").innerText();
  await checkScreen(await pluginFrame(mother), "her care page");
  await shot("1-her-care-page", mother);

  // Her daughter follows her with the code, without linking a record of her own.
  const daughter = await person();
  await logIn(daughter, daughterPhone);
  await daughter.locator('#service-groups [data-plugin="elderly-care"]').first().click();
  await daughter.locator("#consent-decline").click();
  let family = daughter.frameLocator("#plugin-frame");
  await family.locator("#mine-consent:not([hidden])").waitFor();
  await family.locator("#join-code").fill(code);
  await family.locator("#join").click();
  await family.locator("#family-list [data-elder]").filter({ hasText: "王阿姨" }).waitFor();
  await audit(await pluginFrame(daughter), "the family page");

  // The fall button at her mother's home; the daughter's page shows it when she looks again.
  const pressed = await fetch(`${base}/api/devices/${encodeURIComponent(device)}/telemetry`, {
    method: "POST", headers: { authorization: `Bearer ${secret}` }, body: JSON.stringify({ pressed: 1 }),
  });
  if (pressed.status !== 202) throw new Error(`the device was refused: ${pressed.status}`);
  let daughterSees = "";
  for (let i = 0; i < 30 && !daughterSees; i++) {
    await daughter.reload();
    family = daughter.frameLocator("#plugin-frame");
    await family.locator("#family-list [data-elder]").waitFor();
    const alert = family.locator("#family-list [data-alert]");
    if (await alert.count()) daughterSees = await alert.first().innerText();
    else await daughter.waitForTimeout(1000);
  }
  if (!daughterSees.includes("跌倒求助")) throw new Error(`the daughter's page shows no fall: ${daughterSees}`);
  await shot("2-daughter-sees-the-fall", daughter);

  // 一键求助 from her care page: the app's confirmation, then the call.
  await care.locator("#mine-help").click();
  await mother.locator("#help-plan").filter({ hasText: "王小红" }).waitFor();
  await checkScreen(mother, "the help confirmation");
  await shot("3-help-confirm", mother);
  await mother.locator("#help-confirm").click();
  await mother.locator("#help-result").waitFor();
  const texted = await mother.locator("#help-texted").innerText();
  const call = await mother.locator("#help-call").getAttribute("href");
  await checkScreen(mother, "the help result");
  await shot("4-help-sent", mother);
  // The call is on her tickets, urgent.
  await mother.locator("#help-ticket").click();
  await mother.locator("#ticket").filter({ hasText: "一键求助" }).waitFor();
  // What is new for each of them on the home: her call's ticket; her daughter's message.
  await mother.click("#tab-home");
  const motherNews = await mother.locator("#whats-new").filter({ hasText: "一键求助" }).innerText();
  await checkScreen(mother, "the elder home with news");
  await daughter.goto(`${base}/app/#/home`);
  const daughterNews = await daughter.locator("#whats-new").filter({ hasText: "跌倒求助" }).innerText();
  await audit(daughter, "the home with news");
  // The same screens in English pass axe too.
  await mother.click("#lang");
  await mother.locator("#whats-new").filter({ hasText: "New for you" }).waitFor();
  await audit(mother, "the elder home in English");
  await mother.click("#help-button");
  await mother.locator("#help-plan").waitFor();
  await audit(mother, "the help confirmation in English");
  await shot("5-help-in-english", mother);
  return { code, contacts, daughter_sees: daughterSees, texted, call, mother_news: motherNews, daughter_news: daughterNews };
}, { viewport: { width: 390, height: 844 } });
