// Walks the frontend (nginx/html) as a person would, through nginx over
// TLS, in one browser engine (ENGINE: chromium or firefox; browser.mjs
// drives either), finding controls by label and role. Run by
// suite_frontend_test.go, which starts the service, nginx and an SMTP
// server writing a Maildir, and reads the JSON this prints: the steps and
// the problems seen (script errors, CSP violations, console errors that
// are not the API's own answers).
//
// First passkeys, then the whole journey at 1280x800 in the light theme; then a tour of
// every page at 1280 and 390 wide, in the light and the dark theme, each
// screenshotted (SCREENSHOTS/ENGINE-THEME-WIDTH-page.png) and checked by
// axe-core, colour contrast included.
// Environment: ENGINE, E2E_NODE_DIR, BASE_URL, SPKI_PIN, MAILDIR,
// SCREENSHOTS, ADMIN_EMAIL, ADMIN_PASSWORD.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, existsSync } from "node:fs";
import path from "node:path";
import { launch } from "./browser.mjs";

const env = process.env;
const engine = env.ENGINE;
const base = env.BASE_URL;
const modulesDir = path.join(env.E2E_NODE_DIR, "node_modules");
const axeSource = readFileSync(path.join(modulesDir, "axe-core", "axe.min.js"), "utf8");

const steps = [];
const problems = [];
const step = (name, ok, detail, width = 1280) => steps.push({ step: name, width, ok: !!ok, detail });

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

// zbar decodes the QR code in a PNG with zbarimg, an independent decoder.
function zbar(file) {
  try {
    return execFileSync("zbarimg", ["-q", "--raw", file], { stdio: ["ignore", "pipe", "ignore"] }).toString().replace(/\n$/, "");
  } catch (e) {
    return `zbarimg failed: ${e.message.split("\n")[0]}`;
  }
}

// axe runs axe-core on the page and keeps its serious and critical
// violations, colour contrast among them. It is evaluated by the driver
// (the DevTools protocol, or WebDriver BiDi), which the page's CSP does
// not govern.
async function axe(page, name) {
  const result = await page.evaluate(`(async () => {
    if (!window.axe) { ${axeSource} }
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return {
      rulesPassed: r.passes.length,
      contrastChecked: r.passes.some((p) => p.id === "color-contrast") || r.violations.some((v) => v.id === "color-contrast"),
      violations: r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => v.id + " (" + v.impact + "): " + v.nodes.map((n) => n.target.join(" ")).join(", ")),
    };
  })()`);
  // rulesPassed: axe really looked (a page it could not read passes nothing).
  step(`axe, ${page.theme}: ${name}`, result.violations.length === 0 && result.rulesPassed >= 10 && result.contrastChecked, result, page.width);
}

async function shot(page, name) {
  await page.screenshot(path.join(env.SCREENSHOTS, `${engine}-${page.theme}-${page.width}-${name}.png`));
}

// ready waits for the page to be drawn: its heading, and no longer busy.
async function ready(page, title) {
  await page.get({ role: "heading", level: 1, name: title, exact: typeof title === "string" });
  await page.waitFor(() => !document.getElementById("main").hasAttribute("aria-busy"));
}

async function signIn(page, email, password) {
  await page.fill({ label: "Email" }, email);
  await page.fill({ label: "Password", exact: true }, password);
  await page.click({ role: "button", name: "Sign in", exact: true, within: { css: "main" } });
}

// inPage sends an API request from the page, on its cookie session (the
// page's own origin, so the CSRF check passes), and answers the status.
const inPage = (page, method, p, body) => page.evaluate(async ([method, p, body]) => {
  const r = await fetch("/api/v1" + p, { method, headers: { "Content-Type": "application/json" }, body: body && JSON.stringify(body) });
  return r.status;
}, [method, p, body]);

