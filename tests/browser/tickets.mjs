// A resident whose report was resolved finds the message in the app's inbox, opens the
// ticket, reads its trace and rates it. Then she reports a broken light with a photo from the
// home (报事报修) and finds it under 我的工单, the photo shown. Run by tests/tests/browser.rs:
//   node tickets.mjs BASE_URL ARTIFACT_DIR PHONE PASSWORD
// Prints {"ticket": …, "steps": […], "reported": {"id", "photo_width", "listed"}} on success;
// on failure saves a screenshot and exits non-zero.
import { writeFileSync } from "node:fs";
import { assertCatalogues, assertNoChinese, assertNoEnglish, audit, runFlow } from "./harness.mjs";

// A photo of 8×8 red pixels (PNG): the app shrinks it to a JPEG before sending it.
const PHOTO = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR4nGM4IaCHFTEMLQkAvr9BgQuV42AAAAAASUVORK5CYII=", "base64");

const [base, artifacts, phone, password] = process.argv.slice(2);
await runFlow(artifacts, async (page, shot) => {
  await page.goto(`${base}/app/`);
  await page.fill("#phone", phone);
  await page.fill("#password", password);
  await page.click("#login-button");

  const inboxLink = page.locator("#my-inbox");
  await inboxLink.waitFor();
  const label = await inboxLink.innerText();
  if (!label.includes("未读")) throw new Error(`the home page does not show unread messages: ${label} ${await page.evaluate(() => fetch("/api/inbox").then((r) => r.text()))}`);
  await shot("1-home");
  await inboxLink.click();

  const message = page.locator("#inbox article", { hasText: "您反映的问题已处理" });
  await message.waitFor();
  await shot("2-inbox");
  await audit(page, "the inbox");
  await assertNoEnglish(page, "the inbox");
  await message.locator("a").click();

  await page.locator("#ticket ol.steps li").first().waitFor();
  await audit(page, "a ticket's detail");
  await assertNoEnglish(page, "a ticket's detail");
  const steps = await page.locator("#ticket ol.steps li").allInnerTexts();
  const trace = steps.join(" | ");
  for (const expected of ["创建", "派单", "接单", "办结", "已更换灯泡"]) {
    if (!trace.includes(expected)) throw new Error(`the trace does not show ${expected}: ${trace}`);
  }
  const details = await page.locator("#ticket").innerText();
  if (!details.includes("当前责任层级：幸福社区")) throw new Error(`the responsible level is not named: ${details}`);
  await shot("3-ticket");
  await page.selectOption("#rating", "5");
  await page.click("#rate");
  await page.locator("#ticket", { hasText: "已关闭" }).waitFor();
  await shot("4-rated");
  const ticket = decodeURIComponent(new URL(page.url()).hash.replace("#/ticket/", ""));

  // 报事报修 from the home, with a photo.
  await page.goto(`${base}/app/#/home`);
  await page.click("#report-problem");
  await page.locator("#report-form").waitFor();
  await audit(page, "the report form");
  await assertNoEnglish(page, "the report form");
  await page.selectOption("#report-category", "repair");
  await page.fill("#report-title-input", "单元门禁坏了");
  await page.fill("#report-where", "5栋1单元");
  await page.fill("#report-description", "刷卡没有反应");
  const photoFile = `${artifacts}/photo.png`;
  writeFileSync(photoFile, PHOTO);
  await page.setInputFiles("#report-photos", photoFile);
  await shot("5-report");
  await page.click("#report-send");
  const photo = page.locator("#ticket .photos img").first();
  await photo.waitFor();
  await page.waitForFunction(() => document.querySelector("#ticket .photos img")?.complete);
  const photoWidth = await photo.evaluate((img) => img.naturalWidth);
  const reported = decodeURIComponent(new URL(page.url()).hash.replace("#/ticket/", ""));
  await audit(page, "a reported ticket with its photo");
  await assertNoEnglish(page, "a reported ticket");
  await shot("6-reported");
  await page.goto(`${base}/app/#/tickets`);
  await page.locator(`#tickets article[data-ticket="${reported}"]`).waitFor();
  const listed = await page.locator(`#tickets article[data-ticket="${reported}"]`).innerText();

  // A failure in her words, from the host's error code: a ticket that is not there.
  await assertCatalogues(page);
  await page.goto(`${base}/app/#/ticket/00000000-0000-7000-8000-000000000000`);
  const missing = page.locator('p.error[data-code="not-found"]');
  const notFound = [await missing.innerText()];
  await assertNoEnglish(page, "a failure");

  // The same app in English: no Chinese but the names and words people gave, and messages as
  // they were sent (the host writes its notices in Chinese: it does not know who reads them in
  // English, a choice kept on the device).
  const typed = ["王阿姨", "幸福社区", "楼道灯坏了", "3栋2单元", "单元门禁坏了", "5栋1单元", "刷卡没有反应", "已更换灯泡", "维修师傅", "赵社工", "您反映的问题已处理："];
  await page.click("#lang");
  await page.locator('p.error[data-code="not-found"]', { hasText: "Not found" }).waitFor();
  notFound.push(await missing.innerText());
  await assertNoChinese(page, "a failure", typed);
  for (const [tab, ready, label] of [["#tab-home", "#service-groups, #report-problem", "the home"], ["#tab-services", "#view h1", "services"], ["#tab-me", "#view h1", "me"]]) {
    await page.click(tab);
    await page.locator(ready).first().waitFor();
    await audit(page, `${label} in English`);
    await assertNoChinese(page, `${label}`, typed);
  }
  await page.goto(`${base}/app/#/ticket/${encodeURIComponent(reported)}`);
  await page.locator("#ticket ol.steps li").first().waitFor();
  await assertNoChinese(page, "a reported ticket", typed);
  await page.goto(`${base}/app/#/report`);
  await page.locator("#report-form").waitFor();
  await assertNoChinese(page, "the report form", typed);
  await shot("7-english");
  return { ticket, steps, reported: { id: reported, photo_width: photoWidth, listed }, not_found: notFound };
});
