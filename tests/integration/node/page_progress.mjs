// The web page on a long async task: the progress bar fills and the transcript so far shows while
// the task runs; the second run is cancelled with the Cancel button.
// Usage: node page_progress.mjs BASE_URL AUDIO_FILE SCREENSHOT_DIR  -> prints a JSON summary
import fs from "node:fs";
import path from "node:path";
import { launchChromium, openHomePage } from "./browser.mjs";

const [base, audio, shots] = process.argv.slice(2);
fs.mkdirSync(shots, { recursive: true });
const browser = await launchChromium();
const summary = {};
try {
  const page = await openHomePage(browser, base, { width: 1000, height: 900 });
  await page.setInputFiles("#file", audio);
  await page.check("#mode-async");

  // Run to the end, sampling the bar and the partial transcript while it runs.
  await page.click("#transcribe");
  await page.waitForFunction(() => document.querySelector("#progress").value > 0.2, null, { timeout: 120000 });
  summary.running = await page.evaluate(() => ({
    value: document.querySelector("#progress").value,
    determinate: document.querySelector("#progress").hasAttribute("value"),
    status: document.querySelector("#status").textContent,
    transcript: document.querySelector("#transcript").textContent,
    rows: document.querySelectorAll("#segments tbody tr").length,
    cancelVisible: !document.querySelector("#cancel").hidden,
  }));
  await page.screenshot({ path: path.join(shots, "web-async-running.png"), fullPage: true });
  await page.waitForFunction(() => /^Done/.test(document.querySelector("#status").textContent), null, { timeout: 180000 });
  summary.done = await page.evaluate(() => ({
    transcript: document.querySelector("#transcript").textContent,
    cancelVisible: !document.querySelector("#cancel").hidden,
  }));

  // Run again and cancel it half way.
  await page.click("#transcribe");
  await page.waitForFunction(() => document.querySelector("#progress").value > 0, null, { timeout: 120000 });
  await page.click("#cancel");
  await page.waitForFunction(() => /Cancelled/.test(document.querySelector("#status").textContent), null, { timeout: 30000 });
  summary.cancelled_status = await page.textContent("#status");
  await page.screenshot({ path: path.join(shots, "web-async-cancelled.png"), fullPage: true });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(summary) + "\n");
