// Walks the frontend as `make run` serves it: the service alone, in
// development, over plain http on 127.0.0.1 (which browsers count as a
// secure context, so they keep the __Host- cookie). Run by
// suite_frontend_test.go; prints the steps and problems as JSON.
// Environment: ENGINE, E2E_NODE_DIR, BASE_URL, PASSKEY_URL, ADMIN_EMAIL,
// ADMIN_PASSWORD.
import path from "node:path";
import { launch } from "./browser.mjs";

const env = process.env;
const base = env.BASE_URL;
const steps = [];
const problems = [];
const step = (name, ok, detail) => steps.push({ step: name, width: 1280, ok: !!ok, detail });

const browser = await launch(env.ENGINE, { modulesDir: path.join(env.E2E_NODE_DIR, "node_modules") });
try {
  const page = await browser.newPage({ width: 1280, height: 800 });
  await page.goto(base + "/");
  await page.get({ role: "heading", level: 1, name: "Sign in", exact: true });
  step("the service serves the app at /", page.url() === base + "/login", page.url());
  await page.fill({ label: "Email" }, env.ADMIN_EMAIL);
  await page.fill({ label: "Password" }, env.ADMIN_PASSWORD);
  await page.click({ role: "button", name: "Sign in", exact: true, within: { css: "main" } });
  await page.get({ role: "link", name: "Items", exact: true });
  const session = (await page.cookies()).find((c) => c.name === "__Host-session");
  step("signed in over http on 127.0.0.1: the cookie is kept", session && session.httpOnly && session.secure && /strict/i.test(session.sameSite),
    session && { ...session, value: "…" });

  await page.click({ role: "link", name: "Items", exact: true });
  await page.get({ role: "heading", level: 1, name: "Items", exact: true });
  await page.click({ css: "details.card summary" });
  await page.fill({ label: "Title" }, "Made in development");
  await page.click({ role: "button", name: "Create item" });
  await page.get({ text: "Made in development", exact: true, within: { role: "table" } });
  step("an item created on the cookie session", await page.shows({ text: "1 item in all.", exact: true }));

  await page.reload();
  await page.get({ text: "Made in development", exact: true, within: { role: "table" } });
  step("a reload keeps the session and the page", page.url() === base + "/items", page.url());

  await page.click({ role: "button", name: "Sign out", exact: true, within: { css: "nav" } });
  await page.get({ role: "heading", level: 1, name: "Sign in", exact: true });
  step("signed out: the cookie is gone", !(await page.cookies()).some((c) => c.name === "__Host-session"));
  await page.close();
  problems.push(...page.problems);

  // Passkeys, at the localhost address the log gives (WebAuthn refuses an
  // IP address), on Chromium's virtual authenticator.
  const keyPage = await browser.newPage({ width: 1280, height: 800 });
  if (keyPage.virtualAuthenticator) {
    const key = await keyPage.virtualAuthenticator();
    const at = env.PASSKEY_URL;
    await keyPage.goto(at + "/login");
    await keyPage.get({ role: "heading", level: 1, name: "Sign in", exact: true });
    await keyPage.fill({ label: "Email" }, env.ADMIN_EMAIL);
    await keyPage.fill({ label: "Password" }, env.ADMIN_PASSWORD);
    await keyPage.click({ role: "button", name: "Sign in", exact: true, within: { css: "main" } });
    await keyPage.click({ role: "link", name: "Settings", exact: true });
    const region = { role: "region", name: "Passkeys", exact: true };
    await keyPage.fill({ label: "Current password", within: region }, env.ADMIN_PASSWORD);
    await keyPage.click({ role: "button", name: "Add a passkey", exact: true, within: region });
    await keyPage.get({ text: /is added/, within: region });
    // Signed out, the email field's autofill (the authenticator present at
    // once) signs in with it.
    await keyPage.click({ role: "button", name: "Sign out", exact: true, within: { css: "nav" } });
    await keyPage.get({ role: "heading", level: 1, name: /^Hello/ });
    const held = await key.credentials();
    step("development: at localhost, a passkey is added and signs in", held.length === 1 && held[0].rpId === "localhost", held.map((c) => c.rpId));
    await key.remove();
  }
  await keyPage.close();
  problems.push(...keyPage.problems);
} catch (e) {
  problems.push("driver: " + e.message.split("\n").slice(0, 6).join(" | "));
} finally {
  await browser.close();
}
console.log(JSON.stringify({ steps, problems }));
