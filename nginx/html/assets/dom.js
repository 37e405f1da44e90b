// Building the page: every element is made with createElement and every
// text set with textContent, never HTML from a string (the page's CSP
// enforces Trusted Types with no policy, so a string sink would throw).
import { Problem } from "./api.js";

// h makes an element: props are attributes, except class, text, value,
// checked, hidden and on* (listeners); children are nodes or strings.
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "value" || key === "checked" || key === "hidden") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c);
  }
}

let seq = 0;

// field is a labelled control with a hint and a place for its error, both
// tied to it with aria-describedby. opts: type (text by default, or
// textarea, checkbox), autocomplete, hint, value, required, and any other
// attribute.
export function field(name, label, opts = {}) {
  const { type = "text", hint, ...attrs } = opts;
  const id = `f-${name}-${++seq}`;
  const hintEl = hint ? h("p", { class: "hint", id: id + "-hint", text: hint }) : null;
  const error = h("p", { class: "field-error", id: id + "-error", hidden: true });
  const describedBy = [hintEl && hintEl.id, error.id].filter(Boolean).join(" ");
  let control;
  if (type === "textarea") control = h("textarea", { id, name, "aria-describedby": describedBy, ...attrs });
  else control = h("input", { id, name, type, "aria-describedby": describedBy, ...attrs });
  if (type === "checkbox") {
    return h("div", { class: "field check" }, control, h("label", { for: id, text: label }), hintEl, error);
  }
  return h("div", { class: "field" }, h("label", { for: id, text: label }), hintEl, control, error);
}

// form makes a form of fields with a submit button (red when danger: it
// destroys; quiet when secondary: another way to the same end) and an alert for what belongs to no field. On submit it clears the old errors, says "Is
// required." beside every required field left empty (and sends nothing),
// shows the button busy, and calls onSubmit(values, form); a Problem it
// throws is shown (showProblem). Nothing the person typed is cleared on an
// error.
export function form({ fields, submit, onSubmit, extra = [], label, danger = false, secondary = false }) {
  const alert = h("div", { class: "alert", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: danger ? "danger" : secondary ? "secondary" : undefined, text: submit });
  const el = h("form", { novalidate: true, "aria-label": label }, alert, fields, h("div", { class: "actions" }, button, extra));
  el.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (button.disabled) return;
    clearProblem(el);
    // A passkey confirmed in their place (el.passkey) stands for the
    // re-authentication fields (data-reauth).
    const empty = [...el.elements].filter((c) => c.required && c.type !== "checkbox" && c.value.trim() === "" && !(el.passkey && c.dataset.reauth !== undefined));
    if (empty.length > 0) {
      showProblem(el, new Problem(422, { errors: empty.map((c) => ({ field: c.name, message: "is required" })) }));
      return;
    }
    let waiting = false;
    await busy(button, async () => {
      try {
        await onSubmit(values(el), el);
      } catch (err) {
        waiting = showProblem(el, err);
      }
    });
    if (waiting) button.disabled = true; // a 429's countdown gives it back
  });
  return el;
}

// busy runs work with button disabled and marked busy (a spinner, and
// aria-busy for a screen reader), then gives it back.
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// values are a form's named controls: strings, and booleans for checkboxes.
export function values(formEl) {
  const out = {};
  for (const c of formEl.elements) {
    if (!c.name) continue;
    out[c.name] = c.type === "checkbox" ? c.checked : c.value;
  }
  return out;
}

export function clearProblem(formEl) {
  const alert = formEl.querySelector(".alert");
  alert.hidden = true;
  alert.replaceChildren();
  for (const c of formEl.elements) c.removeAttribute("aria-invalid");
  for (const e of formEl.querySelectorAll(".field-error")) {
    e.hidden = true;
    e.textContent = "";
  }
}

// showProblem puts each error of a 422 beside its field, and the detail of
// anything else in the form's alert (a 5xx with its request id, which finds
// our logs). A 429 counts down its Retry-After with the button disabled;
// it returns true while that runs.
export function showProblem(formEl, err) {
  if (err && err.handled) return false; // a 401 went back to sign-in
  const alert = formEl.querySelector(".alert");
  const say = (text) => {
    alert.append(h("p", { text }));
    alert.hidden = false;
  };
  if (!err || !("status" in err)) {
    say("Something went wrong in this page: " + (err && err.message ? err.message : err));
    return false;
  }
  let first = null;
  for (const fe of err.errors || []) {
    const control = formEl.elements.namedItem(fe.field);
    if (!control || !control.id) {
      say(`${fe.field}: ${fe.message}`);
      continue;
    }
    control.setAttribute("aria-invalid", "true");
    const msg = document.getElementById(control.id + "-error");
    msg.textContent = sentence(fe.message);
    msg.hidden = false;
    first = first || control;
  }
  if (first) {
    first.focus();
    return false;
  }
  if (err.status === 429 && err.retryAfter > 0) {
    countdown(formEl, alert, err.retryAfter);
    return true;
  }
  say(err.detail || "Something went wrong.");
  if (err.status >= 500 && err.requestId) say("If it happens again, tell us this request id: " + err.requestId);
  return false;
}

