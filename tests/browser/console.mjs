// An operator in the admin console: uploads a package, reviews the permissions it asks
// for (each with its reason), grants a subset, installs it for one street after
// confirming; dispatches an open work order from the board and supervises it (督办); then
// reads the ticket's trace and exports the board as CSV; a base-data import with a bad row is
// rejected with its validation report; opens the dashboards and drills down county → street
// → community. Then a community worker signs in: no vendor keys, uploads, installs or
// uninstalls are offered. axe-core checks every page on the way.
// Run by tests/tests/browser.rs:
//   node console.mjs BASE_URL ARTIFACT_DIR PHONE PASSWORD PACKAGE_FILE STREET COMMUNITY ASSIGNEE_ID BAD_CSV WORKER_PHONE
// Prints {"installation", "reasons", "granted", "granted_names", "regranted", "question",
// "problems", "path", "residents", "trace", "csv", "worker"} on success.
import { assertCatalogues, assertNoChinese, assertNoEnglish, audit, runFlow } from "./harness.mjs";

const [base, artifacts, phone, password, packageFile, street, community, assignee, badCsv, workerPhone] = process.argv.slice(2);
await runFlow(artifacts, async (page, shot, person) => {
  await page.goto(`${base}/console/`);
  await page.fill("#phone", phone);
  await page.fill("#password", password);
  await page.click("#login-button");
  await page.locator("#dashboard").waitFor();
  await shot("1-signed-in");

  // Upload → review.
  await page.click('nav a[href="#/catalogue"]');
  await page.setInputFiles("#package-file", packageFile);
  await page.click("#upload-button");
  await page.locator("#review #permissions .perm").first().waitFor();
  const reasons = await page.locator("#permissions .perm .reason").allInnerTexts();
  if (reasons.length < 2 || reasons.some((r) => r.replace(/^理由：/, "").trim() === "")) throw new Error(`every requested permission shows its reason: ${reasons}`);
  await shot("2-review");
  await audit(page, "the console: the permission review");
  await assertNoEnglish(page, "the permission review", ["hello", "linli", "Linli"]);

  // Grant a subset (not identity), for one street, confirmed.
  await page.uncheck("#grant-identity");
  await page.selectOption("#install-tenant", street);
  await page.click("#install-button");
  await page.locator("#confirm[open]").waitFor();
  const question = await page.locator("#confirm-text").innerText();
  await shot("3-confirm");
  await page.click("#confirm-ok");
  const row = page.locator(`#installations tr[data-installation$="@${street}"]`);
  await row.waitFor();
  const installation = await row.getAttribute("data-installation");
  // Grants are shown by name (数据存储), their codes kept for the machine.
  const granted = await row.locator(".tag[data-grant]").evaluateAll((tags) => tags.map((tag) => tag.dataset.grant));
  const grantedNames = await row.locator(".tag[data-grant]").allInnerTexts();
  await shot("4-installed");
  await audit(page, "the console: the installations");
  await assertNoEnglish(page, "the installations", ["hello", "chengguan"]);

  // Later the county grants identity after all (reviewed in place, confirmed).
  await row.locator("details[data-permissions] summary").click();
  await row.locator('details[data-permissions] input[value="identity"]').check();
  await row.locator('button[data-action="grants"]').click();
  await page.locator("#confirm[open]").waitFor();
  await page.click("#confirm-ok");
  await page.locator(`#installations tr[data-installation="${installation}"] .tag[data-grant="identity"]`).waitFor();
  const regranted = await page.locator(`#installations tr[data-installation="${installation}"] .tag[data-grant]`).evaluateAll((tags) => tags.map((tag) => tag.dataset.grant));

  // The work-order board: dispatch the open ticket, then supervise it with a note.
  await page.click('nav a[href="#/tickets"]');
  // The smoke alarm's ticket is newer than the repair, yet first, and marked urgent.
  await page.locator('.column[data-status="open"] .ticket').nth(1).waitFor();
  const firstOpen = await page.locator('.column[data-status="open"] .ticket').first().innerText();
  const open = page.locator('.column[data-status="open"] .ticket', { hasText: "楼道灯坏了" });
  await open.waitFor();
  await open.locator("select").selectOption(assignee);
  await open.locator('button[data-action="dispatch"]').click();
  const dispatched = page.locator('.column[data-status="dispatched"] .ticket').first();
  await dispatched.waitFor();
  page.once("dialog", (dialog) => dialog.accept("请今日内上门"));
  await dispatched.locator('button[data-action="supervise"]').click();
  await page.locator('.column[data-status="dispatched"] .ticket .tag.bad', { hasText: "督办中" }).waitFor();
  await shot("5-board");
  await audit(page, "the console: the ticket board");
  await assertNoEnglish(page, "the ticket board", ["CSV"]);

  // The ticket's trace, and the board as a CSV file.
  const card = page.locator('.column[data-status="dispatched"] .ticket').first();
  await card.locator("details.trace summary").click();
  await card.locator("details.trace ol.steps li").nth(2).waitFor();
  const trace = await card.locator("details.trace ol.steps li").allInnerTexts();
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-csv")]);
  const csv = (await streamText(await download.createReadStream())).replace(/^\ufeff/, "").split("\r\n").find((row) => row.includes("楼道灯坏了"));

  // The community's duty line for 一键求助, set under the board.
  await page.click("#duty-lines summary");
  await page.selectOption("#duty-node", community);
  await page.fill("#duty-phone", "0571-88886666");
  await page.click("#duty-save");
  await page.locator("#notice.ok", { hasText: "值班电话已保存" }).waitFor();
  await page.click("#duty-lines summary");
  const duty = await page.locator("#duty-lines ul").innerText();
  await audit(page, "the console: the duty lines");

  // An import with a mistake: the report lists it, and nothing is written.
  await page.click('nav a[href="#/import"]');
  await page.selectOption("#import-kind", "residents");
  await page.selectOption("#import-tenant", community);
  await page.setInputFiles("#import-file", badCsv);
  await page.click("#import-button");
  await page.locator("#import-problems tr td").first().waitFor();
  const problems = await page.locator("#import-problems tr").count() - 1;
  const verdict = await page.locator("#import-report p").first().innerText();
  if (!verdict.includes("已拒绝")) throw new Error(`the import was not rejected: ${verdict}`);
  await shot("6-import-report");
  await audit(page, "the console: the import report");
  await assertNoEnglish(page, "the import report", ["CSV", "UTF"]);

  // Dashboards: county → street (the table's link) → community (the chart's bar).
  await page.click('nav a[href="#/dashboard"]');
  await page.locator("#dashboard #kpis").waitFor();
  await page.locator("#compare-chart svg").waitFor();
  await shot("7-county");
  await audit(page, "the console: the county dashboard");
  await assertNoEnglish(page, "the county dashboard");
  await page.click(`a[data-drill="${street}"]`);
  await page.locator(`#dashboard[data-tenant="${street}"]`).waitFor();
  await shot("8-street");
  await page.click(`#compare-chart g[data-id="${community}"]`);
  await page.locator(`#dashboard[data-tenant="${community}"]`).waitFor();
  const path = (await page.locator("#crumbs").innerText()).split("›").map((s) => s.trim());
  const residents = Number(await page.locator('#kpis [data-figure="residents"] .value').innerText());
  await page.locator("#usage svg").waitFor();
  await shot("9-community");
  await audit(page, "the console: the community dashboard");

  // The county's other screens: the audit log (people by name), devices, people.
  await page.click('nav a[href="#/audit"]');
  await page.locator("#audit-entries").waitFor();
  await audit(page, "the console: the audit log");
  await assertNoEnglish(page, "the audit log");
  await page.click('nav a[href="#/devices"]');
  await page.locator("#devices").waitFor();
  await audit(page, "the console: devices and alarms");
  await assertNoEnglish(page, "devices and alarms");
  await page.click('nav a[href="#/people"]');
  await page.locator("#people").waitFor();
  await audit(page, "the console: people");
  await assertNoEnglish(page, "people");
  await assertCatalogues(page);

  // The same console in English: no Chinese but names (of areas, people, the county's alarm
  // rules) and what people wrote.
  await page.click("#lang");
  const names = await page.evaluate(async () => {
    const all = [];
    const walk = (list) => list.forEach((n) => { all.push(n.name); walk(n.children || []); });
    walk((await (await fetch("/admin/tenants")).json()).tenants);
    return all;
  });
  const typed = [...names, "周县管理员", "维修师傅", "社区干事", "王阿姨", "王秀英", "李志强", "楼道灯坏了", "3栋2单元", "请今日内上门", "烟雾报警"];
  for (const [link, ready, label] of [
    ["#/dashboard", "#dashboard #kpis", "the dashboard"], ["#/installations", "#installations tr[data-installation]", "the installations"],
    ["#/tickets", '.column[data-status="dispatched"] .ticket', "the ticket board"], ["#/audit", "#audit-entries", "the audit log"],
    ["#/devices", "#devices", "devices and alarms"], ["#/people", "#people", "people"],
  ]) {
    await page.click(`nav a[href="${link}"]`);
    await page.locator(ready).first().waitFor();
    await audit(page, `the console in English: ${label}`);
    await assertNoChinese(page, label, typed);
  }
  await shot("10-english");
  await page.click("#lang");

  // A community worker sees the area, not the county's keys or the installs.
  const worker = await person();
  await worker.goto(`${base}/console/`);
  await worker.fill("#phone", workerPhone);
  await worker.fill("#password", password);
  await worker.click("#login-button");
  await worker.locator("#dashboard").waitFor();
  const menu = await worker.locator("#nav a:visible").allInnerTexts();
  await worker.click('nav a[href="#/installations"]');
  await worker.locator("#installations tr[data-installation]").first().waitFor();
  const offered = await worker.locator('#installations [data-action="uninstall"], #installations [data-action="rollback"], #installations [data-action="grants"]').count();
  await shot("11-worker-installations", worker);
  await audit(worker, "the console: a community worker's installations");
  const scope = await worker.locator(`#installations tr[data-installation="${installation}"] td`).nth(1).innerText();
  return { installation, first_open: firstOpen, reasons, granted, granted_names: grantedNames, regranted, question, problems, path, residents, trace, csv, duty, worker: { menu, offered, scope } };
}, { viewport: { width: 1280, height: 900 } });

async function streamText(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}