// otherSession signs in from outside the browser: a second session of the
// account, to be ended by what the page does.
async function otherSession(email, password) {
  const r = await fetch(base + "/api/v1/auth/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ email, password }) });
  return r.status;
}

// holdAPI holds every API request the page sends until release is called.
function holdAPI(page) {
  let release;
  const gate = new Promise((r) => { release = r; });
  page.intercept((url) => url.includes("/api/v1/"), () => gate.then(() => null));
  return async () => {
    release();
    await page.unintercept();
  };
}

// loadingShows holds the page's first requests back and checks that it
// says it is loading meanwhile, then lets them go and waits for the page.
async function loadingShows(page, name, go, title) {
  const release = holdAPI(page);
  await go();
  const busy = await page.shows({ css: 'main[aria-busy="true"] .loading' });
  await release();
  await ready(page, title);
  step(`loading: ${name} shows its loading state while its first request is held`, busy, null, page.width);
}

// passkeys walks a passkey's life on a page of its own, in Chromium on a
// virtual authenticator: sign up and verify, add a passkey in settings,
// sign in with it from the email field's autofill and from the button,
// nothing typed (a passkey session with a second factor), rename it,
// delete it confirming with the passkey in place of the password, and a
// sign-in with the deleted passkey refused. Firefox over BiDi has no virtual authenticator: there
// the sign-in page and settings offer passkeys, and the tour checks them.
async function passkeys(b) {
  const p = await b.newPage({ width: 1280, height: 800 });
  const region = { role: "region", name: "Passkeys", exact: true };
  if (!p.virtualAuthenticator) {
    await p.goto(base + "/login");
    await ready(p, "Sign in");
    step("passkeys: the sign-in page offers a passkey, and the email field its autofill", await p.shows({ role: "button", name: "Sign in with a passkey" }) &&
      await (await p.get({ label: "Email" })).attr("autocomplete") === "username webauthn");
    await p.close();
    return p.problems;
  }
  const key = await p.virtualAuthenticator();
  const grace = "grace@example.com";
  const gracePassword = "compilers all the way down";
  await p.goto(base + "/signup");
  await ready(p, "Sign up");
  await p.fill({ label: "Full name (optional)" }, "Grace Hopper");
  await p.fill({ label: "Email" }, grace);
  await p.fill({ label: "Password", exact: true }, gracePassword);
  await p.fill({ label: "Repeat the password" }, gracePassword);
  await p.click({ role: "button", name: "Create account" });
  await ready(p, "Sign in");
  await p.goto(await mailLink(grace, "Confirm your email", "/verify-email"));
  await p.get({ text: "Your email address is verified.", exact: true });
  await p.click({ role: "link", name: "Sign in" });
  await ready(p, "Sign in");
  await signIn(p, grace, gracePassword);
  await ready(p, "Hello, Grace Hopper");
  await p.click({ role: "link", name: "Settings", exact: true });
  await ready(p, "Settings");
  step("passkeys: none yet", await p.shows({ text: "No passkeys yet.", exact: true, within: region }));

  // Add one: every factor first (here the password), then the browser.
  await p.click({ role: "button", name: "Add a passkey", exact: true, within: region });
  step("passkeys: adding without the password says “Is required.”", await p.shows({ text: "Is required.", exact: true, within: region }));
  await p.fill({ label: "Name (optional)", within: region }, "Work laptop");
  await p.fill({ label: "Current password", within: region }, gracePassword);
  await p.click({ role: "button", name: "Add a passkey", exact: true, within: region });
  await p.get({ text: /“Work laptop” is added/, within: region });
  const held = await key.credentials();
  step("passkeys: added, listed, and held by the authenticator as a discoverable credential for localhost",
    await p.shows({ text: "Work laptop", exact: true, within: { role: "list", name: "Your passkeys" } }) && await p.shows({ text: /not used yet/, within: region }) &&
    held.length === 1 && held[0].isResidentCredential && held[0].rpId === "localhost", held.map((c) => ({ rpId: c.rpId, resident: c.isResidentCredential, signCount: c.signCount })));
  await shot(p, "settings-passkeys");
  await axe(p, "settings with a passkey");

  // Sign out: the sign-in page asks the browser for a passkey for the
  // email field's autofill (conditional mediation), and the virtual
  // authenticator, present at once, answers it as a person picking the
  // passkey there would: signed in, nothing typed.
  const passkeySession = async () => (await p.evaluate(async () => (await (await fetch("/api/v1/users/me/sessions")).json()).data)).filter((s) => s.current);
  await p.click({ role: "button", name: "Sign out", exact: true, within: { css: "nav" } });
  await ready(p, "Hello, Grace Hopper");
  let current = await passkeySession();
  step("passkeys: the email field's autofill signs in with the passkey, nothing typed: a passkey session with a second factor",
    current.length === 1 && current[0].method === "passkey" && current[0].mfa === true, current);

  // Where the browser has no autofill for passkeys, the button: the email
  // field left empty.
  const noAutofill = () => p.evaluate(() => { PublicKeyCredential.isConditionalMediationAvailable = async () => false; });
  await noAutofill();
  await p.click({ role: "button", name: "Sign out", exact: true, within: { css: "nav" } });
  await ready(p, "Sign in");
  const typed = await (await p.get({ label: "Email" })).value();
  await p.click({ role: "button", name: "Sign in with a passkey" });
  await ready(p, "Hello, Grace Hopper");
  current = await passkeySession();
  step("passkeys: the button signs in with the passkey, the email field left empty: a passkey session with a second factor (the user was verified)",
    typed === "" && current.length === 1 && current[0].method === "passkey" && current[0].mfa === true, { typed, current });
  await p.click({ role: "link", name: "Settings", exact: true });
  await ready(p, "Settings");
  step("passkeys: the sessions list says so", await p.shows({ text: /with a passkey · last used .* · with a second factor\./, within: { role: "region", name: "Sessions", exact: true } }));
  step("passkeys: the row says it was used", await p.shows({ text: /last used/, within: { role: "list", name: "Your passkeys" } }));

  // Rename, then delete (every factor again).
  await p.click({ role: "button", name: "Rename Work laptop", within: region });
  await p.fill({ label: "Name", exact: true, within: region }, "Home laptop");
  await p.click({ role: "button", name: "Save name", within: region });
  await p.get({ text: "The passkey is renamed “Home laptop”.", exact: true, within: region });
  step("passkeys: renamed in the list", await p.shows({ text: "Home laptop", exact: true, within: { role: "list", name: "Your passkeys" } }) &&
    await p.gone({ text: "Work laptop", exact: true, within: region }));
  // Deleting it re-authenticates with the passkey itself, in place of the
  // password (nothing typed).
  await p.click({ role: "button", name: "Delete Home laptop", within: region });
  await axe(p, "deleting a passkey");
  const deleting = { role: "form", name: "Delete Home laptop" };
  await p.click({ role: "button", name: "Confirm with a passkey instead", within: deleting });
  await p.get({ text: "“Home laptop” is deleted.", exact: true, within: region });
  step("passkeys: deleted after confirming with the passkey, nothing typed, none left", await p.shows({ text: "No passkeys yet.", exact: true, within: region }));

  // The authenticator still holds it; the service no longer takes it.
  await noAutofill();
  await p.click({ role: "button", name: "Sign out", exact: true, within: { css: "nav" } });
  await ready(p, "Sign in");
  await p.click({ role: "button", name: "Sign in with a passkey" });
  const refused = await p.text({ css: 'form[aria-label="Sign in with a passkey"] .alert:not([hidden])' }).catch((e) => e.message);
  step("passkeys: the deleted passkey signs no one in, and the page says so", /could not sign you in/.test(refused) &&
    await p.shows({ role: "heading", level: 1, name: "Sign in", exact: true }), refused);
  await axe(p, "sign-in, a passkey refused");
  step("passkeys: no console error but the API's handled answers", p.answers.failedLoads <= p.answers.errorAnswers, p.answers);
  await key.remove();
  await p.close();
  return p.problems;
}

let email = "ada@example.com"; // moved to a new address by the journey
const firstPassword = "analytical engine 1843";
const newPassword = "notes on the engine";
let secret = "";
let recoveryCodes = [];

const browsers = [];
try {
  // ---- 1280 x 800, light: the whole journey.
  const light = await launch(engine, { modulesDir, spkiPin: env.SPKI_PIN, theme: "light" });
  browsers.push(light);
  problems.push(...await passkeys(light));
  const page = await light.newPage({ width: 1280, height: 800 });

  await loadingShows(page, "the start (who is signed in)", () => page.goto(base + "/"), "Sign in");
  step("signed out, / leads to sign in", page.url() === base + "/login", page.url());

  // Sign up: empty fields say "Is required." each; a common password is
  // refused beside its field; nothing typed is lost.
  await page.click({ role: "link", name: "Sign up", exact: true, within: { css: "main" } });
  await ready(page, "Sign up");
  await page.click({ role: "button", name: "Create account" });
  await page.waitFor(() => document.querySelectorAll('[aria-invalid="true"]').length === 3);
  const required = await page.evaluate(() => [...document.querySelectorAll(".field-error:not([hidden])")].map((e) => e.textContent));
  step("sign up: every empty required field says “Is required.”", required.length === 3 && required.every((t) => t === "Is required."), required);
  await page.fill({ label: "Full name (optional)" }, "Ada Lovelace");
  await page.fill({ label: "Email" }, email);
  await page.fill({ label: "Password", exact: true }, "password1");
  await page.fill({ label: "Repeat the password" }, "password1");
  await page.click({ role: "button", name: "Create account" });
  await page.waitFor(() => document.querySelector('input[name="password"]').getAttribute("aria-invalid") === "true");
  const described = await page.evaluate(() => {
    const el = document.querySelector('input[name="password"]');
    return el.getAttribute("aria-describedby").split(" ").map((id) => document.getElementById(id).textContent).join(" ");
  });
  step("sign up: a common password is refused beside its field", /common/.test(described), described);
  step("sign up: nothing typed is lost", await (await page.get({ label: "Email" })).value() === email && await (await page.get({ label: "Full name (optional)" })).value() === "Ada Lovelace");
  await page.fill({ label: "Password", exact: true }, firstPassword);
  await page.fill({ label: "Repeat the password" }, firstPassword);
  await page.click({ role: "button", name: "Create account" });
  await ready(page, "Sign in");
  step("sign up: on to sign in, the address filled in", await (await page.get({ label: "Email" })).value() === email);

  // Signed in before verifying: the dashboard says so and mails a new
  // link on request; the newest mailed link verifies the address.
  await signIn(page, email, firstPassword);
  await ready(page, "Hello, Ada Lovelace");
  step("dashboard: the address is not verified yet", await page.shows({ text: "Not verified", exact: true }));
  await page.click({ role: "button", name: "Send a new link" });
  step("dashboard: a new verification link, on request, says so", await page.shows({ css: ".action-line .success" }), await page.text({ css: ".action-line" }).catch(() => ""));
  const verifyLink = await mailLink(email, "Confirm your email", "/verify-email");
  await loadingShows(page, "verify (the mailed link)", () => page.goto(verifyLink), "Verify your email");
  step("verify: the mailed link verifies", await page.shows({ text: "Your email address is verified.", exact: true }) && page.url() === base + "/verify-email", page.url());
  await page.click({ role: "link", name: "Go to the dashboard" });
  await ready(page, "Hello, Ada Lovelace");
  const session = (await page.cookies()).find((c) => c.name === "__Host-session");
  step("the session cookie: HttpOnly, Secure, SameSite=Strict, Path=/", session && session.httpOnly && session.secure &&
    /strict/i.test(session.sameSite) && session.path === "/", session && { ...session, value: "…" });
  const readable = await page.evaluate(() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.cookie]));
  step("no token where script can read it", session && !readable.includes(session.value) && readable === '[[],[],""]', readable);
  step("dashboard: the address is verified", await page.shows({ text: "Verified", exact: true }));

  // Every page says it is loading while its first request is held.
  await loadingShows(page, "items", () => page.click({ role: "link", name: "Items", exact: true }), "Items");
  await loadingShows(page, "settings", () => page.click({ role: "link", name: "Settings", exact: true }), "Settings");
  await loadingShows(page, "the dashboard", () => page.click({ role: "link", name: "Dashboard", exact: true }), "Hello, Ada Lovelace");

  // Items: create (an empty title is refused beside its field), edit,
  // delete, each saying it worked.
  await page.click({ role: "link", name: "Items", exact: true });
  await ready(page, "Items");
  await page.click({ css: "details.card summary" });
  await page.click({ role: "button", name: "Create item" });
  await page.waitFor(() => document.querySelector('input[name="title"]').getAttribute("aria-invalid") === "true");
  step("items: an empty title says “Is required.” beside it", await page.shows({ text: "Is required.", exact: true }));
  await page.fill({ label: "Title" }, "First item");
  await page.fill({ label: "Description (optional)" }, "Written by the test.");
  await page.click({ role: "button", name: "Create item" });
  await page.get({ text: "First item", exact: true, within: { role: "table" } });
  step("items: a create says so", await page.shows({ text: "Created “First item”.", exact: true, within: { css: "#flash" } }));
  await page.click({ role: "button", name: "Edit First item" });
  await page.fill({ label: "Title", within: { role: "form", name: "Edit First item" } }, "Renamed item");
  await page.click({ role: "button", name: "Save", exact: true });
  await page.get({ text: "Renamed item", exact: true, within: { role: "table" } });
  step("items: an edit says so, and the row shows what the server saved",
    await page.shows({ text: "Saved “Renamed item”.", exact: true }) && await page.shows({ text: "1 item in all.", exact: true }));
  // Two tabs on the one session: this one opens the edit form; the other
  // saves a new title first; this tab's save is then stale: the change
  // made elsewhere is shown, what was typed is kept, and reapplied it saves
  // over the version shown.
  await page.click({ role: "button", name: "Edit Renamed item" });
  const editing = { role: "form", name: "Edit Renamed item" };
  const itemId = await page.evaluate(async () => (await (await fetch("/api/v1/items?limit=1")).json()).data[0].id);
  const other = await page.tab();
  await other.goto(base + "/items");
  await ready(other, "Items");
  await other.click({ role: "button", name: "Edit Renamed item" });
  await other.fill({ label: "Title", within: editing }, "Changed in another tab");
  await other.click({ role: "button", name: "Save", exact: true });
  const otherTab = await other.shows({ text: "Saved “Changed in another tab”.", exact: true }) ? 200 : 0;
  await other.close(); // what the tab's page saw is collected as it closes
  problems.push(...other.problems);
  await page.fill({ label: "Description", within: editing }, "Typed in this tab");
  await page.click({ role: "button", name: "Save", exact: true });
  await page.get({ text: "This item was changed elsewhere.", exact: true });
  step("items: a stale save shows the change made elsewhere, and keeps what was typed", otherTab === 200 &&
    await page.shows({ text: /It is now “Changed in another tab”/ }) &&
    await (await page.get({ label: "Description", within: editing })).value() === "Typed in this tab", otherTab);
  await shot(page, "items-conflict");
  await axe(page, "items, an edit made stale elsewhere");
  await page.click({ role: "button", name: "Reapply my changes" });
  await page.get({ text: "Saved “Renamed item”.", exact: true });
  const reapplied = await page.evaluate(async (id) => (await (await fetch(`/api/v1/items/${id}`)).json()), itemId);
  step("items: reapplied over the version shown, nothing typed lost", reapplied.title === "Renamed item" && reapplied.description === "Typed in this tab" &&
    reapplied.version === 4 && await page.shows({ text: "Typed in this tab", exact: true, within: { role: "table" } }), reapplied);
  // A 5xx: the page shows the detail and the request id, and keeps what
  // was typed. The answer is faked in the browser (the service's own 500s
  // are tested in Go), as nginx or the service would send it.
  // While the request is out, its button says it is busy.
  const rid = "0123456789abcdef0123456789abcdef";
  let answer5xx;
  const held = new Promise((r) => { answer5xx = r; });
  await page.intercept((url, method) => method === "POST" && url.endsWith("/api/v1/items"), () => held.then(() => ({
    status: 500, headers: { "Content-Type": "application/problem+json", "X-Request-ID": rid },
    body: JSON.stringify({ type: "about:blank", title: "Internal Server Error", status: 500, detail: "The service failed; it has been logged.",
      instance: "/api/v1/items", code: "internal", request_id: rid }),
  })));
  await page.click({ css: "details.card summary" });
  await page.fill({ label: "Title" }, "Kept through a failure");
  await page.click({ role: "button", name: "Create item" });
  const busyButton = await page.shows({ css: 'button[aria-busy="true"][disabled]' });
  answer5xx();
  step("a button shows it is busy while its request is out", busyButton);
  step("a 5xx shows its request id and keeps what was typed", await page.shows({ text: `tell us this request id: ${rid}` }) &&
    await (await page.get({ label: "Title" })).value() === "Kept through a failure");
  await page.unintercept();

  // 20 more items: page 3 of 3 by Next, kept by reload, Back and Forward.
  for (let i = 1; i <= 20; i++) await inPage(page, "POST", "/items", { title: `Paged ${String(i).padStart(2, "0")}` });
  await page.goto(base + "/items");
  await ready(page, "Items");
  step("items: page 1 of 3", await page.shows({ text: "Page 1 of 3", exact: true }) && await page.shows({ text: "21 items in all.", exact: true }));
  await page.click({ role: "link", name: "Next page" });
  await page.get({ text: "Page 2 of 3", exact: true });
  await page.click({ role: "link", name: "Next page" });
  await page.get({ text: "Page 3 of 3", exact: true });
  const page3 = page.url();
  const rows3 = await page.evaluate(() => [...document.querySelectorAll("tbody .title")].map((e) => e.textContent).join(","));
  step("items: page 3's address holds its cursor and limit", /[?&]cursor=/.test(page3) && /[?&]limit=10/.test(page3) && /[?&]page=3/.test(page3), page3);
  await page.reload();
  await ready(page, "Items");
  const afterReload = await page.evaluate(() => [...document.querySelectorAll("tbody .title")].map((e) => e.textContent).join(","));
  step("items: a reload keeps page 3", await page.shows({ text: "Page 3 of 3", exact: true }) && afterReload === rows3, { rows3, afterReload });
  await page.back();
  step("items: Back shows page 2", await page.shows({ text: "Page 2 of 3", exact: true }), page.url());
  await page.forward();
  step("items: Forward shows page 3 again", await page.shows({ text: "Page 3 of 3", exact: true }) && page.url() === page3, page.url());
  await page.click({ role: "link", name: "Previous page" });
  step("items: Previous from page 3 is page 2", await page.shows({ text: "Page 2 of 3", exact: true }), page.url());
  // Delete the one row of the last page: on to the page before.
  await page.goto(page3);
  await ready(page, "Items");
  const lastTitle = (await page.text({ css: "tbody .title" })).trim();
  await page.click({ role: "button", name: "Delete", exact: true });
  await page.click({ role: "button", name: `Delete ${lastTitle}` });
  await page.get({ text: `Deleted “${lastTitle}”.`, exact: true, within: { css: "#flash" } });
  step("items: a delete says so, and the emptied page gives way to page 2", await page.shows({ text: "Page 2 of 2", exact: true }) &&
    await page.shows({ text: "20 items in all.", exact: true }), page.url());
  await shot(page, "items-journey");

  // A cross-site POST carrying the cookie: refused before anything is written.
  const cookie = `__Host-session=${session.value}`;
  const forged = await fetch(base + "/api/v1/items", {
    method: "POST", headers: { Cookie: cookie, "Sec-Fetch-Site": "cross-site", Origin: "https://evil.example", "Content-Type": "application/json" },
    body: JSON.stringify({ title: "forged" }),
  });
  const forgedBody = await forged.json().catch(() => ({}));
  step("a cross-site POST with the cookie is 403 csrf", forged.status === 403 && forgedBody.code === "csrf", { status: forged.status, body: forgedBody });
  const count = await (await fetch(base + "/api/v1/items?limit=1", { headers: { Cookie: cookie } })).json();
  step("… and wrote nothing", count.count === 20, count.count);

  // Settings: ending the other sessions shows the list the server now
  // holds, and the confirmation closes.
  await otherSession(email, firstPassword);
  await page.click({ role: "link", name: "Settings", exact: true });
  await ready(page, "Settings");
  const sessionsRegion = { role: "region", name: "Sessions", exact: true };
  const sessionCount = () => page.evaluate(() => document.querySelectorAll('[aria-label="Your sessions"] > li').length);
  step("settings: this device and the other session are listed", await page.shows({ text: "This device", exact: true }) && await sessionCount() === 2, await sessionCount());
  await page.click({ role: "button", name: "Sign out all other sessions", within: sessionsRegion });
  await page.click({ role: "button", name: "Sign out every other session", within: sessionsRegion });
  await page.get({ text: "Every other session is signed out.", exact: true });
  step("sessions: ending the others lists only this device, and the confirmation closes", await sessionCount() === 1 &&
    await page.gone({ role: "button", name: "Sign out every other session" }) && await page.shows({ role: "button", name: "Sign out all other sessions" }), await sessionCount());

  // A password change ends the other sessions: the list shows it at once.
  await otherSession(email, firstPassword);
  await page.reload();
  await ready(page, "Settings");
  const pw = { role: "region", name: "Password", exact: true };
  await page.fill({ label: "Current password", within: pw }, firstPassword);
  await page.fill({ label: "New password", exact: true, within: pw }, newPassword);
  await page.fill({ label: "Repeat the new password", within: pw }, newPassword + " typo");
  await page.click({ role: "button", name: "Change password", within: pw });
  step("password: a repeat that differs is refused beside it", await page.shows({ text: "Does not match the password above.", exact: true }));
  const before = await sessionCount();
  await page.fill({ label: "Repeat the new password", within: pw }, newPassword);
  await page.click({ role: "button", name: "Change password", within: pw });
  await page.get({ text: "Your password is changed, and your other sessions are signed out.", exact: true });
  await page.waitFor(() => document.querySelectorAll('[aria-label="Your sessions"] > li').length === 1).catch(() => {});
  step("password: the change says so, and the sessions list drops the one it ended", before === 2 && await sessionCount() === 1, { before, after: await sessionCount() });
  await shot(page, "settings-journey");

  // Appearance: Dark at once, kept across a reload with no light first
  // paint; localStorage holds that choice and nothing else.
  await page.click({ role: "radio", name: "Dark" });
  const dark = await page.evaluate(() => [document.documentElement.dataset.theme, getComputedStyle(document.documentElement).backgroundColor]);
  await page.reload();
  await ready(page, "Settings");
  const firstPaint = await page.evaluate(() => window.__themeAtParse);
  const stored = await page.evaluate(() => JSON.stringify(Object.entries(localStorage)));
  step("appearance: Dark applies at once and on the next load, before the first paint", dark[0] === "dark" && dark[1] === "rgb(17, 24, 32)" &&
    firstPaint === "dark rgb(17, 24, 32)" && await (await page.get({ role: "radio", name: "Dark" })).handle.evaluate((el) => el.checked), { dark, firstPaint });
  step("appearance: localStorage holds the choice and nothing else", stored === '[["appearance","dark"]]', stored);
  await page.click({ role: "radio", name: "System" });
  step("appearance: System follows the system again", await page.evaluate(() => !document.documentElement.dataset.theme && !localStorage.length));

  // The profile changed in another tab: this tab's stale save shows the
  // name now held; discarded, the form shows it; saved again, it is ours.
  const profileBox = { role: "region", name: "Profile", exact: true };
  await inPage(page, "PATCH", "/users/me", { full_name: "Ada King" });
  await page.fill({ label: "Full name", within: profileBox }, "Augusta Ada");
  await page.click({ role: "button", name: "Save profile" });
  await page.get({ text: "Your profile was changed elsewhere.", exact: true });
  step("profile: a stale save shows the name set elsewhere, and keeps what was typed", await page.shows({ text: /Your name is now “Ada King”/ }) &&
    await (await page.get({ label: "Full name", within: profileBox })).value() === "Augusta Ada");
  await shot(page, "settings-profile-conflict");
  await page.click({ role: "button", name: "Discard mine" });
  step("profile: discarded, the form shows the name held now", await (await page.get({ label: "Full name", within: profileBox })).value() === "Ada King" &&
    await page.gone({ text: "Your profile was changed elsewhere.", exact: true }));
  await page.fill({ label: "Full name", within: profileBox }, "Ada Lovelace");
  await page.click({ role: "button", name: "Save profile" });
  await page.get({ text: "Your profile is saved.", exact: true });

  // Sign out.
  await page.click({ role: "button", name: "Sign out", exact: true, within: { css: "nav" } });
  await ready(page, "Sign in");
  step("signed out: the cookie is gone", !(await page.cookies()).some((c) => c.name === "__Host-session"));

  // Recover, open the mailed link, reset, sign in with the new password.
  await page.click({ role: "link", name: "Forgot your password?" });
  await ready(page, "Recover your password");
  await page.fill({ label: "Email" }, email);
  await page.click({ role: "button", name: "Mail me a link" });
  const recovered = await page.text({ css: ".success" });
  step("recover: the same answer whether or not the address has an account", /If an account/.test(recovered), recovered);
  await page.goto(await mailLink(email, "Reset your password", "/reset-password"));
  await ready(page, "Choose a new password");
  step("reset: the token is taken out of the address bar", page.url() === base + "/reset-password", page.url());
  await page.fill({ label: "New password", exact: true }, "my ada@example.com passphrase");
  await page.fill({ label: "Repeat the new password" }, "my ada@example.com passphrase");
  await page.click({ role: "button", name: "Change password" });
  await page.waitFor(() => document.querySelector('input[name="new_password"]').getAttribute("aria-invalid") === "true");
  step("reset: a password holding the email is refused, the link still good", true);
  const resetPassword = "a fresh passphrase 1843";
  await page.fill({ label: "New password", exact: true }, resetPassword);
  await page.fill({ label: "Repeat the new password" }, resetPassword);
  await page.click({ role: "button", name: "Change password" });
  await ready(page, "Sign in");
  await signIn(page, email, resetPassword);
  await ready(page, "Hello, Ada Lovelace");
  step("reset: signed in with the new password", true);

  // Two-factor sign-in: the QR code decodes (zbarimg) to the setup link
  // shown beside it; confirm with oathtool's code; sign in with the next.
  await page.click({ role: "link", name: "Settings", exact: true });
  await ready(page, "Settings");
  const mfa = { role: "region", name: "Two-factor sign-in", exact: true };
  await page.click({ role: "button", name: "Set up an authenticator app", within: mfa });
  step("mfa: set up with an empty password says “Is required.”", await page.shows({ text: "Is required.", exact: true, within: mfa }));
  await page.fill({ label: "Current password", within: mfa }, resetPassword);
  await page.click({ role: "button", name: "Set up an authenticator app", within: mfa });
  await page.get({ css: "#totp-secret" });
  secret = (await page.text({ css: "#totp-secret" })).trim();
  const uri = await (await page.get({ label: /setup link/ })).value();
  const qr = await page.get({ role: "img", name: /QR code/ });
  const qrFile = path.join(env.SCREENSHOTS, `${engine}-qr-enrolment.png`);
  await qr.screenshot(qrFile);
  const decoded = zbar(qrFile);
  step("mfa: the QR code decodes to exactly the setup link", decoded === uri && uri.startsWith("otpauth://totp/") && uri.includes(secret.replace(/ /g, "")),
    { decoded, uri, version: await qr.attr("data-version"), mask: await qr.attr("data-mask") });
  await shot(page, "settings-enrolment");
  await page.fill({ label: "The 6-digit code the app shows now", within: mfa }, oath(secret));
  await page.click({ role: "button", name: "Turn on two-factor sign-in", within: mfa });
  await page.get({ role: "list", name: "Recovery codes" });
  recoveryCodes = await page.evaluate(() => [...document.querySelectorAll('[aria-label="Recovery codes"] li')].map((li) => li.textContent));
  step("mfa: ten recovery codes, shown once", recoveryCodes.length === 10, recoveryCodes.length);
  await page.click({ role: "button", name: "I have saved them" });
  await ready(page, "Settings");
  step("mfa: on, with 10 recovery codes left, re-read from the server", await page.shows({ text: "10 recovery codes left of 10.", exact: true }) &&
    await page.shows({ text: "Two-factor sign-in is on.", exact: true, within: { css: "#flash" } }));
  await page.click({ role: "button", name: "Sign out", exact: true, within: { css: "nav" } });
  await ready(page, "Sign in");
  await signIn(page, email, resetPassword);
  await ready(page, "Two-factor sign-in");
  await page.fill({ label: "Code from your authenticator app, or a recovery code" }, oath(secret, 30)); // the next step: the current one confirmed the app
  await page.click({ role: "button", name: "Verify" });
  await ready(page, "Hello, Ada Lovelace");
  step("mfa: signed in with the password and a code", true);

  // An email change takes every factor (a recovery code here), waits for
  // the new address to follow its link, and then shows the new address.
  await page.click({ role: "link", name: "Settings", exact: true });
  await ready(page, "Settings");
  step("mfa: the session says it was made with a second factor", await page.shows({ text: /with a second factor/ }));
  const emailBox = { role: "region", name: "Email", exact: true };
  const moved = "ada.lovelace@example.org";
  await page.fill({ label: "New email", within: emailBox }, moved);
  await page.fill({ label: "Current password", within: emailBox }, resetPassword);
  await page.fill({ label: "Code from your app, or a recovery code", within: emailBox }, recoveryCodes[1]); // the phone below signs in with the first
  await page.click({ role: "button", name: "Change email", within: emailBox });
  await page.get({ text: /Waiting for confirmation/, within: emailBox });
  const pendingText = await page.text(emailBox);
  step("email change: the code asked, the new address pending, the old one kept", pendingText.includes(`We mailed a link to ${moved}.`) &&
    pendingText.includes(`Now: ${email} (verified).`), pendingText);
  step("email change: the recovery code it took is counted at once", await page.shows({ text: "9 recovery codes left of 10.", exact: true }));
  await shot(page, "settings-email-pending");
  await page.goto(await mailLink(moved, "Confirm your new email", "/verify-email"));
  await page.get({ text: "Your email address is verified.", exact: true });
  await page.click({ role: "link", name: "Go to the dashboard" });
  await ready(page, "Hello, Ada Lovelace");
  step("email change: the dashboard shows the new address", await page.shows({ text: moved, within: { role: "region", name: "Email", exact: true } }));
  await page.click({ role: "link", name: "Settings", exact: true });
  await ready(page, "Settings");
  const changed = await page.text(emailBox);
  step("email change: settings shows the new address, verified, nothing pending", changed.includes(`Now: ${moved} (verified).`) &&
    !changed.includes("Waiting") && !changed.includes("null"), changed);
  step("mfa: the recovery codes left, re-read: 9", await page.shows({ text: "9 recovery codes left of 10.", exact: true }));
  email = moved;
  await page.click({ role: "button", name: "Sign out", exact: true, within: { css: "nav" } });
  await ready(page, "Sign in");

  // A 429 waits out Retry-After with a visible countdown (three failures
  // for this address and network are the test's budget).
  for (let i = 0; i < 4; i++) {
    await signIn(page, "nobody@example.com", "wrong password " + i);
    await page.get({ css: ".alert:not([hidden])" });
    if (await page.shows({ text: /Too many attempts/ }, 300)) break;
    await page.waitFor(() => !document.querySelector('main button[type="submit"]').disabled);
  }
  const countdown = await page.text({ text: /Too many attempts\. You can try again in \d+ s\./ }).catch(() => "");
  step("429: a countdown, the button disabled", countdown && await (await page.get({ role: "button", name: "Sign in", exact: true, within: { css: "main" } })).disabled(), countdown);

  // A superuser: all items with their owner, narrowed to their own; the
  // users table; one confirmation open at a time in a row, closed once
  // its action is done.
  await page.reload();
  await ready(page, "Sign in");
  await signIn(page, env.ADMIN_EMAIL, env.ADMIN_PASSWORD);
  await ready(page, /^Hello/);
  step("dashboard: a superuser's count is of every item, and of their own", await page.shows({ text: "20 items in all, 0 of them yours.", exact: true }));
  await page.click({ role: "link", name: "Items", exact: true });
  await ready(page, "Items");
  step("items: a superuser sees “All items” with an owner column", await page.shows({ role: "heading", name: "All items", exact: true }) &&
    await page.shows({ text: "Owner", exact: true, within: { css: "thead" } }) && await page.shows({ text: `Ada Lovelace (${email})`, exact: true, within: { role: "table" } }));
  await page.click({ role: "link", name: "Show only mine" });
  await ready(page, "Items");
  step("items: … and narrows it to their own", await page.shows({ role: "heading", name: "Your items", exact: true }) &&
    await page.shows({ text: "0 items in all.", exact: true }) && /mine=true/.test(page.url()), page.url());
  await loadingShows(page, "users", () => page.click({ role: "link", name: "Users", exact: true }), "Users");
  const adaRow = { role: "row", hasText: email };
  step("users: the table shows active, verified and two-factor", await page.shows({ text: "Verified", exact: true, within: { css: "thead" } }) &&
    await page.shows({ text: "Two-factor", exact: true, within: { css: "thead" } }) && await page.shows({ text: "On", exact: true, within: adaRow }));
  await page.click({ role: "button", name: "Deactivate", exact: true, within: adaRow });
  await page.click({ role: "button", name: "End sessions", exact: true, within: adaRow });
  const open = await page.evaluate(() => [...document.querySelectorAll(".confirm.open")].map((c) => c.textContent));
  step("users: one confirmation open at a time in a row", open.length === 1 && open[0].startsWith("End every session"), open);
  await page.click({ role: "button", name: "Cancel", within: adaRow });
  await page.click({ role: "button", name: "Deactivate", exact: true, within: adaRow });
  await page.click({ role: "button", name: `Deactivate ${email}` });
  await page.get({ text: `${email} is deactivated.`, exact: true, within: { css: "#flash" } });
  step("users: a deactivation says so, the row shows it, the confirmation is gone", await page.shows({ text: "No", exact: true, within: adaRow }) &&
    await page.gone({ role: "button", name: `Deactivate ${email}` }) && await page.shows({ role: "button", name: "Activate", exact: true, within: adaRow }));
  await page.click({ role: "button", name: "Activate", exact: true, within: adaRow });
  await page.click({ role: "button", name: `Activate ${email}` });
  await page.get({ text: `${email} is active again.`, exact: true, within: { css: "#flash" } });
  step("users: … and activates it again", true);
  await page.click({ role: "button", name: "Sign out", exact: true, within: { css: "nav" } });
  await ready(page, "Sign in");

  // Every engine reports the API's own 4xx/5xx answers its way: Chromium
  // as console errors, counted against the answers seen.
  step("no console error but the API's handled answers", page.answers.failedLoads <= page.answers.errorAnswers, page.answers);
  await light.close();
  browsers.length = 0;

  // ---- The tour: every page, at both widths, in both themes.
  for (const theme of ["light", "dark"]) {
    const b = await launch(engine, { modulesDir, spkiPin: env.SPKI_PIN, theme });
    browsers.push(b);
    for (const [width, height] of [[1280, 800], [390, 844]]) {
      const p = await b.newPage({ width, height, mobile: width < 600 });
      const visit = async (name, title) => {
        await ready(p, title);
        const overflow = await p.evaluate(() => document.documentElement.scrollWidth - innerWidth);
        step(`${theme}: ${name} fits the width`, overflow <= 0, overflow, width);
        await shot(p, name);
        await axe(p, name);
      };
      for (const [route, name, title] of [["/login", "sign-in", "Sign in"], ["/signup", "sign-up", "Sign up"], ["/recover-password", "recover", "Recover your password"],
        ["/reset-password", "reset", "Choose a new password"], ["/verify-email", "verify", "Verify your email"], ["/nowhere", "not-found", "Not found"]]) {
        await p.goto(base + route);
        await visit(name, title);
      }
      await p.goto(base + "/login");
      await ready(p, "Sign in");
      // Ada signs in with a recovery code each time (a code of the app
      // would wait for its next step).
      await signIn(p, email, resetPassword);
      await ready(p, "Two-factor sign-in");
      await p.fill({ label: "Code from your authenticator app, or a recovery code" }, recoveryCodes.pop());
      await p.click({ role: "button", name: "Verify" });
      await visit("dashboard", "Hello, Ada Lovelace");
      await p.click({ role: "link", name: "Items", exact: true });
      await visit("items", "Items");
      await p.click({ role: "link", name: "Settings", exact: true });
      await visit("settings", "Settings");
      await p.click({ role: "button", name: "Sign out", exact: true, within: { css: "nav" } });
      await ready(p, "Sign in");
      await signIn(p, env.ADMIN_EMAIL, env.ADMIN_PASSWORD);
      await ready(p, /^Hello/);
      await p.click({ role: "link", name: "Users", exact: true });
      await visit("users", "Users");
      await p.click({ role: "link", name: "Items", exact: true });
      await visit("items-all", "Items");
      await p.click({ role: "link", name: "Settings", exact: true });
      await ready(p, "Settings");
      await p.fill({ label: "Current password", within: mfa }, env.ADMIN_PASSWORD);
      await p.click({ role: "button", name: "Set up an authenticator app", within: mfa });
      await p.get({ role: "img", name: /QR code/ });
      await visit("settings-enrolment", "Settings");
      await p.click({ role: "button", name: "Sign out", exact: true, within: { css: "nav" } });
      await ready(p, "Sign in");
      problems.push(...p.problems);
      await p.close();
    }
    await b.close();
    browsers.length = 0;
  }
  problems.push(...page.problems);
} catch (e) {
  problems.push("driver: " + e.message.split("\n").slice(0, 6).join(" | "));
} finally {
  for (const b of browsers) await b.close().catch(() => {});
}
console.log(JSON.stringify({ steps, problems }));
