// Debian's headless Chromium for the page tests, started the one way they all need.
import { chromium } from "playwright-core";

export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           ...extraArgs],
  });
}

// A new page of `browser` on the web page at `base` ("/"), its console echoed to stderr, once the
// page has listed the served models (its form is ready then).
export async function openHomePage(browser, base, viewport) {
  const page = await browser.newPage({ viewport });
  page.on("console", (m) => process.stderr.write(`console: ${m.text()}\n`));
  await page.goto(base + "/");
  await page.waitForFunction(() => document.querySelectorAll("#model option").length > 0);
  return page;
}
