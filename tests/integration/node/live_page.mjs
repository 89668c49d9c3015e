// Drives the page's Live mode in Debian's headless Chromium with a fake microphone that plays a
// WAV file (Chromium loops it): the AudioWorklet streams it to /v1/realtime, turns appear with
// their times, text grows while a turn is spoken, and Stop ends the session. Prints a JSON
// summary. Usage: node live_page.mjs BASE_URL WAV_FILE SCREENSHOT_DIR
import fs from "node:fs";
import path from "node:path";
import { launchChromium, openHomePage } from "./browser.mjs";

const [base, wav, shots] = process.argv.slice(2);
fs.mkdirSync(shots, { recursive: true });
const browser = await launchChromium([
  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
  `--use-file-for-fake-audio-capture=${wav}`, "--autoplay-policy=no-user-gesture-required"]);
const summary = {};
try {
  const page = await openHomePage(browser, base, { width: 1000, height: 1000 });
  await page.fill("#language", "en");
  await page.click("#live-start");
  // The live line while a turn is spoken: text before the turn has ended (no end time yet).
  await page.waitForFunction(() => {
    const open = [...document.querySelectorAll("#turns tbody tr.open")];
    const speaking = open.some((r) => r.children[1].textContent === "" && r.children[2].textContent !== "…");
    return (speaking && document.querySelector("#live-text").textContent.trim() !== "") ||
           window.liveStats.errors.length > 0;
  }, null, { timeout: 120000 });
  summary.live_text = await page.textContent("#live-text");
  summary.open_rows = await page.$$eval("#turns tbody tr.open", (rows) => rows.length);
  await page.screenshot({ path: path.join(shots, "web-live-speaking.png"), fullPage: true });
  await page.waitForFunction(() => window.liveStats.completed >= 2 || window.liveStats.errors.length > 0,
                             null, { timeout: 180000 });
  await page.click("#live-stop");
  await page.waitForFunction(() => /^Stopped/.test(document.querySelector("#live-status").textContent),
                             null, { timeout: 60000 });
  summary.status = await page.textContent("#live-status");
  summary.turns = await page.$$eval("#turns tbody tr",
                                    (rows) => rows.map((r) => [...r.children].map((c) => c.textContent)));
  summary.stats = await page.evaluate(() => window.liveStats);
  await page.screenshot({ path: path.join(shots, "web-live-done.png"), fullPage: true });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(summary) + "\n");
