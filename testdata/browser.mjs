// One small API over two browser engines, so a journey is written once
// and walked in both: Chromium through playwright-core (over the DevTools
// protocol) and Firefox ESR through puppeteer-core (over WebDriver BiDi).
// Neither downloads a browser: they drive Debian's /usr/bin/chromium and
// /usr/bin/firefox-esr.
//
// Elements are found the way a person finds them, by role and name or by
// label, by our own finder run in the page (the same code in both
// engines), waiting up to 5 s for them to show: a page re-renders after
// its answer arrives.
import path from "node:path";
import { pathToFileURL } from "node:url";

// launch starts engine ("chromium" or "firefox"). opts.spkiPin: the one
// certificate key Chromium accepts (Firefox accepts the test's
// self-signed certificate as an automation session may: it has no pin).
// opts.theme: the system's colour scheme, "light" or "dark".
export async function launch(engine, { modulesDir, spkiPin, theme = "light" }) {
  const load = (p) => import(pathToFileURL(path.join(modulesDir, p)).href);
  if (engine === "chromium") {
    const { chromium } = await load("playwright-core/index.mjs");
    const args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"];
    if (spkiPin) args.push(`--ignore-certificate-errors-spki-list=${spkiPin}`);
    const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args });
    return {
      engine,
      async newPage({ width, height, mobile = false }) {
        const ctx = await browser.newContext({ viewport: { width, height }, isMobile: mobile, hasTouch: mobile, colorScheme: theme });
        return await wrapPlaywright(await ctx.newPage(), ctx, width, theme);
      },
      close: () => browser.close(),
    };
  }
  const { default: puppeteer } = await load("puppeteer-core/lib/puppeteer/puppeteer-core.js");
  // Firefox over BiDi has no media emulation: the theme is the profile's.
  const browser = await puppeteer.launch({
    browser: "firefox", executablePath: "/usr/bin/firefox-esr", headless: true, acceptInsecureCerts: true,
    extraPrefsFirefox: { "layout.css.prefers-color-scheme.content-override": theme === "dark" ? 0 : 1 },
  });
  return {
    engine,
    async newPage({ width, height, mobile = false }) {
      const ctx = await browser.createBrowserContext();
      const page = await ctx.newPage();
      await page.setViewport({ width, height, isMobile: mobile, hasTouch: mobile });
      return await wrapPuppeteer(page, ctx, width, theme);
    },
    close: () => browser.close(),
  };
}

// find runs in the page: the first visible element a query names, or null.
// A query: { role, name, level, exact } (name a string, matched whole when
// exact, else as a part, ignoring case; or a RegExp), { label }, { text,
// exact }, or { css }; with { within } (a query, or an element handle's
// index in scope) and { hasText } to narrow it.
function find(query, scope) {
  const norm = (s) => (s || "").replace(/\s+/g, " ").trim();
  const named = (got, want, exact) => {
    if (want && want.source !== undefined) return new RegExp(want.source, want.flags).test(got);
    return exact ? got === norm(want) : got.toLowerCase().includes(norm(want).toLowerCase());
  };
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length) && getComputedStyle(el).visibility !== "hidden";
  const byId = (ids) => (ids || "").split(/\s+/).map((id) => document.getElementById(id)).filter(Boolean);
  const labelOf = (el) => {
    if (el.getAttribute("aria-label")) return norm(el.getAttribute("aria-label"));
    if (el.getAttribute("aria-labelledby")) return norm(byId(el.getAttribute("aria-labelledby")).map((l) => l.textContent).join(" "));
    if (el.labels && el.labels.length) return norm([...el.labels].map((l) => l.textContent).join(" "));
    return "";
  };
  const roles = {
    button: "button, input[type=submit], input[type=button]",
    link: "a[href]",
    heading: "h1, h2, h3, h4, h5, h6",
    region: "section[aria-labelledby], section[aria-label], [role=region]",
    form: "form[aria-label], form[aria-labelledby]",
    list: "ul, ol",
    listitem: "li",
    table: "table",
    row: "tr",
    status: "[role=status]",
    radio: "input[type=radio]",
    checkbox: "input[type=checkbox]",
    textbox: "input:not([type]), input[type=text], input[type=email], input[type=password], textarea",
    img: "img, svg[role=img], [role=img]",
  };
  const nameOf = (el) => labelOf(el) || norm(el.tagName === "INPUT" ? el.value : el.textContent);
  let candidates;
  if (query.role) {
    candidates = [...scope.querySelectorAll(roles[query.role])].filter((el) => query.name === undefined || named(nameOf(el), query.name, query.exact));
    if (query.level) candidates = candidates.filter((el) => el.tagName === "H" + query.level);
  } else if (query.label !== undefined) {
    candidates = [...scope.querySelectorAll("input, textarea, select")].filter((el) => named(labelOf(el), query.label, query.exact));
  } else if (query.text !== undefined) {
    candidates = [...scope.querySelectorAll("*")].filter((el) => named(norm(el.textContent), query.text, query.exact) &&
      ![...el.children].some((c) => named(norm(c.textContent), query.text, query.exact)));
  } else {
    candidates = [...scope.querySelectorAll(query.css)];
  }
  if (query.hasText !== undefined) candidates = candidates.filter((el) => named(norm(el.textContent), query.hasText, false));
  return candidates.find(visible) || null;
}

