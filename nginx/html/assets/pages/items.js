// Items: a page at a time by cursor, create, edit in place, delete after
// a second press.
import { api, query } from "../api.js";
import { h, field, form, confirmButton } from "../dom.js";
import { pager, countText, actionLine } from "../list.js";

const pageSize = 10;

export async function itemsPage(app) {
  const list = h("ul", { class: "list", "aria-label": "Your items" });
  const summary = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const action = actionLine();
  const pages = pager(load);

  async function load() {
    const page = await api("GET", "/items" + query({ limit: pageSize, cursor: pages.cursor }));
    list.replaceChildren(...page.data.map(row));
    if (page.data.length === 0) list.append(h("li", { class: "muted", text: pages.cursor ? "No more items." : "No items yet: create the first one above." }));
    summary.textContent = `${countText(page, "item")} in all · page ${pages.number}`;
    pages.draw(page);
  }

  function row(item) {
    const li = h("li", {});
    const show = () => {
      li.replaceChildren(
        h("div", { class: "row" },
          h("span", { class: "title", text: item.title }),
          h("span", { class: "actions" },
            h("button", { type: "button", class: "secondary", text: "Edit", "aria-label": `Edit ${item.title}`, onclick: edit }),
            confirmButton("Delete", `Delete ${item.title}`, async () => {
              if (!(await action.run(() => api("DELETE", `/items/${item.id}`), `Deleted “${item.title}”.`))) return;
              if (list.children.length === 1) pages.emptied();
              await load();
            }))),
        item.description ? h("p", { class: "desc", text: item.description }) : "",
      );
    };
    const edit = () => {
      const f = form({
        label: `Edit ${item.title}`,
        submit: "Save",
        fields: [
          field("title", "Title", { required: true, value: item.title, maxlength: 255 }),
          field("description", "Description", { type: "textarea", value: item.description || "", maxlength: 10000 }),
        ],
        extra: [h("button", { type: "button", class: "secondary", text: "Cancel", onclick: show })],
        async onSubmit(v) {
          item = await api("PATCH", `/items/${item.id}`, { title: v.title, description: v.description || null });
          show();
        },
      });
      li.replaceChildren(f);
      f.elements.namedItem("title").focus();
    };
    show();
    return li;
  }

  const create = form({
    label: "New item",
    submit: "Create item",
    fields: [
      field("title", "Title", { required: true, maxlength: 255 }),
      field("description", "Description (optional)", { type: "textarea", maxlength: 10000 }),
    ],
    async onSubmit(v, f) {
      await api("POST", "/items", { title: v.title, description: v.description || null });
      f.reset(); // created: the form is done with
      pages.first();
      await load();
      summary.textContent = `Created “${v.title}”. ` + summary.textContent;
    },
  });

  await load();
  return [
    h("h1", { text: "Items" }),
    h("section", { class: "card", "aria-labelledby": "new-item" }, h("h2", { id: "new-item", text: "New item" }), create),
    h("section", { class: "card", "aria-labelledby": "your-items" }, h("h2", { id: "your-items", text: "Your items" }), summary, action.el, list, pages.el),
  ];
}