// A field's message reads as a sentence: "must be 8 to 128 characters"
// becomes "Must be 8 to 128 characters."
function sentence(msg) {
  const s = msg.charAt(0).toUpperCase() + msg.slice(1);
  return /[.!?)]$/.test(s) ? s : s + ".";
}

function countdown(formEl, alert, seconds) {
  const button = formEl.querySelector('button[type="submit"]');
  const line = h("p", { class: "countdown" });
  alert.append(line);
  alert.hidden = false;
  let left = seconds;
  const tick = () => {
    if (left <= 0) {
      line.textContent = "You can try again now.";
      button.disabled = false;
      return;
    }
    line.textContent = `Too many attempts. You can try again in ${left} s.`;
    left--;
    setTimeout(tick, 1000);
  };
  tick();
}

// confirmButton is a button that asks once more before it acts: the first
// press turns it into the confirming button and a Cancel beside it, and
// closes any other confirmation open in the same row (or section). Once
// act succeeds (it answers anything but false), the question closes.
export function confirmButton(label, confirmLabel, act) {
  const wrap = h("span", { class: "confirm" });
  const start = h("button", { type: "button", class: "secondary", text: label });
  const close = () => {
    wrap.classList.remove("open");
    wrap.replaceChildren(start);
  };
  wrap.close = close;
  start.addEventListener("click", () => {
    const scope = wrap.closest("tr, li, section") || document;
    for (const other of scope.querySelectorAll(".confirm.open")) other.close();
    const yes = h("button", { type: "button", class: "danger", text: confirmLabel, onclick: async () => {
      let done = false;
      await busy(yes, async () => { done = (await act()) !== false; });
      if (done && wrap.isConnected) {
        close();
        start.focus();
      }
    } });
    const no = h("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => { close(); start.focus(); } });
    wrap.classList.add("open");
    wrap.replaceChildren(yes, no);
    yes.focus();
  });
  close();
  return wrap;
}

// showConflict says, above form f, that what it edits was changed
// elsewhere (a 412): title, now (what it is now); what was typed stays in
// the form. Reapply (reapplyLabel) calls reapply, then submits the form
// again over the version shown; "Discard mine" calls discard.
export function showConflict(f, { title, now, reapplyLabel, reapply = () => {}, discard }) {
  clearConflict(f);
  const box = h("div", { class: "conflict", role: "alert" },
    h("p", { class: "title", text: title }),
    h("p", { text: `${now} What you typed is kept below.` }),
    h("div", { class: "actions" },
      h("button", { type: "button", text: reapplyLabel, onclick: () => { box.remove(); reapply(); f.requestSubmit(); } }),
      h("button", { type: "button", class: "secondary", text: "Discard mine", onclick: () => { box.remove(); discard(); } })));
  f.before(box);
  box.querySelector("button").focus();
}

// clearConflict takes showConflict's note away.
export function clearConflict(f) {
  const box = f.previousElementSibling;
  if (box && box.classList.contains("conflict")) box.remove();
}

// mismatch is the page's own 422 for a repeated password that differs.
export function mismatch(name) {
  return new Problem(422, { detail: "The two passwords differ.", errors: [{ field: name, message: "does not match the password above" }] });
}

// actionLine is the one line where an action says how it went, a polite
// live region: done with a message, or the problem's detail.
export function actionLine() {
  const el = h("div", { class: "action-line", role: "status", "aria-live": "polite" });
  const line = {
    el,
    clear: () => el.replaceChildren(),
    done: (text) => el.replaceChildren(h("p", { class: "success", text })),
    failed(err) {
      if (!err.handled) el.replaceChildren(h("p", { class: "alert", text: err.detail || String(err) }));
    },
    // run makes a change, then says so; it answers whether it worked.
    async run(call, message) {
      line.clear();
      try {
        await call();
      } catch (err) {
        line.failed(err);
        return false;
      }
      if (message) line.done(message);
      return true;
    },
  };
  return line;
}

// when is a date as the reader's locale writes it.
export function when(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
