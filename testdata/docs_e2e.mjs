// Drives /docs in headless Chromium as a frontend developer would:
// authorize, try operations, log out. Run by docs_test.go.
// Usage: node docs_e2e.mjs PLAYWRIGHT_CORE_DIR BASE_URL
import { execFileSync } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [pwDir, base] = process.argv.slice(2);
const { chromium } = await import(pathToFileURL(path.join(pwDir, "index.mjs")).href);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});
const steps = [];
const problems = [];
// Chromium logs every 4xx answer to fetch as a console error: the ones this
// session provokes on purpose (the invalid body, the call after logout) are
// expected, one each; any other console error is a problem.
const expectedConsole = [];
function onConsole(width, text) {
  const m = /Failed to load resource: the server responded with a status of (\d+)/.exec(text);
  const i = m ? expectedConsole.indexOf(m[1]) : -1;
  if (i >= 0) { expectedConsole.splice(i, 1); return; }
  problems.push(`console@${width}: ${text}`);
}
try {
  for (const width of [1280, 420]) {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    page.on("console", (m) => { if (m.type() === "error") onConsole(width, m.text()); });
    page.on("pageerror", (e) => problems.push(`pageerror@${width}: ${e.message}`));
    await page.goto(base + "/docs#createItem");
    await page.waitForSelector('body[data-rendered="true"]');
    const pageErrors = await page.$$eval("#errors li", (lis) => lis.map((li) => li.textContent));
    problems.push(...pageErrors.map((e) => `page@${width}: ${e}`));
    // The deep link scrolled to its operation.
    const inView = await page.$eval("#createItem", (n) => { const r = n.getBoundingClientRect(); return r.top >= -5 && r.top < innerHeight; });
    steps.push({ step: "deep link", width, ok: inView });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    steps.push({ step: "no horizontal page overflow", width, ok: overflow <= 1, detail: overflow });
    if (width !== 1280) {
      if (process.env.DOCS_SCREENSHOT) await page.screenshot({ path: process.env.DOCS_SCREENSHOT + "-" + width + ".png" });
      await page.close();
      continue;
    }

    // Authorize through the OAuth2 password form of the login endpoint.
    await page.fill("#auth-username", "admin@example.com");
    await page.fill("#auth-password", "changethis");
    await page.press("#auth-password", "Enter"); // the keyboard submits
    await page.waitForFunction(() => document.getElementById("auth-status").textContent.includes("admin@example.com"));
    steps.push({ step: "authorized", ok: true, detail: await page.textContent("#auth-status") });
    const stored = await page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie);
    steps.push({ step: "token kept in memory only", ok: !/[A-Za-z0-9_-]{43}/.test(stored), detail: stored });

    const send = async (opId, body) => {
      const op = page.locator("#" + opId);
      if (!(await op.locator("details.try").evaluate((d) => d.open))) await op.locator("details.try > summary").click();
      if (body !== undefined) await op.locator("textarea").fill(body);
      await op.locator("details.try button").click();
      await op.locator(".result .status").waitFor();
      await page.waitForFunction((id) => !document.querySelector("#" + id + " .result").textContent.includes("Sending"), opId);
      return {
        // Every child of the result is an element: a stray text node (a
        // "null") is a rendering bug.
        stray: await op.locator(".result").evaluate((el) => [...el.childNodes].filter((n) => n.nodeType !== 1).map((n) => n.textContent)),
        status: (await op.locator(".result .status").textContent()).trim(),
        body: (await op.locator(".result pre.body").count()) ? await op.locator(".result pre.body").textContent() : "",
        headers: (await op.locator(".result pre.headers").count()) ? await op.locator(".result pre.headers").textContent() : "",
        problem: (await op.locator(".result .problem").count()) ? await op.locator(".result .problem").textContent() : "",
      };
    };
    let r = await send("getMe");
    steps.push({ step: "GET /users/me", ok: r.status.startsWith("200") && r.body.includes("admin@example.com") && r.headers.includes("x-request-id") && r.stray.length === 0, detail: r });
    r = await send("createItem");
    steps.push({ step: "POST /items with the example", ok: r.status.startsWith("201") && r.headers.includes("location: /api/v1/items/"), detail: r });
    // Paging by cursor: a page of one names the next, in the body and the
    // Link header; the cursor, pasted into its field, fetches the last.
    await send("createItem");
    const list = page.locator("#listItems");
    if (!(await list.locator("details.try").evaluate((d) => d.open))) await list.locator("details.try > summary").click();
    await list.locator('input[name="limit"]').fill("1");
    r = await send("listItems");
    const cursor = (/"next_cursor": "([^"]+)"/.exec(r.body) || [])[1];
    steps.push({ step: "GET /items?limit=1", ok: r.status.startsWith("200") && !!cursor && r.headers.includes('rel="next"'), detail: r });
    await list.locator('input[name="cursor"]').fill(cursor || "");
    r = await send("listItems");
    steps.push({ step: "GET /items?cursor=", ok: r.status.startsWith("200") && r.body.includes('"next_cursor": null') && r.body.includes('"count": 2'), detail: r });
    expectedConsole.push("422");
    r = await send("createItem", '{"title": ""}');
    steps.push({ step: "POST /items invalid", ok: r.status.startsWith("422") && r.problem.includes("validation_failed") && r.stray.length === 0, detail: r });
    // A 204 shows its status and headers and nothing else.
    r = await send("deleteMyOtherSessions");
    steps.push({ step: "DELETE /users/me/sessions (204)", ok: r.status.startsWith("204") && r.body === "" && r.stray.length === 0, detail: r });

    // The filter narrows the list; Markdown renders as elements.
    await page.fill("#filter", "sessions");
    const visible = await page.$$eval("#operations .op", (ops) => ops.filter((o) => !o.classList.contains("hidden")).map((o) => o.id));
    const sessionOps = ["listMySessions", "deleteMySession", "deleteMyOtherSessions", "deleteUserSessions"];
    steps.push({ step: "filter", ok: sessionOps.every((id) => visible.includes(id)) && !visible.includes("listItems") && !visible.includes("getHealth"), detail: visible });
    await page.fill("#filter", "");
    const codeInDesc = await page.$$eval(".desc code", (c) => c.length);
    const schemaLinks = await page.$$eval('a[href^="#schema-"]', (a) => a.length);
    steps.push({ step: "inline code and schema links", ok: codeInDesc > 0 && schemaLinks > 0, detail: { codeInDesc, schemaLinks } });

    await page.click("#auth-logout");
    await page.waitForFunction(() => document.getElementById("auth-status").textContent === "Not authorized");
    expectedConsole.push("401");
    r = await send("getMe");
    steps.push({ step: "after logout", ok: r.status.startsWith("401") && r.problem.includes("unauthorized"), detail: r });

    // Two-factor sign-in: the password, then a code. The codes come from
    // oathtool, for the next time step (the drift allowance takes it; the
    // current one confirmed the enrolment).
    const status = () => page.textContent("#auth-status");
    const oath = () => {
      const at = new Date(Date.now() + 30000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
      return execFileSync("oathtool", ["--totp", "-b", "--now", at, process.env.DOCS_MFA_SECRET]).toString().trim();
    };
    expectedConsole.push("401", "401");
    await page.fill("#auth-username", process.env.DOCS_MFA_EMAIL);
    await page.fill("#auth-password", process.env.DOCS_MFA_PASSWORD);
    await page.click("#auth-login");
    await page.waitForSelector("#auth-mfa:not(.hidden)");
    steps.push({ step: "mfa: the password asks for a code", ok: (await status()).includes("authenticator app") && await page.inputValue("#auth-password") === "", detail: await status() });
    const code = oath();
    await page.fill("#auth-code", code === "000000" ? "111111" : "000000");
    await page.click("#auth-verify");
    await page.waitForFunction(() => document.getElementById("auth-status").textContent.includes("not right"));
    steps.push({ step: "mfa: a wrong code is refused", ok: true, detail: await status() });
    await page.fill("#auth-code", code);
    await page.press("#auth-code", "Enter"); // the keyboard submits the step too
    await page.waitForFunction((email) => document.getElementById("auth-status").textContent.includes(email), process.env.DOCS_MFA_EMAIL);
    const hidden = await page.$eval("#auth-mfa", (n) => n.classList.contains("hidden"));
    steps.push({ step: "mfa: the code signs in", ok: hidden, detail: await status() });
    r = await send("listMySessions");
    steps.push({ step: "mfa: the session says mfa", ok: r.status.startsWith("200") && r.body.includes('"mfa": true'), detail: r });
    await page.click("#auth-logout");
    await page.waitForFunction(() => document.getElementById("auth-status").textContent === "Not authorized");
    if (process.env.DOCS_SCREENSHOT) {
      await page.locator("#createItem").scrollIntoViewIfNeeded();
      await page.screenshot({ path: process.env.DOCS_SCREENSHOT + "-" + width + ".png" });
    }
    await page.close();
  }
} catch (e) {
  problems.push("driver: " + e.message);
} finally {
  await browser.close();
}
console.log(JSON.stringify({ steps, problems }));
