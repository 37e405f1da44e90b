// The parts every list page shares: its place in the address (so reload,
// Back and Forward keep the page), the pager, the count in words and the
// table.
import { query } from "./api.js";
import { h } from "./dom.js";

// listPlace is the page of a list the address names: limit, page (its
// number, from 1) and cursor (where it starts, when Next led there). A
// page without a cursor (typed in, or reached by Previous) is found by
// offset. extra are the list's own parameters (mine=true, say), kept in
// every address the pager makes.
export function listPlace(defaultLimit, extra = {}) {
  const q = new URLSearchParams(location.search);
  const int = (v, min, max, fallback) => {
    const n = Number(v);
    return v !== null && Number.isInteger(n) && n >= min && n <= max ? n : fallback;
  };
  const limit = int(q.get("limit"), 1, 100, defaultLimit);
  const page = int(q.get("page"), 1, Math.floor(10000 / limit) + 1, 1);
  const cursor = q.get("cursor") || "";
  const start = cursor ? { cursor } : page > 1 ? { offset: (page - 1) * limit } : {};
  return {
    limit, page, cursor,
    // api is the API's query for this page.
    api: () => query({ ...extra, limit, ...start }),
    // href is the address of page number `page` (at cursor, when known).
    href: (to, cursorThere = "") => location.pathname + query({
      ...extra, page: to > 1 ? to : undefined, cursor: cursorThere || undefined, limit: to > 1 || limit !== defaultLimit ? limit : undefined,
    }),
  };
}

// pager is a list's Previous and Next, as links to their addresses, and
// where the page is: "page 3 of 7" ("of 1,001+" when the count is capped).
export function pager(place, answer, noun) {
  const pages = Math.max(1, Math.ceil(answer.count / place.limit));
  const link = (text, href) => href
    ? h("a", { class: "button secondary", href, text })
    : h("span", { class: "button secondary", "aria-disabled": "true", text });
  return h("nav", { class: "pager", "aria-label": `Pages of ${noun}s` },
    link("Previous page", place.page > 1 ? place.href(place.page - 1) : ""),
    h("span", { class: "muted", text: `Page ${place.page} of ${pages.toLocaleString()}${answer.count_capped ? "+" : ""}` }),
    link("Next page", answer.next_cursor ? place.href(place.page + 1, answer.next_cursor) : ""));
}

// countText is how many a list holds, in words: "1 item", "25 items",
// "10,000+ items" when the count is capped.
export function countText(page, noun) {
  const n = page.count.toLocaleString() + (page.count_capped ? "+" : "");
  return `${n} ${noun}${page.count === 1 && !page.count_capped ? "" : "s"}`;
}

// table draws rows as a table named label: columns are { label, cell(row),
// class }, a cell a node, a string or a list of them. On a phone each row
// is a card whose cells say their column (data-label); the roles keep the
// table a table for a screen reader there too.
export function table(label, columns, rows, empty) {
  const body = rows.length
    ? rows.map((r) => tableRow(columns, r))
    : [h("tr", { role: "row" }, h("td", { role: "cell", colspan: columns.length, class: "muted", text: empty }))];
  return h("table", { role: "table", "aria-label": label },
    h("thead", { role: "rowgroup" }, h("tr", { role: "row" }, columns.map((c) => h("th", { role: "columnheader", scope: "col", text: c.label })))),
    h("tbody", { role: "rowgroup" }, body));
}

// tableRow is one row of a table's columns.
export function tableRow(columns, row) {
  return h("tr", { role: "row" }, columns.map((c) => h("td", { role: "cell", "data-label": c.label, class: c.class }, h("div", {}, c.cell(row)))));
}
