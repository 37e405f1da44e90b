// Items: a table of a page at a time, its place in the address; create,
// edit in place, delete after a second press. A superuser sees every
// user's items, with their owner, or only their own.
import { api, ifMatch, retryKey } from "../api.js";
import { h, field, form, confirmButton, actionLine, when, showConflict } from "../dom.js";
import { listPlace, pager, countText, table, tableRow } from "../list.js";

const pageSize = 10;

export async function itemsPage(app) {
  const superuser = app.me.is_superuser;
  const mine = !superuser || new URLSearchParams(location.search).get("mine") === "true";
  const place = listPlace(pageSize, superuser && mine ? { mine: "true" } : {});
  const answer = await api("GET", "/items" + place.api());
  const owners = superuser && !mine ? await ownerNames(app, answer.data) : null;
  const line = actionLine();
  const listName = mine ? "Your items" : "All items";

  const columns = [
    { label: "Title", class: "wrap", cell: (it) => [h("span", { class: "title", text: it.title }), it.description ? h("p", { class: "desc muted", text: it.description }) : null] },
    owners ? { label: "Owner", class: "wrap", cell: (it) => owners.get(it.owner_id) } : null,
    { label: "Created", cell: (it) => when(it.created_at) },
    { label: "Actions", cell: (it) => h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", text: "Edit", "aria-label": `Edit ${it.title}`, onclick: (e) => edit(it, e.target.closest("tr")) }),
      confirmButton("Delete", `Delete ${it.title}`, () => remove(it))) },
  ].filter(Boolean);

  async function remove(it) {
    const ok = await line.run(() => api("DELETE", `/items/${it.id}`, undefined, { headers: ifMatch(it) }));
    if (!ok) return false;
    // The last row of a page beyond the first: show the page before it.
    const here = answer.data.length === 1 && place.page > 1 ? place.href(place.page - 1) : location.pathname + location.search;
    app.navigate(here, { replace: true, flash: `Deleted “${it.title}”.` });
    return true;
  }

  // edit saves only over the version it was opened with: a change made
  // elsewhere meanwhile (another tab, another person) is shown, with what
  // was typed kept, to reapply over it or to discard.
  function edit(it, row) {
    const f = form({
      label: `Edit ${it.title}`,
      submit: "Save",
      fields: [
        field("title", "Title", { required: true, value: it.title, maxlength: 255 }),
        field("description", "Description", { type: "textarea", value: it.description || "", maxlength: 10000 }),
      ],
      extra: [h("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => cell.closest("tr").replaceWith(tableRow(columns, it)) })],
      async onSubmit(v) {
        let saved;
        try {
          saved = await api("PATCH", `/items/${it.id}`, { title: v.title, description: v.description || null }, { headers: ifMatch(it) });
        } catch (p) {
          if (p.status !== 412) throw p;
          return changedElsewhere(await api("GET", `/items/${it.id}`));
        }
        cell.closest("tr").replaceWith(tableRow(columns, saved));
        line.done(`Saved “${saved.title}”.`);
      },
    });
    function changedElsewhere(current) {
      line.clear(); // an earlier save's word no longer holds
      showConflict(f, {
        title: "This item was changed elsewhere.",
        now: `It is now “${current.title}”, ${current.description ? `described “${current.description}”` : "with no description"}.`,
        reapplyLabel: "Reapply my changes",
        reapply: () => { it = current; }, // save over the version just shown
        discard: () => {
          cell.closest("tr").replaceWith(tableRow(columns, current));
          line.done(`Showing “${current.title}” as it is now.`);
        },
      });
    }
    const cell = h("td", { role: "cell", colspan: columns.length }, f);
    row.replaceWith(h("tr", { role: "row" }, cell));
    f.elements.namedItem("title").focus();
  }

  const createKey = retryKey();
  const create = form({
    label: "New item",
    submit: "Create item",
    fields: [
      field("title", "Title", { required: true, maxlength: 255 }),
      field("description", "Description (optional)", { type: "textarea", maxlength: 10000 }),
    ],
    async onSubmit(v) {
      const body = { title: v.title, description: v.description || null };
      const it = await api("POST", "/items", body, { headers: createKey.header(body) });
      createKey.done();
      app.navigate(listPlace(pageSize, superuser && mine ? { mine: "true" } : {}).href(1), { flash: `Created “${it.title}”.` });
    },
  });

  const empty = place.page > 1 ? "No items on this page." : mine ? "No items yet: create the first one above." : "No items yet.";
  return [
    h("h1", { text: "Items" }),
    h("details", { class: "card" }, h("summary", {}, h("h2", { text: "New item" })), create),
    h("section", { class: "card", "aria-labelledby": "item-list" },
      h("div", { class: "toolbar" },
        h("h2", { id: "item-list", text: listName }),
        superuser ? h("a", { href: mine ? "/items" : "/items?mine=true", text: mine ? "Show all items" : "Show only mine" }) : null),
      h("p", { class: "muted", text: `${countText(answer, "item")} in all.` }),
      line.el,
      table(listName, columns, answer.data, empty),
      pager(place, answer, "item")),
  ];
}

// ownerNames are the owners of rows by id, as a superuser may read them:
// their full name or email (or "you").
async function ownerNames(app, rows) {
  const names = new Map([[app.me.id, "You"]]);
  const others = [...new Set(rows.map((r) => r.owner_id))].filter((id) => !names.has(id));
  const users = await Promise.all(others.map((id) => api("GET", `/users/${id}`).catch((err) => {
    if (err.handled) throw err;
    return { id, email: "a deleted user" }; // gone since the page was read
  })));
  for (const u of users) names.set(u.id, u.full_name ? `${u.full_name} (${u.email})` : u.email);
  return names;
}
