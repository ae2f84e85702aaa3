// Two residents walk a need through the time bank in the app: the elder joins (consenting
// to her real name), posts a need; the volunteer joins and takes it on; the elder
// confirms it was done; the volunteer sees the hours credited. Run by
// tests/tests/browser.rs:
//   node time_bank.mjs BASE_URL ARTIFACT_DIR ELDER_PHONE VOLUNTEER_PHONE PASSWORD
// Prints {"task": id, "balance": text} on success; on failure saves a screenshot and exits non-zero.
import { assertNoChinese, audit, pluginFrame, runFlow } from "./harness.mjs";

const [base, artifacts, elderPhone, volunteerPhone, password] = process.argv.slice(2);

async function logInAndOpen(page, phone) {
  await page.goto(`${base}/app/`);
  await page.fill("#phone", phone);
  await page.fill("#password", password);
  await page.click("#login-button");
  const card = page.locator('[data-plugin="time-bank"]').first();
  await card.waitFor();
  await card.click();
  return page.frameLocator("#plugin-frame");
}

async function join(page, role) {
  let frame = page.frameLocator("#plugin-frame");
  await frame.locator(`input[value="${role}"]`).check();
  await frame.locator("#join-button").click();
  // Joining needs the real name: the app asks over the page; agreed, the page joins.
  await page.locator("#consent-agree").click();
  frame = page.frameLocator("#plugin-frame");
  await frame.locator("#member-name").waitFor();
  await audit(await pluginFrame(page), "the time-bank page");
  // The page has finished loading what a member sees (its frame has its height).
  await frame.locator('body[aria-busy="false"]').waitFor({ state: "attached" });
  return frame;
}

await runFlow(artifacts, async (elder, shot, person) => {
  let frame = await logInAndOpen(elder, elderPhone);
  await frame.locator("#join-button").waitFor();
  await shot("1-join");
  frame = await join(elder, "elder");
  const name = await frame.locator("#member-name").innerText();
  if (name !== "王秀英") throw new Error(`joined as ${name}, expected the real name 王秀英`);
  await frame.locator("#category").selectOption("就医陪同");
  await frame.locator("#title").fill("陪我去县医院复查");
  await frame.locator("#place").fill("幸福社区3栋");
  await frame.locator("#post-button").click();
  const posted = frame.locator('#mine [data-status="open"]').first();
  await posted.waitFor();
  const task = await posted.getAttribute("data-task");
  await shot("2-posted", elder);

  const volunteer = await person();
  let vframe = await logInAndOpen(volunteer, volunteerPhone);
  await vframe.locator("#join-button").waitFor();
  vframe = await join(volunteer, "volunteer");
  await vframe.locator(`#accept-${task}`).click();
  await vframe.locator(`#mine [data-task="${task}"][data-status="accepted"]`).waitFor().catch(async (e) => {
    await shot("3-not-accepted", volunteer);
    throw new Error(`${e.message}\nthe volunteer's page says: ${await vframe.locator("#status").innerText().catch(() => "?")}`);
  });
  await shot("3-accepted", volunteer);

  await elder.reload();
  frame = elder.frameLocator("#plugin-frame");
  await frame.locator(`#confirm-${task}`).click();
  await frame.locator(`#mine [data-task="${task}"][data-status="completed"]`).waitFor();
  await shot("4-confirmed", elder);

  await volunteer.reload();
  vframe = volunteer.frameLocator("#plugin-frame");
  await vframe.locator("#movements div").first().waitFor();
  const balance = await vframe.locator("#balance").innerText();
  await shot("5-credited", volunteer);
  if (balance !== "1.00") throw new Error(`the volunteer's balance is ${balance}, expected 1.00 (one hour)`);

  // The volunteer's page in English: what residents wrote (titles, places, their names) and
  // the ledger's memos stay as written.
  const data = await (await pluginFrame(volunteer)).evaluate(async () => ({ tasks: (await linli.call("GET", "/tasks/mine")).data, me: (await linli.call("GET", "/me")).data }));
  const written = [
    ...data.tasks.flatMap((x) => [x.title, x.place, x.owner_name, x.counterpart_name]),
    ...(data.me.movements || []).map((m) => m.memo),
  ].filter(Boolean);
  await volunteer.click("#lang");
  await vframe.locator("h1", { hasText: "Time bank" }).waitFor();
  await vframe.locator('body[aria-busy="false"]').waitFor({ state: "attached" });
  await audit(await pluginFrame(volunteer), "the time bank in English");
  await assertNoChinese(await pluginFrame(volunteer), "the time bank", written);
  await shot("6-english", volunteer);
  return { task, balance };
});
