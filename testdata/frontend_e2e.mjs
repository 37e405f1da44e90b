// Walks the frontend (nginx/html) in headless Chromium as a person would,
// through nginx over TLS, finding controls by label and role. Run by
// suite_frontend_test.go, which starts the service, nginx and an SMTP
// server writing a Maildir, and reads the JSON this prints: the steps and
// the problems seen.
// Environment: E2E_NODE_DIR, BASE_URL, SPKI_PIN, MAILDIR, SCREENSHOTS,
// ADMIN_EMAIL, ADMIN_PASSWORD.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const env = process.env;
const base = env.BASE_URL;
const modules = path.join(env.E2E_NODE_DIR, "node_modules");
const { chromium } = await import(pathToFileURL(path.join(modules, "playwright-core", "index.mjs")).href);
const axeSource = readFileSync(path.join(modules, "axe-core", "axe.min.js"), "utf8");

const steps = [];
const problems = [];
const step = (name, ok, detail, width = 1280) => steps.push({ step: name, width, ok: !!ok, detail });

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  // The one certificate the test's nginx serves is accepted by its key.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", `--ignore-certificate-errors-spki-list=${env.SPKI_PIN}`],
});

// watch records what a page says on its console. Chromium reports every
// 4xx or 5xx answer to fetch as a console error ("Failed to load
// resource"): those are the API's answers the page handles (a 401 before
// signing in, a 422 it shows), so they are counted against the answers
// seen; every other console error (a script error, a CSP violation) is a
// problem.
function watch(page, width) {
  const seen = { failedLoads: 0, errorAnswers: 0 };
  page.on("response", (r) => { if (r.status() >= 400) seen.errorAnswers++; });
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (/^Failed to load resource: the server responded with a status of [45]\d\d/.test(m.text())) seen.failedLoads++;
    else problems.push(`console@${width}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror@${width}: ${e.message}`));
  return seen;
}

