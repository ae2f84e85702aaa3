// A resident whose report was resolved finds the message in the app's inbox, opens the
// ticket, reads its trace and rates it. Run by tests/tests/browser.rs:
//   node tickets.mjs BASE_URL ARTIFACT_DIR PHONE PASSWORD
// Prints {"ticket": …, "steps": […]} on success; on failure saves a screenshot and exits non-zero.
import { audit, pluginFrame, runFlow } from "./harness.mjs";

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
  await message.locator("a").click();

  await page.locator("#ticket ol.steps li").first().waitFor();
  await audit(page, "a ticket's detail");
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
  return { ticket, steps };
});
