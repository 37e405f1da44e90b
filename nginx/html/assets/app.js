// The app: who is signed in, the pages by path, the navigation. Plain ES
// modules, no build step; every page is a module of assets/pages/.
import { api, onSession } from "./api.js";
import { h } from "./dom.js";
import { loginPage, signupPage, recoverPage, resetPage, verifyPage } from "./pages/auth.js";
import { homePage, notFoundPage } from "./pages/home.js";
import { itemsPage } from "./pages/items.js";
import { settingsPage } from "./pages/settings.js";
import { usersPage } from "./pages/users.js";

// who: "in" pages need a session, "out" pages are for signing in (a
// signed-in visitor goes home), "any" pages serve both (mailed links).
// nav: the page has a link in the navigation (superuser: for them only),
// in the order of this table. A new page is a module and a row here.
const routes = {
  "/": { page: homePage, title: "Dashboard", who: "in", nav: true },
  "/items": { page: itemsPage, title: "Items", who: "in", nav: true },
  "/settings": { page: settingsPage, title: "Settings", who: "in", nav: true },
  "/admin/users": { page: usersPage, title: "Users", who: "in", nav: true, superuser: true },
  "/login": { page: loginPage, title: "Sign in", who: "out", nav: true },
  "/signup": { page: signupPage, title: "Sign up", who: "out", nav: true },
  "/recover-password": { page: recoverPage, title: "Recover your password", who: "any" },
  "/reset-password": { page: resetPage, title: "Choose a new password", who: "any" },
  "/verify-email": { page: verifyPage, title: "Verify your email", who: "any" },
};

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const flashEl = document.getElementById("flash");

// The app's state: the signed-in user (null when signed out), a message
// to show on the next page, the page to return to after signing in.
const app = {
  me: null,
  next: "/",
  prefill: {},
  navigate,
  flash,
  // reload draws the page anew from the server, at the same address,
  // with message to say what just changed.
  reload(message) {
    navigate(location.pathname + location.search, { replace: true, flash: message });
  },
  async refreshMe() {
    app.me = await api("GET", "/users/me");
    drawNav();
    return app.me;
  },
  async signedIn() {
    await app.refreshMe();
    const next = app.next;
    app.next = "/";
    navigate(next, { replace: true });
  },
  async signOut() {
    try {
      await api("POST", "/auth/logout");
    } finally {
      app.me = null;
      navigate("/login", { flash: "You are signed out." });
    }
  },
};

onSession({
  signedOut() {
    if (!app.me) return;
    app.me = null;
    app.next = location.pathname;
    navigate("/login", { flash: "Your session has ended. Sign in again to continue." });
  },
  mustEnrol() {
    navigate("/settings", { flash: "This account must turn on two-factor sign-in before anything else. Set up an authenticator app below." });
  },
});

function flash(text) {
  flashEl.replaceChildren(text ? h("p", { text }) : "");
  flashEl.hidden = !text;
}

function navigate(path, { replace = false, flash: message } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render(message);
}

// drawNav draws the navigation from the route table: the pages for who is
// (or is not) signed in, then Sign out.
function drawNav() {
  const here = location.pathname;
  const shown = Object.entries(routes).filter(([, r]) => r.nav && r.who === (app.me ? "in" : "out") && (!r.superuser || app.me.is_superuser));
  const items = shown.map(([href, r]) => h("a", { href, text: r.title, "aria-current": href === here ? "page" : undefined }));
  if (app.me) items.push(h("button", { type: "button", class: "link", text: "Sign out", onclick: () => app.signOut() }));
  nav.replaceChildren(h("ul", {}, items.map((i) => h("li", {}, i))));
}

let rendering = 0;
async function render(message) {
  const mine = ++rendering;
  flash(message || "");
  const route = routes[location.pathname] || { page: notFoundPage, title: "Not found", who: "any" };
  if (route.who === "in" && !app.me) {
    app.next = location.pathname;
    history.replaceState(null, "", "/login");
    return render(message || "Sign in to continue.");
  }
  if (route.who === "out" && app.me) {
    history.replaceState(null, "", "/");
    return render(message);
  }
  drawNav();
  document.title = route.title + " · App";
  // Loading, until the page's first answers arrive: never a blank page.
  main.setAttribute("aria-busy", "true");
  main.replaceChildren(h("p", { class: "loading", text: "Loading…" }));
  let content;
  try {
    content = await route.page(app);
  } catch (err) {
    if (err && err.handled) return; // a 401 or 403 moved us elsewhere
    content = [h("h1", { text: route.title }), h("p", { class: "alert", role: "alert", text: (err && err.detail) || String(err) })];
  }
  if (mine !== rendering) return; // a newer navigation won
  main.replaceChildren(...[].concat(content));
  main.removeAttribute("aria-busy");
  const h1 = main.querySelector("h1");
  if (h1) {
    h1.tabIndex = -1;
    h1.focus();
  }
}

// Links inside the app navigate without a reload.
document.addEventListener("click", (e) => {
  const a = e.target.closest("a[href]");
  if (!a || a.getAttribute("href").startsWith("#") || a.target || a.hasAttribute("download") || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey || e.button !== 0) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname === "/docs") return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", () => render());

// Start: ask who is signed in (the cookie says, not the page), then draw.
try {
  app.me = await api("GET", "/users/me", undefined, { signIn: true });
} catch {
  app.me = null;
}
render();
