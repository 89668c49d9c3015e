// A page of one origin calling the API of another from Debian's headless Chromium: the browser
// sends its own preflight (the Authorization header makes the request non-simple) and lets the
// page read the answer only if the API allows that origin.
// Usage: node cors.mjs PAGE_URL API_URL KEY  -> prints a JSON object {status, body} or {error}
import { launchChromium } from "./browser.mjs";

const [pageUrl, apiUrl, key] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(pageUrl);
  const result = await page.evaluate(async ([url, key]) => {
    try {
      const r = await fetch(url, { headers: { Authorization: `Bearer ${key}` } });
      return { status: r.status, body: await r.json() };
    } catch (e) {
      return { error: String(e) };
    }
  }, [apiUrl, key]);
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