// mailLink waits for the newest mail to `to` whose subject has `subject`,
// not one used before, and returns its link to `page`, token included.
const usedMail = new Set();
async function mailLink(to, subject, page) {
  for (let i = 0; i < 100; i++) {
    const found = [];
    for (const dir of ["new", "cur"]) {
      const d = path.join(env.MAILDIR, dir);
      if (!existsSync(d)) continue;
      for (const f of readdirSync(d)) {
        const file = path.join(d, f);
        if (usedMail.has(file)) continue;
        const raw = readFileSync(file, "latin1");
        const [head] = raw.split(/\r?\n\r?\n/);
        if (!new RegExp(`^To: ${to}$`, "mi").test(head) || !new RegExp(`^Subject: .*${subject}`, "mi").test(head)) continue;
        found.push({ file, raw, at: statSync(file).mtimeMs });
      }
    }
    found.sort((a, b) => b.at - a.at);
    if (found.length) {
      usedMail.add(found[0].file);
      // Quoted-printable: soft breaks out, =XX back to bytes.
      const text = found[0].raw.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_, x) => String.fromCharCode(parseInt(x, 16)));
      const m = new RegExp(`${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}${page}#token=[A-Za-z0-9_-]+`).exec(text);
      if (m) return m[0];
      throw new Error(`the ${subject} mail has no ${page} link`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no ${subject} mail to ${to}`);
}

// oath is the TOTP code of secret by oathtool, offset seconds from now.
function oath(secret, offset = 0) {
  const at = new Date(Date.now() + offset * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  return execFileSync("oathtool", ["--totp", "-b", "--now", at, secret.replace(/\s/g, "")]).toString().trim();
}

// axe runs axe-core on the page and keeps its serious and critical
// violations. It is evaluated through the DevTools protocol, which the
// page's CSP does not govern, with Trusted Types set aside for that call.
async function axe(page, name, width) {
  const result = await page.evaluate(async (src) => {
    if (!window.axe) (0, eval)(src);
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return {
      rulesPassed: r.passes.length,
      violations: r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
    };
  }, axeSource);
  // rulesPassed: axe really looked (a page it could not read passes nothing).
  step(`axe: ${name}`, result.violations.length === 0 && result.rulesPassed >= 10, result, width);
}

async function shot(page, name, width) {
  await page.screenshot({ path: path.join(env.SCREENSHOTS, `${name}-${width}.png`), fullPage: false });
}

// shows waits (up to 5 s) for locator to be visible: a page re-renders
// after its answer arrives, so an instant look can come too early.
const shows = (locator) => locator.waitFor({ timeout: 5000 }).then(() => true, () => false);

async function heading(page, text) {
  await page.getByRole("heading", { level: 1, name: text }).waitFor();
}

let email = "ada@example.com"; // moved to a new address by the journey
const firstPassword = "analytical engine 1843";
const newPassword = "notes on the engine";
let secret = "";
let recoveryCodes = [];

try {
  // ---- 1280 x 800: the whole journey.
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const seen = watch(page, 1280);

  await page.goto(base + "/");
  await heading(page, "Sign in");
  step("signed out, / leads to sign in", page.url() === base + "/login", page.url());
  await shot(page, "sign-in", 1280);
  await axe(page, "sign in", 1280);

  // Sign up: a common password first, shown beside its field, nothing lost.
  await page.getByRole("link", { name: "Sign up" }).first().click();
  await heading(page, "Sign up");
  await page.getByLabel("Full name (optional)").fill("Ada Lovelace");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password", { exact: true }).fill("password1");
  await page.getByLabel("Repeat the password").fill("password1");
  await page.getByRole("button", { name: "Create account" }).click();
  const pwField = page.getByLabel("Password", { exact: true });
  await page.waitForFunction(() => document.querySelector('input[name="password"]').getAttribute("aria-invalid") === "true");
  const described = await pwField.evaluate((el) => el.getAttribute("aria-describedby").split(" ").map((id) => document.getElementById(id).textContent).join(" "));
  step("sign up: a common password is refused beside its field", /common/.test(described), described);
  step("sign up: nothing typed is lost", await page.getByLabel("Email").inputValue() === email && await page.getByLabel("Full name (optional)").inputValue() === "Ada Lovelace");
  await pwField.fill(firstPassword);
  await page.getByLabel("Repeat the password").fill(firstPassword);
  await page.getByRole("button", { name: "Create account" }).click();
  await heading(page, "Sign in");
  step("sign up: on to sign in, the address filled in", await page.getByLabel("Email").inputValue() === email, await page.textContent("#flash"));

  // The mailed link verifies the address.
  await page.goto(await mailLink(email, "Confirm your email", "/verify-email"));
  await page.getByText("Your email address is verified.").waitFor();
  step("verify: the mailed link verifies", page.url() === base + "/verify-email", page.url());

  // Sign in on the cookie session.
  await page.getByRole("link", { name: "Sign in" }).first().click();
  await heading(page, "Sign in");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(firstPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
  await heading(page, "Hello, Ada Lovelace");
  const cookies = await ctx.cookies();
  const session = cookies.find((c) => c.name === "__Host-session");
  step("the session cookie: HttpOnly, Secure, SameSite=Strict, Path=/, no Domain", session && session.httpOnly && session.secure &&
    session.sameSite === "Strict" && session.path === "/" && session.domain === "localhost", cookies.map((c) => ({ ...c, value: "…" })));
  const readable = await page.evaluate(() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.cookie]));
  step("no token where script can read it", session && !readable.includes(session.value) && readable === '[[],[],""]', readable);
  step("dashboard: the address is verified", await shows(page.getByText("Verified", { exact: true })));

  // Items: create, edit, delete.
  await page.getByRole("link", { name: "Items", exact: true }).click();
  await heading(page, "Items");
  await page.getByRole("button", { name: "Create item" }).click(); // empty: the service's 422 beside the title
  await page.waitForFunction(() => document.querySelector('input[name="title"]').getAttribute("aria-invalid") === "true");
  step("items: an empty title is refused beside its field", true);
  await page.getByLabel("Title").fill("First item");
  await page.getByLabel("Description (optional)").fill("Written by the test.");
  await page.getByRole("button", { name: "Create item" }).click();
  await page.getByText("First item", { exact: true }).waitFor();
  await page.getByLabel("Title").fill("Second item");
  await page.getByRole("button", { name: "Create item" }).click();
  await page.getByText("Second item", { exact: true }).waitFor();
  await page.getByRole("button", { name: "Edit First item" }).click();
  const editTitle = page.getByRole("form", { name: "Edit First item" }).getByLabel("Title");
  await editTitle.fill("Renamed item");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Renamed item", { exact: true }).waitFor();
  step("items: created two, renamed one", await shows(page.getByText("2 items in all")), await page.textContent("main"));
  await page.getByRole("button", { name: "Delete", exact: true }).first().click();
  await page.getByRole("button", { name: /^Delete (Second|Renamed) item$/ }).click();
  await page.getByText("1 item in all").waitFor();
  step("items: deleted one after confirming", true);
  // A 5xx: the page shows the detail and the request id, and keeps what was
  // typed. The answer is faked in the browser (the service's own 500s are
  // tested in Go), as nginx or the service would send it.
  const rid = "0123456789abcdef0123456789abcdef";
  await page.route("**/api/v1/items", (route) => route.request().method() !== "POST" ? route.fallback() : route.fulfill({
    status: 500, contentType: "application/problem+json", headers: { "X-Request-ID": rid },
    body: JSON.stringify({ type: "about:blank", title: "Internal Server Error", status: 500, detail: "The service failed; it has been logged.",
      instance: "/api/v1/items", code: "internal", request_id: rid }),
  }));
  await page.getByLabel("Title").fill("Kept through a failure");
  await page.getByRole("button", { name: "Create item" }).click();
  step("a 5xx shows its request id and keeps what was typed", await shows(page.getByText(`tell us this request id: ${rid}`)) &&
    await page.getByLabel("Title").inputValue() === "Kept through a failure");
  await page.unroute("**/api/v1/items");
  await page.getByLabel("Title").fill("");
  await shot(page, "items", 1280);
  await axe(page, "items", 1280);

  // A cross-site POST carrying the cookie: refused before anything is written.
  const forged = await page.request.post(base + "/api/v1/items", {
    headers: { "Sec-Fetch-Site": "cross-site", Origin: "https://evil.example", "Content-Type": "application/json" },
    data: { title: "forged" },
  });
  const forgedBody = await forged.json().catch(() => ({}));
  step("a cross-site POST with the cookie is 403 csrf", forged.status() === 403 && forgedBody.code === "csrf", { status: forged.status(), body: forgedBody });
  const after = await page.request.get(base + "/api/v1/items");
  step("… and wrote nothing", (await after.json()).count === 1);

  // Settings: the sessions, this device among them.
  await page.getByRole("link", { name: "Settings", exact: true }).click();
  await heading(page, "Settings");
  await page.getByText("This device").waitFor();
  step("settings: this device is among the sessions", true);
  await shot(page, "settings", 1280);
  await axe(page, "settings", 1280);

  // Sign out.
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await heading(page, "Sign in");
  step("signed out: the cookie is gone", !(await ctx.cookies()).some((c) => c.name === "__Host-session"));

  // Recover, open the mailed link, reset, sign in with the new password.
  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await heading(page, "Recover your password");
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Mail me a link" }).click();
  await page.locator(".success").waitFor();
  step("recover: the same answer whether or not the address has an account", /If an account/.test(await page.textContent(".success")), await page.textContent(".success"));
  await page.goto(await mailLink(email, "Reset your password", "/reset-password"));
  await heading(page, "Choose a new password");
  step("reset: the token is taken out of the address bar", page.url() === base + "/reset-password", page.url());
  await page.getByLabel("New password", { exact: true }).fill("my example passphrase");
  await page.getByLabel("Repeat the new password").fill("my example passphrase");
  await page.getByRole("button", { name: "Change password" }).click();
  await page.waitForFunction(() => document.querySelector('input[name="new_password"]').getAttribute("aria-invalid") === "true");
  step("reset: a password holding the email is refused, the link still good", true);
  await page.getByLabel("New password", { exact: true }).fill(newPassword);
  await page.getByLabel("Repeat the new password").fill(newPassword);
  await page.getByRole("button", { name: "Change password" }).click();
  await heading(page, "Sign in");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(newPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
  await heading(page, "Hello, Ada Lovelace");
  step("reset: signed in with the new password", true);

  // Two-factor sign-in: set up with oathtool's code, sign in with the next.
  await page.getByRole("link", { name: "Settings", exact: true }).click();
  await heading(page, "Settings");
  const mfa = page.getByRole("region", { name: "Two-factor sign-in" });
  await mfa.getByLabel("Current password").fill(newPassword);
  await mfa.getByRole("button", { name: "Set up an authenticator app" }).click();
  await page.locator("#totp-secret").waitFor();
  secret = (await page.textContent("#totp-secret")).trim();
  const uri = await page.getByLabel(/setup link/).inputValue();
  step("mfa: the key and the otpauth URI are shown as text", /^[A-Z2-7 ]{39}$/.test(secret) && uri.startsWith("otpauth://totp/") && uri.includes(secret.replace(/ /g, "")), uri);
  await mfa.getByLabel("The 6-digit code the app shows now").fill(oath(secret));
  await mfa.getByRole("button", { name: "Turn on two-factor sign-in" }).click();
  await page.getByRole("list", { name: "Recovery codes" }).waitFor();
  recoveryCodes = await page.getByRole("list", { name: "Recovery codes" }).locator("li").allTextContents();
  step("mfa: ten recovery codes, shown once", recoveryCodes.length === 10, recoveryCodes.length);
  await shot(page, "settings-recovery-codes", 1280);
  await page.getByRole("button", { name: "I have saved them" }).click();
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await heading(page, "Sign in");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(newPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
  await heading(page, "Two-factor sign-in");
  await page.getByLabel("Code from your authenticator app, or a recovery code").fill(oath(secret, 30)); // the next step: the current one confirmed the app
  await page.getByRole("button", { name: "Verify" }).click();
  await heading(page, "Hello, Ada Lovelace");
  step("mfa: signed in with the password and a code", true);
  await page.getByRole("link", { name: "Settings", exact: true }).click();
  await page.getByText("with a second factor").first().waitFor();
  step("mfa: the session says it was made with a second factor", true);

  // An email change takes every factor (a recovery code here), and waits
  // for the new address to follow its link.
  const emailBox = page.getByRole("region", { name: "Email", exact: true });
  const moved = "ada.lovelace@example.org";
  await emailBox.getByLabel("New email").fill(moved);
  await emailBox.getByLabel("Current password").fill(newPassword);
  await emailBox.getByLabel("Code from your app, or a recovery code").fill(recoveryCodes[1]); // the phone below signs in with the first
  await emailBox.getByRole("button", { name: "Change email" }).click();
  await emailBox.getByText("Waiting for confirmation").waitFor();
  step("email change: the code asked, the new address pending, the old one kept",
    await shows(emailBox.getByText(`We mailed a link to ${moved}.`)) && (await emailBox.textContent()).includes(`Now: ${email}`), await emailBox.textContent());
  await shot(page, "settings-email-pending", 1280);
  await page.goto(await mailLink(moved, "Confirm your new email", "/verify-email"));
  await page.getByText("Your email address is verified.").waitFor();
  await page.getByRole("link", { name: "Go to the dashboard" }).click();
  await page.getByRole("link", { name: "Settings", exact: true }).click();
  await heading(page, "Settings");
  const changed = await emailBox.textContent();
  step("email change: the link makes it, in this session", changed.includes(`Now: ${moved} (verified)`) && !changed.includes("Waiting") && !changed.includes("null"), changed);
  email = moved;
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await heading(page, "Sign in");

  // A 429 waits out Retry-After with a visible countdown (three failures
  // for this address and network are the test's budget).
  for (let i = 0; i < 4; i++) {
    await page.getByLabel("Email").fill("nobody@example.com");
    await page.getByLabel("Password").fill("wrong password " + i);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator(".alert:not([hidden])").waitFor();
    if (await page.getByText(/Too many attempts/).isVisible()) break;
    await page.waitForFunction(() => !document.querySelector('button[type="submit"]').disabled);
  }
  const countdown = await page.getByText(/Too many attempts\. You can try again in \d+ s\./).textContent().catch(() => "");
  step("429: a countdown, the button disabled", countdown && await page.getByRole("button", { name: "Sign in" }).isDisabled(), countdown);

  // A superuser: the users page, deactivate and activate again.
  await page.reload();
  await heading(page, "Sign in");
  await page.getByLabel("Email").fill(env.ADMIN_EMAIL);
  await page.getByLabel("Password").fill(env.ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: /^Hello/ }).waitFor();
  await page.getByRole("link", { name: "Users", exact: true }).click();
  await heading(page, "Users");
  const adaRow = page.getByRole("listitem").filter({ hasText: "Ada Lovelace" });
  await adaRow.getByRole("button", { name: "Deactivate" }).click();
  await adaRow.getByRole("button", { name: `Deactivate ${email}` }).click();
  await page.getByText(`${email} is deactivated.`).waitFor();
  step("users: a superuser deactivates an account", await shows(page.getByRole("listitem").filter({ hasText: "Ada Lovelace" }).getByText("Deactivated")));
  await page.getByRole("listitem").filter({ hasText: "Ada Lovelace" }).getByRole("button", { name: "Activate" }).click();
  await page.getByRole("button", { name: `Activate ${email}` }).click();
  await page.getByText(`${email} is active again.`).waitFor();
  step("users: … and activates it again", true);
  await shot(page, "users", 1280);
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await heading(page, "Sign in");
  step("no console error but the API's handled answers", seen.failedLoads <= seen.errorAnswers, seen);
  await ctx.close();

  // ---- 390 x 844: a phone. Sign in with a recovery code; the pages fit.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const p2 = await phone.newPage();
  const seen2 = watch(p2, 390);
  await p2.goto(base + "/login");
  await heading(p2, "Sign in");
  await shot(p2, "sign-in", 390);
  await axe(p2, "sign in", 390);
  await p2.getByLabel("Email").fill(email);
  await p2.getByLabel("Password").fill(newPassword);
  await p2.getByRole("button", { name: "Sign in" }).click();
  await heading(p2, "Two-factor sign-in");
  await p2.getByLabel("Code from your authenticator app, or a recovery code").fill(recoveryCodes[0]);
  await p2.getByRole("button", { name: "Verify" }).click();
  await heading(p2, "Hello, Ada Lovelace");
  step("phone: signed in with a recovery code", true, null, 390);
  for (const [link, title, name] of [["Items", "Items", "items"], ["Settings", "Settings", "settings"]]) {
    await p2.getByRole("link", { name: link, exact: true }).click();
    await heading(p2, title);
    const overflow = await p2.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    step(`phone: ${name} fits the width`, overflow <= 0, overflow, 390);
    await shot(p2, name, 390);
    await axe(p2, name, 390);
  }
  step("phone: no console error but the API's handled answers", seen2.failedLoads <= seen2.errorAnswers, seen2, 390);
  await phone.close();
} catch (e) {
  problems.push("driver: " + e.message.split("\n").slice(0, 6).join(" | "));
} finally {
  await browser.close();
}
console.log(JSON.stringify({ steps, problems }));
