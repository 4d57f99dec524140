// End to end in a real headless Chromium (driven by playwright-core): an
// operator signs in to the console, finds the stuck saga in the stuck list
// with its reason, opens it, retries it behind the confirmation, and watches
// it complete. Run by tests/console_proctest.cc:
//   node stuck_saga_retry.mjs <base url> <operator key> <saga id> <screenshot dir>
import { createRequire } from "node:module";
import path from "node:path";

const [base, key, sagaId, shots] = process.argv.slice(2);
const require = createRequire(path.join(process.env.WSFLOW_TOOLS, "node_modules", "x.js"));
const { chromium } = require("playwright-core");

const step = (text) => console.log("console e2e: " + text);
const browser = await chromium.launch({
  executablePath: process.env.WSFLOW_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => { if (m.type() === "error") problems.push("console error: " + m.text()); });

  await page.goto(base + "/console");
  step("sign in");
  await page.getByTestId("key").fill(key);
  await page.getByTestId("sign-in").click();
  // The key is kept in this tab only.
  const stored = await page.evaluate(() => [sessionStorage.length, localStorage.length, document.cookie]);
  if (stored[0] !== 1 || stored[1] !== 0 || stored[2] !== "") throw new Error("the key must live in sessionStorage only");

  step("the stuck list shows the saga with its reason");
  const row = page.locator(`[data-testid=saga-row][data-id="${sagaId}"]`);
  await row.waitFor({ timeout: 15000 });
  const reason = await row.getByTestId("stuck-reason").textContent();
  if (!["no_progress", "attempt_overdue"].includes(reason)) throw new Error("unexpected stuck reason " + reason);
  await page.screenshot({ path: path.join(shots, "1-stuck-list.png"), fullPage: true });

  step("open it: the stuck panel names the step");
  await row.getByRole("link").click();
  const stuck = page.getByTestId("stuck");
  await stuck.waitFor();
  const why = await stuck.textContent();
  if (!why.includes("provision_environments[prod]")) throw new Error("the stuck panel does not name the step: " + why);

  step("retry, behind the confirmation");
  await page.getByTestId("action-retry").click();
  await page.getByTestId("confirm").waitFor();
  await page.getByTestId("confirm-reason").fill("prod provisioner was hung; retried from the console");
  await page.screenshot({ path: path.join(shots, "2-confirm.png") });
  await page.getByTestId("confirm-ok").click();

  step("watch it complete");
  await page.waitForFunction(() => {
    const badge = document.querySelector("main [data-testid=state]");
    return badge && badge.textContent === "completed";
  }, null, { timeout: 30000 });
  await page.getByTestId("timeline").getByText("retried from the console").waitFor();
  await page.screenshot({ path: path.join(shots, "3-completed.png"), fullPage: true });
  if (problems.length) throw new Error(problems.join("; "));
  step("done");
} finally {
  await browser.close();
}
