// Users, for a superuser: a table of a page at a time, its place in the
// address; create, edit, deactivate or activate, end every session, turn
// a lost second factor off, delete. Every change is read back from the
// server: the page is drawn anew with its message.
import { api, ifMatch, retryKey } from "../api.js";
import { h, field, form, confirmButton, actionLine } from "../dom.js";
import { listPlace, pager, countText, table } from "../list.js";

const pageSize = 20;

export async function usersPage(app) {
  if (!app.me.is_superuser) {
    return [h("h1", { text: "Users" }), h("p", { text: "Only a superuser manages users." })];
  }
  const place = listPlace(pageSize);
  const answer = await api("GET", "/users" + place.api());
  const line = actionLine();

  // act makes one change; once it worked, the page shows the server anew.
  async function act(call, message) {
    if (!(await line.run(call))) return false;
    app.reload(message);
    return true;
  }

  const yesNo = (yes, text = ["Yes", "No"]) => h("span", { class: yes ? "badge" : "badge warn", text: yes ? text[0] : text[1] });
  const columns = [
    { label: "User", class: "wrap", cell: (u) => [h("span", { class: "title", text: u.full_name || u.email }), u.full_name ? h("p", { class: "desc muted", text: u.email }) : null] },
    { label: "Role", cell: (u) => (u.is_superuser ? "Superuser" : "User") },
    { label: "Active", cell: (u) => yesNo(u.is_active) },
    { label: "Verified", cell: (u) => yesNo(u.email_verified) },
    { label: "Two-factor", cell: (u) => h("span", { class: "badge", text: u.mfa_enabled ? "On" : "Off" }) },
    { label: "Actions", cell: (u) => actions(u) },
  ];

  function actions(u) {
    const self = u.id === app.me.id;
    return h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", text: "Edit", "aria-label": `Edit ${u.email}`, onclick: (e) => edit(u, e.target.closest("tr")) }),
      self ? null : confirmButton(u.is_active ? "Deactivate" : "Activate", `${u.is_active ? "Deactivate" : "Activate"} ${u.email}`,
        () => act(() => api("PATCH", `/users/${u.id}`, { is_active: !u.is_active }), `${u.email} is ${u.is_active ? "deactivated" : "active again"}.`)),
      confirmButton("End sessions", `End every session of ${u.email}`,
        () => act(() => api("DELETE", `/users/${u.id}/sessions`), `Every session of ${u.email} has ended.`)),
      u.mfa_enabled && !self ? confirmButton("Turn off two-factor", `Turn off two-factor for ${u.email}`,
        () => act(() => api("PATCH", `/users/${u.id}`, { mfa_enabled: false }), `Two-factor sign-in is off for ${u.email}; their sessions have ended.`)) : null,
      self ? null : confirmButton("Delete", `Delete ${u.email} and their items`,
        () => act(() => api("DELETE", `/users/${u.id}`, undefined, { headers: ifMatch(u) }), `${u.email} is deleted.`)));
  }

  function edit(u, row) {
    const self = u.id === app.me.id;
    const f = form({
      label: `Edit ${u.email}`,
      submit: "Save",
      fields: [
        field("full_name", "Full name", { value: u.full_name || "" }),
        field("email", "Email", { type: "email", required: true, value: u.email }),
        field("password", "New password (leave empty to keep it)", { type: "password", autocomplete: "new-password" }),
        self ? null : field("is_superuser", "Superuser", { type: "checkbox", checked: u.is_superuser }),
      ].filter(Boolean),
      extra: [h("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => app.reload() })],
      async onSubmit(v) {
        const change = { full_name: v.full_name.trim() || null };
        if (v.email.trim().toLowerCase() !== u.email) change.email = v.email;
        if (v.password) change.password = v.password;
        if (!self && v.is_superuser !== u.is_superuser) change.is_superuser = v.is_superuser;
        const saved = await api("PATCH", `/users/${u.id}`, change, { headers: ifMatch(u) }); // 412: changed meanwhile, says so
        app.reload(`${saved.email} is saved.`);
      },
    });
    row.replaceWith(h("tr", { role: "row" }, h("td", { role: "cell", colspan: columns.length }, f)));
    f.elements.namedItem("full_name").focus();
  }

  const createKey = retryKey();
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
    async onSubmit(v) {
      const body = { email: v.email, password: v.password, full_name: v.full_name.trim() || null, is_superuser: v.is_superuser };
      const u = await api("POST", "/users", body, { headers: createKey.header(body) });
      createKey.done();
      app.navigate(place.href(1), { flash: `${u.email} is created.` });
    },
  });

  return [
    h("h1", { text: "Users" }),
    h("details", { class: "card" }, h("summary", {}, h("h2", { text: "New user" })), create),
    h("section", { class: "card", "aria-labelledby": "all-users" },
      h("h2", { id: "all-users", text: "All users" }),
      h("p", { class: "muted", text: `${countText(answer, "user")} in all.` }),
      line.el,
      table("Users", columns, answer.data, "No users on this page."),
      pager(place, answer, "user")),
  ];
}
