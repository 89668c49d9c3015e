// Drives the web page (GET /) in Debian's headless Chromium: a file transcribed with "Speakers"
// ticked, sync then async; prints a JSON summary of the speakers' badges and turns as shown.
// Usage: node web_speakers.mjs BASE_URL AUDIO_FILE SCREENSHOT_DIR
import fs from "node:fs";
import path from "node:path";
import { launchChromium, openHomePage } from "./browser.mjs";

const [base, audio, shots] = process.argv.slice(2);
fs.mkdirSync(shots, { recursive: true });
const browser = await launchChromium([]);
const summary = {};
try {
  const page = await openHomePage(browser, base, { width: 1000, height: 1400 });
  await page.setInputFiles("#file", audio);
  await page.check("#speakers");
  for (const mode of ["sync", "async"]) {
    await page.check(`#mode-${mode}`);
    await page.click("#transcribe");
    await page.waitForFunction(() => /^(Done|\d{3}:)/.test(document.querySelector("#status").textContent), null, { timeout: 300000 });
    summary[mode] = {
      status: await page.textContent("#status"),
      // Each row's speaker badge: its label and colour, and the row's text without it.
      rows: await page.$$eval("#segments tbody tr", (rows) => rows.map((r) => {
        const badge = r.children[2].querySelector(".speaker");
        return { speaker: badge ? badge.textContent : null,
                 colour: badge ? getComputedStyle(badge).backgroundColor : null,
                 text: r.children[2].lastChild.textContent };
      })),
      // The transcript's turns: speaker, colour of the turn's border, text.
      turns: await page.$$eval("#transcript .turn", (turns) => turns.map((t) => ({
        speaker: t.querySelector(".speaker").textContent,
        colour: getComputedStyle(t).borderLeftColor,
        text: t.lastChild.textContent }))),
    };
    await page.screenshot({ path: path.join(shots, `web-speakers-${mode}.png`), fullPage: true });
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(summary) + "\n");