// inPage is find, with its scope, as one function to evaluate.
const inPage = new Function("query", "within", `
  const find = ${find.toString()};
  const revive = (q) => {
    const out = { ...q };
    for (const k of ["name", "text", "label", "hasText"]) if (q[k] && q[k].__re) out[k] = { source: q[k].__re, flags: q[k].flags };
    return out;
  };
  let scope = document;
  for (const w of within) { scope = find(revive(w), scope); if (!scope) return null; }
  return find(revive(query), scope);
`);

// A RegExp does not cross into the page: it travels as its parts.
function portable(q) {
  const out = { ...q };
  for (const k of ["name", "text", "label", "hasText"]) if (q[k] instanceof RegExp) out[k] = { __re: q[k].source, flags: q[k].flags };
  delete out.within;
  return out;
}
function chain(q) {
  const scopes = [];
  for (let w = q.within; w; w = w.within) scopes.unshift(portable(w));
  return scopes;
}

// The page API both engines answer, over what differs: how to evaluate,
// click, type, screenshot, intercept and read cookies.
function pageAPI(engine, width, theme, impl) {
  const problems = [];
  const answers = { failedLoads: 0, errorAnswers: 0 };
  const page = {
    engine, width, theme, problems, answers,
    async get(query, timeout = 5000) {
      const deadline = Date.now() + timeout;
      for (;;) {
        const handle = await impl.handle(portable(query), chain(query));
        if (handle) return element(handle);
        if (Date.now() > deadline) throw new Error(`not found in ${timeout} ms: ${describe(query)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async shows(query, timeout = 5000) {
      return page.get(query, timeout).then(() => true, () => false);
    },
    async gone(query, timeout = 5000) {
      const deadline = Date.now() + timeout;
      while (Date.now() < deadline) {
        if (!(await impl.handle(portable(query), chain(query)))) return true;
        await new Promise((r) => setTimeout(r, 100));
      }
      return false;
    },
    click: (query) => again(() => page.get(query).then((el) => el.click())),
    fill: (query, value) => again(() => page.get(query).then((el) => el.fill(value))),
    text: async (query) => (await page.get(query)).text(),
    evaluate: (fn, arg) => impl.evaluate(fn, arg),
    waitFor: async (fn, arg, timeout = 5000) => {
      const deadline = Date.now() + timeout;
      while (!(await impl.evaluate(fn, arg))) {
        if (Date.now() > deadline) throw new Error(`waited ${timeout} ms for ${fn}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    ...impl.page,
  };
  // What the page itself saw (CSP violations) is read before it is left.
  const collect = async () => {
    const seen = await impl.evaluate(() => window.__problems || []).catch(() => []);
    problems.push(...seen.map((p) => `${p} (${engine}@${width})`));
  };
  for (const leave of ["goto", "reload", "back", "forward", "close"]) {
    const go = page[leave];
    page[leave] = async (...args) => {
      await collect();
      return go(...args);
    };
  }
  const element = (handle) => ({
    handle,
    click: () => impl.click(handle),
    fill: (value) => impl.fill(handle, value),
    text: () => handle.evaluate((el) => el.textContent),
    value: () => handle.evaluate((el) => el.value),
    attr: (name) => handle.evaluate((el, n) => el.getAttribute(n), name),
    disabled: () => handle.evaluate((el) => el.disabled),
    screenshot: (file) => handle.screenshot({ path: file }),
  });
  return page;
}

// again retries an action whose element was drawn anew between being
// found and being used (a page redraws its navigation, say).
async function again(act) {
  for (let i = 0; ; i++) {
    try {
      return await act();
    } catch (e) {
      if (i >= 3 || !/detached|not attached|stale/i.test(e.message)) throw e;
    }
  }
}

function describe(q) {
  const own = Object.entries(q).filter(([k]) => k !== "within").map(([k, v]) => `${k}=${v}`).join(" ");
  return q.within ? `${own} within (${describe(q.within)})` : own;
}

// Every page script error and CSP violation is a problem, in both engines
// (the page listens, before any script of the app runs).
function watchInPage() {
  window.__problems = [];
  document.addEventListener("securitypolicyviolation", (e) => window.__problems.push(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  // The theme as the document was first drawn: before any module ran.
  document.addEventListener("DOMContentLoaded", () => {
    window.__themeAtParse = `${document.documentElement.dataset.theme || "system"} ${getComputedStyle(document.documentElement).backgroundColor}`;
  });
}

// moves are what both libraries name alike: going to a page, back and
// forward, reloading, where the page is, and a picture of all of it.
function moves(p) {
  return {
    goto: (url) => p.goto(url),
    reload: () => p.reload(),
    back: () => p.goBack(),
    forward: () => p.goForward(),
    url: () => p.url(),
    screenshot: (file) => p.screenshot({ path: file, fullPage: true }),
  };
}

// wrap…(p, ctx, width, theme, tab): tab is a second page of the same
// context (its cookies: the same session), which close closes alone.
async function wrapPlaywright(p, ctx, width, theme, tab = false) {
  const api = pageAPI("chromium", width, theme, {
    handle: async (q, within) => {
      const h = await p.evaluateHandle(([q, w]) => window.__find(q, w), [q, within]);
      const el = h.asElement();
      if (!el) await h.dispose();
      return el;
    },
    evaluate: (fn, arg) => p.evaluate(fn, arg),
    click: (h) => h.click(),
    fill: (h, v) => h.fill(v),
    page: {
      ...moves(p),
      cookies: () => ctx.cookies(),
      // intercept answers the requests match(url, method) picks with
      // answer(): a response ({ status, headers, body }), or a promise
      // that holds the request until it resolves (then it goes on).
      intercept: (match, answer) => p.route(() => true, async (route) => {
        const r = route.request();
        if (!match(r.url(), r.method())) return route.fallback();
        const res = await answer();
        return res ? route.fulfill({ status: res.status, headers: res.headers, body: res.body }) : route.fallback();
      }),
      unintercept: () => p.unrouteAll(),
      close: () => (tab ? p.close() : ctx.close()),
      // tab opens another page on the same session, as a second tab would.
      tab: async () => wrapPlaywright(await ctx.newPage(), ctx, width, theme, true),
      // virtualAuthenticator plugs a passkey authenticator into this page
      // (DevTools' WebAuthn domain): CTAP2, built in, holding discoverable
      // credentials, verifying the user and touched at once. Chromium
      // only: the journey asks for it where the engine has it.
      virtualAuthenticator: async () => {
        const cdp = await ctx.newCDPSession(p);
        await cdp.send("WebAuthn.enable", { enableUI: false });
        const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", { options: {
          protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
        } });
        return {
          credentials: async () => (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials,
          remove: async () => {
            await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId });
            await cdp.detach();
          },
        };
      },
    },
  });
  p.on("response", (r) => { if (r.status() >= 400) api.answers.errorAnswers++; });
  p.on("console", (m) => {
    if (m.type() !== "error") return;
    // Chromium logs every 4xx or 5xx answer to fetch as an error: those are
    // the API's answers the page handles, counted against the answers seen.
    if (/^Failed to load resource: the server responded with a status of [45]\d\d/.test(m.text())) api.answers.failedLoads++;
    else api.problems.push(`console@${width}: ${m.text()}`);
  });
  p.on("pageerror", (e) => api.problems.push(`pageerror@${width}: ${e.message}`));
  await p.addInitScript(`(${watchInPage})(); window.__find = ${inPage};`);
  return api;
}

async function wrapPuppeteer(p, ctx, width, theme, tab = false) {
  let routes = [];
  const api = pageAPI("firefox", width, theme, {
    handle: async (q, within) => {
      const h = await p.evaluateHandle((q, w) => window.__find(q, w), q, within);
      const el = h.asElement();
      if (!el) await h.dispose();
      return el;
    },
    evaluate: (fn, arg) => p.evaluate(fn, arg),
    click: (h) => h.click(),
    fill: async (h, v) => {
      await h.evaluate((el) => { el.value = ""; });
      await h.type(v);
    },
    page: {
      ...moves(p),
      cookies: () => p.cookies(),
      intercept: async (match, answer) => {
        routes.push({ match, answer });
      },
      unintercept: async () => { routes = []; },
      close: () => (tab ? p.close() : ctx.close()),
      tab: async () => {
        const other = await ctx.newPage();
        await other.setViewport(p.viewport());
        return wrapPuppeteer(other, ctx, width, theme, true);
      },
      virtualAuthenticator: null, // not over WebDriver BiDi yet
    },
  });
  await p.setRequestInterception(true);
  p.on("request", async (r) => {
    const route = routes.find((x) => x.match(r.url(), r.method()));
    if (!route) return r.continue();
    const res = await route.answer();
    if (res) r.respond({ status: res.status, headers: res.headers, body: res.body });
    else r.continue();
  });
  p.on("console", (m) => {
    if (m.type() === "error") api.problems.push(`console@${width}: ${m.text()}`);
  });
  p.on("pageerror", (e) => api.problems.push(`pageerror@${width}: ${e.message}`));
  await p.evaluateOnNewDocument(`(${watchInPage})(); window.__find = ${inPage};`);
  return api;
}
