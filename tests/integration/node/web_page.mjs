// Drives the web page (GET /) in Debian's headless Chromium: a sync transcription, then an async
// one whose progress shows before its result. Prints ASYNC_PENDING when the async task is shown
// waiting (the test then starts a worker), and finally a JSON summary.
// Usage: node web_page.mjs BASE_URL AUDIO_FILE SCREENSHOT_DIR
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { launchChromium, openHomePage } from "./browser.mjs";

const [base, audio, shots] = process.argv.slice(2);
fs.mkdirSync(shots, { recursive: true });
const browser = await launchChromium([
  // A fake microphone (a beeping tone) answers getUserMedia without a prompt.
  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]);
const summary = {};
try {
  const page = await openHomePage(browser, base, { width: 1000, height: 900 });
  summary.models = await page.$$eval("#model option", (os) => os.map((o) => o.value));

  // Sync.
  await page.setInputFiles("#file", audio);
  await page.click("#transcribe");
  await page.waitForFunction(() => document.querySelector("#transcript").textContent.length > 0, null, { timeout: 180000 });
  summary.sync_text = await page.textContent("#transcript");
  summary.sync_rows = await page.$$eval("#segments tbody tr", (rows) => rows.map((r) => [...r.children].map((c) => c.textContent)));
  summary.sync_status = await page.textContent("#status");
  await page.screenshot({ path: path.join(shots, "web-sync.png"), fullPage: true });

  // Async: the task waits for a worker, and the page shows it waiting.
  await page.check("#mode-async");
  await page.click("#transcribe");
  await page.waitForFunction(() => /PENDING/.test(document.querySelector("#status").textContent), null, { timeout: 60000 });
  summary.async_progress_visible = await page.isVisible("#progress");
  summary.async_pending_status = await page.textContent("#status");
  await page.screenshot({ path: path.join(shots, "web-async-pending.png"), fullPage: true });
  process.stdout.write("ASYNC_PENDING\n");
  await page.waitForFunction(() => /^Done/.test(document.querySelector("#status").textContent), null, { timeout: 180000 });
  summary.async_text = await page.textContent("#transcript");
  summary.async_rows = await page.$$eval("#segments tbody tr", (rows) => rows.length);
  summary.async_progress_visible_after = await page.isVisible("#progress");
  await page.screenshot({ path: path.join(shots, "web-async-done.png"), fullPage: true });

  // Record 2 s from the (fake) microphone and transcribe the recording (webm/opus).
  await page.check("#mode-sync");
  await page.click("#record");
  await page.waitForTimeout(2000);
  await page.click("#record");
  await page.waitForFunction(() => /recorded/.test(document.querySelector("#recording").textContent));
  summary.recording = await page.textContent("#recording");
  await page.click("#transcribe");
  await page.waitForFunction(() => /^(Done|\d{3}:)/.test(document.querySelector("#status").textContent), null, { timeout: 120000 });
  summary.record_status = await page.textContent("#status");
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(summary) + "\n");
