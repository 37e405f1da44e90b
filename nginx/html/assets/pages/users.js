// Users, for a superuser: a page at a time by cursor, create, edit,
// deactivate or activate, end every session, turn a lost second factor
// off, delete.
import { api, query } from "../api.js";
import { h, field, form, confirmButton } from "../dom.js";
import { pager, countText, actionLine } from "../list.js";

const pageSize = 20;

export async function usersPage(app) {
  if (!app.me.is_superuser) {
    return [h("h1", { text: "Users" }), h("p", { text: "Only a superuser manages users." })];
  }
  const list = h("ul", { class: "list", "aria-label": "Users" });
  const summary = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const status = actionLine();
  const pages = pager(load);

  async function load() {
    const page = await api("GET", "/users" + query({ limit: pageSize, cursor: pages.cursor }));
    list.replaceChildren(...page.data.map(row));
    summary.textContent = `${countText(page, "user")} · page ${pages.number}`;
    pages.draw(page);
  }

  // act runs one change, says how it went, and shows the list anew.
  async function act(call, message) {
    await status.run(call, message);
    await load();
  }

  function row(u) {
    const li = h("li", {});
    const self = u.id === app.me.id;
    const badges = [
      u.is_superuser ? h("span", { class: "badge", text: "Superuser" }) : null,
      u.is_active ? null : h("span", { class: "badge warn", text: "Deactivated" }),
      u.email_verified ? null : h("span", { class: "badge warn", text: "Unverified" }),
      u.mfa_enabled ? h("span", { class: "badge", text: "Two-factor" }) : null,
    ].filter(Boolean);
    const show = () => li.replaceChildren(
      h("div", { class: "row" },
        h("span", { class: "title", text: u.full_name ? `${u.full_name} <${u.email}>` : u.email }),
        h("span", { class: "actions" }, badges)),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", text: "Edit", "aria-label": `Edit ${u.email}`, onclick: edit }),
        self ? null : confirmButton(u.is_active ? "Deactivate" : "Activate", `${u.is_active ? "Deactivate" : "Activate"} ${u.email}`,
          () => act(() => api("PATCH", `/users/${u.id}`, { is_active: !u.is_active }), `${u.email} is ${u.is_active ? "deactivated" : "active again"}.`)),
        confirmButton("End sessions", `End every session of ${u.email}`,
          () => act(() => api("DELETE", `/users/${u.id}/sessions`), `Every session of ${u.email} has ended.`)),
        u.mfa_enabled && !self ? confirmButton("Turn off two-factor", `Turn off two-factor for ${u.email}`,
          () => act(() => api("PATCH", `/users/${u.id}`, { mfa_enabled: false }), `Two-factor sign-in is off for ${u.email}; their sessions have ended.`)) : null,
        self ? null : confirmButton("Delete", `Delete ${u.email} and their items`,
          () => act(() => api("DELETE", `/users/${u.id}`), `${u.email} is deleted.`))));
    const edit = () => {
      const f = form({
        label: `Edit ${u.email}`,
        submit: "Save",
        fields: [
          field("full_name", "Full name", { value: u.full_name || "" }),
          field("email", "Email", { type: "email", required: true, value: u.email }),
          field("password", "New password (leave empty to keep it)", { type: "password", autocomplete: "new-password" }),
          self ? null : field("is_superuser", "Superuser", { type: "checkbox", checked: u.is_superuser }),
        ].filter(Boolean),
        extra: [h("button", { type: "button", class: "secondary", text: "Cancel", onclick: show })],
        async onSubmit(v) {
          const change = { full_name: v.full_name.trim() || null };
          if (v.email.trim().toLowerCase() !== u.email) change.email = v.email;
          if (v.password) change.password = v.password;
          if (!self && v.is_superuser !== u.is_superuser) change.is_superuser = v.is_superuser;
          Object.assign(u, await api("PATCH", `/users/${u.id}`, change));
          status.done(`${u.email} is saved.`);
          show();
        },
      });
      li.replaceChildren(f);
      f.elements.namedItem("full_name").focus();
    };
    show();
    return li;
  }

  const create = form({
    label: "New user",
    submit: "Create user",
    fields: [
      field("full_name", "Full name (optional)"),
      field("email", "Email", { type: "email", required: true }),
      field("password", "Password", { type: "password", autocomplete: "new-password", required: true,
        hint: "8 to 128 characters. Not a common password, and not their email or part of it." }),
      field("is_superuser", "Superuser", { type: "checkbox" }),
    ],
    async onSubmit(v, f) {
      const u = await api("POST", "/users", { email: v.email, password: v.password, full_name: v.full_name.trim() || null, is_superuser: v.is_superuser });
      f.reset();
      status.done(`${u.email} is created.`);
      pages.first();
      await load();
    },
  });

  await load();
  return [
    h("h1", { text: "Users" }),
    h("section", { class: "card", "aria-labelledby": "new-user" }, h("h2", { id: "new-user", text: "New user" }), create),
    h("section", { class: "card", "aria-labelledby": "all-users" }, h("h2", { id: "all-users", text: "All users" }), summary, status.el, list, pages.el),
  ];
}
