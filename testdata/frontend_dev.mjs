// Walks the frontend as `make run` serves it: the service alone, in
// development, over plain http on 127.0.0.1 (which Chromium counts as a
// secure context, so it keeps the __Host- cookie). Run by
// suite_frontend_test.go; prints the steps and problems as JSON.
// Environment: E2E_NODE_DIR, BASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD.
import path from "node:path";
import { pathToFileURL } from "node:url";

const env = process.env;
const base = env.BASE_URL;
const modules = path.join(env.E2E_NODE_DIR, "node_modules");
const { chromium } = await import(pathToFileURL(path.join(modules, "playwright-core", "index.mjs")).href);

const steps = [];
const problems = [];
const step = (name, ok, detail) => steps.push({ step: name, width: 1280, ok: !!ok, detail });

// shows waits (up to 5 s) for locator to be visible: a page re-renders
// after its answer arrives, so an instant look can come too early.
const shows = (locator) => locator.waitFor({ timeout: 5000 }).then(() => true, () => false);

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  page.on("console", (m) => {
    // The one 401 is the app asking whether a session is live.
    if (m.type() === "error" && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));

  await page.goto(base + "/");
  await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
  step("the service serves the app at /", page.url() === base + "/login", page.url());
  await page.getByLabel("Email").fill(env.ADMIN_EMAIL);
  await page.getByLabel("Password").fill(env.ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Items", exact: true }).waitFor();
  const session = (await ctx.cookies()).find((c) => c.name === "__Host-session");
  step("signed in over http on 127.0.0.1: the cookie is kept", session && session.httpOnly && session.secure && session.sameSite === "Strict", session && { ...session, value: "…" });

  await page.getByRole("link", { name: "Items", exact: true }).click();
  await page.getByRole("heading", { level: 1, name: "Items" }).waitFor();
  await page.getByLabel("Title").fill("Made in development");
  await page.getByRole("button", { name: "Create item" }).click();
  await page.getByText("Made in development", { exact: true }).waitFor();
  step("an item created on the cookie session", await shows(page.getByText("1 item in all")));

  await page.reload();
  await page.getByText("Made in development", { exact: true }).waitFor();
  step("a reload keeps the session and the page", page.url() === base + "/items", page.url());

  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
  step("signed out: the cookie is gone", !(await ctx.cookies()).some((c) => c.name === "__Host-session"));
} catch (e) {
  problems.push("driver: " + e.message.split("\n").slice(0, 6).join(" | "));
} finally {
  await browser.close();
}
console.log(JSON.stringify({ steps, problems }));
