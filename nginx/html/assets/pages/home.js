// The dashboard, and the page for a path the app does not have.
import { api } from "../api.js";
import { h } from "../dom.js";

export async function homePage(app) {
  const me = app.me;
  const items = await api("GET", "/items?limit=1");
  const count = items.count_capped ? `${items.count.toLocaleString()}+` : items.count.toLocaleString();
  const status = h("div", { role: "status", "aria-live": "polite" });
  const verify = me.email_verified
    ? h("p", {}, h("span", { class: "badge", text: "Verified" }), " ", me.email)
    : h("div", {},
        h("p", {}, h("span", { class: "badge warn", text: "Not verified" }), " ", me.email),
        h("p", { class: "muted", text: "Follow the link we mailed to confirm the address." }),
        h("button", { type: "button", class: "secondary", text: "Send the link again", onclick: async (e) => {
          e.target.disabled = true;
          try {
            const doc = await api("POST", "/users/me/verify-email");
            status.replaceChildren(h("p", { class: "success", text: (doc && doc.detail) || "A new link is on its way." }));
          } catch (err) {
            if (!err.handled) status.replaceChildren(h("p", { class: "alert", text: err.detail || String(err) }));
            e.target.disabled = false;
          }
        } }),
        status);
  return [
    h("h1", { text: `Hello, ${me.full_name || me.email}` }),
    h("div", { class: "grid2" },
      h("section", { class: "card", "aria-labelledby": "dash-items" },
        h("h2", { id: "dash-items", text: "Items" }),
        h("p", { text: `You have ${count} item${items.count === 1 ? "" : "s"}.` }),
        h("p", {}, h("a", { href: "/items", text: "Go to your items" }))),
      h("section", { class: "card", "aria-labelledby": "dash-email" },
        h("h2", { id: "dash-email", text: "Email" }),
        verify),
      h("section", { class: "card", "aria-labelledby": "dash-mfa" },
        h("h2", { id: "dash-mfa", text: "Two-factor sign-in" }),
        h("p", { text: me.mfa_enabled ? "On: signing in takes your password and a code." : "Off: signing in takes only your password." }),
        h("p", {}, h("a", { href: "/settings", text: me.mfa_enabled ? "Manage it in settings" : "Turn it on in settings" })))),
  ];
}

export function notFoundPage() {
  return [h("h1", { text: "Not found" }), h("p", {}, "There is no page here. ", h("a", { href: "/", text: "Go to the start" }))];
}
