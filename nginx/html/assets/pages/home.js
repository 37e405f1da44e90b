// The dashboard, and the page for a path the app does not have.
import { api } from "../api.js";
import { h, actionLine, busy } from "../dom.js";
import { countText } from "../list.js";

export async function homePage(app) {
  // The account as the server holds it now, and the items: a superuser's
  // list is every user's, so the dashboard counts both.
  const me = await app.refreshMe();
  const superuser = me.is_superuser;
  const [all, own] = await Promise.all([api("GET", "/items?limit=1"), superuser ? api("GET", "/items?limit=1&mine=true") : null]);
  const line = actionLine();
  const verify = me.email_verified
    ? h("p", {}, h("span", { class: "badge", text: "Verified" }), " ", me.email)
    : h("div", {},
        h("p", {}, h("span", { class: "badge warn", text: "Not verified" }), " ", me.email),
        h("p", { class: "muted", text: "Follow the link we mailed to confirm the address." }),
        resendButton(line),
        line.el);
  const items = superuser
    ? [h("p", { text: `${countText(all, "item")} in all, ${own.count.toLocaleString()}${own.count_capped ? "+" : ""} of them yours.` }),
        h("p", {}, h("a", { href: "/items", text: "Go to all items" }))]
    : [h("p", { text: `You have ${countText(all, "item")}.` }), h("p", {}, h("a", { href: "/items", text: "Go to your items" }))];
  return [
    h("h1", { text: `Hello, ${me.full_name || me.email}` }),
    h("div", { class: "grid2" },
      h("section", { class: "card", "aria-labelledby": "dash-items" }, h("h2", { id: "dash-items", text: "Items" }), items),
      h("section", { class: "card", "aria-labelledby": "dash-email" }, h("h2", { id: "dash-email", text: "Email" }), verify),
      h("section", { class: "card", "aria-labelledby": "dash-mfa" },
        h("h2", { id: "dash-mfa", text: "Two-factor sign-in" }),
        h("p", { text: me.mfa_enabled ? "On: signing in takes your password and a code." : "Off: signing in takes only your password." }),
        h("p", {}, h("a", { href: "/settings", text: me.mfa_enabled ? "Manage it in settings" : "Turn it on in settings" })))),
  ];
}

// resendButton mails the signed-in account a new verification link, and
// says so on line.
export function resendButton(line) {
  return h("button", { type: "button", class: "secondary", text: "Send a new link", onclick: (e) => busy(e.target, () =>
    line.run(async () => {
      const doc = await api("POST", "/users/me/verify-email");
      line.done((doc && doc.detail) || "A new link is on its way.");
    })) });
}

export function notFoundPage() {
  return [h("h1", { text: "Not found" }), h("p", {}, "There is no page here. ", h("a", { href: "/", text: "Go to the start." }))];
}
