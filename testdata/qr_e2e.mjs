// Draws QR codes with the frontend's own encoder (nginx/html/assets/qr.js)
// in a browser page of the app, as the enrolment page does, and takes each
// one's pixels as a PNG. Run by suite_frontend_test.go, which decodes the
// PNGs with zbarimg (an independent decoder) and compares the text.
// Prints JSON: for each text, its version, mask and PNG file.
// Environment: ENGINE, E2E_NODE_DIR, BASE_URL, OUT (a folder), TEXTS (a
// JSON array of strings).
import path from "node:path";
import { launch } from "./browser.mjs";

const env = process.env;
const browser = await launch(env.ENGINE, { modulesDir: path.join(env.E2E_NODE_DIR, "node_modules") });
const out = { codes: [], problems: [] };
try {
  const page = await browser.newPage({ width: 1280, height: 800 });
  await page.goto(env.BASE_URL + "/login");
  await page.get({ role: "heading", level: 1, name: "Sign in" });
  const texts = JSON.parse(env.TEXTS);
  for (const [i, text] of texts.entries()) {
    // Four pixels a module: what a phone's camera sees of the page, and
    // no blur for the decoder.
    const drawn = await page.evaluate(async (text) => {
      const { qrSVG } = await import("/assets/qr.js");
      const svg = qrSVG(text, "QR code under test");
      const side = Number(svg.getAttribute("viewBox").split(" ")[2]);
      svg.style.width = svg.style.height = `${side * 4}px`;
      svg.id = "under-test";
      document.getElementById("under-test")?.remove();
      document.body.prepend(svg);
      return { version: Number(svg.dataset.version), mask: Number(svg.dataset.mask), side };
    }, text);
    const file = path.join(env.OUT, `qr-${env.ENGINE}-${i}.png`);
    await (await page.get({ css: "#under-test" })).screenshot(file);
    out.codes.push({ text, file, ...drawn });
  }
  out.problems.push(...page.problems);
} catch (e) {
  out.problems.push("driver: " + e.message.split("\n").slice(0, 4).join(" | "));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
