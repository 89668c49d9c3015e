// The web page on a server that requires a key: the model list stays empty until the key is typed
// into the page's API key field, then fills in (the page sends it as a Bearer token).
// Usage: node page_key.mjs BASE_URL KEY  -> prints {"before": n, "after": [ids]}
import { launchChromium } from "./browser.mjs";

const [base, key] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(base + "/");
  await page.waitForTimeout(500);
  const before = await page.$$eval("#model option", (os) => os.length);
  await page.fill("#api-key", key);
  await page.dispatchEvent("#api-key", "change");
  await page.waitForFunction(() => document.querySelectorAll("#model option").length > 0);
  const after = await page.$$eval("#model option", (os) => os.map((o) => o.value));
  console.log(JSON.stringify({ before, after }));
} finally {
  await browser.close();
}
