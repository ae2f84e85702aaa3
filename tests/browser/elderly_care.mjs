// A community worker opens 智慧养老 (elderly care) in the app — a plugin page in its sandbox,
// every call through the app's bridge — builds the archive from the base data and records a
// visit. Run by tests/tests/browser.rs:
//   node elderly_care.mjs BASE_URL ARTIFACT_DIR PHONE PASSWORD TENANT
// Prints {"elders", "stats"} on success.
import { assertNoChinese, assertNoEnglish, audit, pluginFrame, runFlow } from "./harness.mjs";

const [base, artifacts, phone, password, tenant] = process.argv.slice(2);
await runFlow(artifacts, async (page, shot) => {
  await page.goto(`${base}/app/`);
  await page.fill("#phone", phone);
  await page.fill("#password", password);
  await page.click("#login-button");
  await page.locator("#who").filter({ hasText: /\S/ }).waitFor();
  await page.goto(`${base}/app/#/open?url=${encodeURIComponent(`/t/${tenant}/p/elderly-care/ui/index.html`)}`);
  const frame = page.frameLocator("#plugin-frame");
  await frame.locator("#stats").filter({ hasText: "档案 0 人" }).waitFor();
  await shot("1-empty");
  await audit(await pluginFrame(page), "the elderly-care page");

  await frame.locator("#sync").click();
  await frame.locator("#elders .card").first().waitFor();
  const elders = await frame.locator("#elders .card").allInnerTexts();
  await frame.locator("#record-kind").selectOption("visit");
  await frame.locator("#record-note").fill("上门探访，老人身体无恙");
  await frame.locator("#record-button").click();
  await frame.locator("#stats").filter({ hasText: "服务记录 1 条" }).waitFor();
  const stats = await frame.locator("#stats").innerText();
  // The frame follows the page's height: nothing scrolls inside it.
  const fits = await page.locator("#plugin-frame").evaluate((f) => f.getBoundingClientRect().height >= 600);
  if (!fits) throw new Error("the frame did not grow to the page's height");
  await shot("2-recorded");
  await assertNoEnglish(await pluginFrame(page), "the care desk");

  // The care desk in English: the archive's names and addresses stay as the county keeps them.
  await page.click("#lang");
  await frame.locator("#stats").filter({ hasText: "service records: 1" }).waitFor();
  await frame.locator("#elders button").first().click();
  await frame.locator("#elders .card", { hasText: "None" }).waitFor();
  await audit(await pluginFrame(page), "the care desk in English");
  await assertNoChinese(await pluginFrame(page), "the care desk", ["王阿姨", "3栋2单元401", "幸福社区", "第一网格"]);
  await shot("3-english");
  return { elders, stats };
});
