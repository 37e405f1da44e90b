// The parts every list page shares: the pager that walks a list by cursor,
// the count of the whole list, and the line that says how an action went.
import { h } from "./dom.js";

// pager walks a list a page at a time by cursor: the cursor of the page
// shown, the cursors before it (Previous goes back one), and its buttons.
// load is called to show the page the cursor now names.
export function pager(load) {
  const back = [];
  let cursor = "";
  const el = h("div", { class: "pager" });
  return {
    el,
    get cursor() { return cursor; },
    get number() { return back.length + 1; },
    // first goes back to the first page (after a create, say).
    first() {
      back.length = 0;
      cursor = "";
    },
    // emptied steps back a page when the last row of this one is gone.
    emptied() {
      if (back.length > 0) cursor = back.pop();
    },
    // draw shows the buttons for page, the answer just loaded.
    draw(page) {
      el.replaceChildren(
        h("button", { type: "button", class: "secondary", text: "Previous page", disabled: back.length === 0, onclick: () => { cursor = back.pop(); load(); } }),
        h("button", { type: "button", class: "secondary", text: "Next page", disabled: !page.next_cursor, onclick: () => { back.push(cursor); cursor = page.next_cursor; load(); } }),
      );
    },
  };
}

// countText is how many a list holds, in words: "1 item", "25 items",
// "10,000+ items" when the count is capped.
export function countText(page, noun) {
  const n = page.count.toLocaleString() + (page.count_capped ? "+" : "");
  return `${n} ${noun}${page.count === 1 && !page.count_capped ? "" : "s"}`;
}

// actionLine is the one line where a list's actions say how they went, a
// polite live region: done with a message, or the problem's detail.
export function actionLine() {
  const el = h("div", { role: "status", "aria-live": "polite" });
  const line = {
    el,
    clear: () => el.replaceChildren(),
    done: (text) => el.replaceChildren(h("p", { class: "success", text })),
    failed(err) {
      if (!err.handled) el.replaceChildren(h("p", { class: "alert", text: err.detail || String(err) }));
    },
    // run makes a change, then says so; it answers whether it worked.
    async run(call, message) {
      try {
        await call();
      } catch (err) {
        line.failed(err);
        return false;
      }
      line.done(message);
      return true;
    },
  };
  return line;
}
