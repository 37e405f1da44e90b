// Settings: profile, appearance, email, password, passkeys, two-factor
// sign-in and its recovery codes, sessions, deleting the account. Each section says
// what the server holds, and shows it anew after every change.
import { api, ifMatch } from "../api.js";
import { h, field, form, confirmButton, actionLine, mismatch, when, showProblem, showConflict, clearConflict } from "../dom.js";
import { qrSVG } from "../qr.js";
import { resendButton } from "./home.js";
import * as passkey from "../passkey.js";

export async function settingsPage(app) {
  // What the server holds now: the account, its second factor, its
  // passkeys, its sessions.
  const [, mfa, keys, sessionList] = await Promise.all([app.refreshMe(), api("GET", "/users/me/mfa"), passkeys(app), sessions()]);
  const factor = twoFactor(app, mfa);
  // A change that took a recovery code leaves one fewer: say so.
  const spent = (v) => (v.code !== undefined ? factor.refresh() : null);
  return [
    h("h1", { text: "Settings" }),
    h("div", { class: "stack" },
      section("Profile", profile(app)),
      section("Appearance", appearance()),
      section("Email", email(app, spent)),
      section("Password", password(app, sessionList, spent)),
      section("Passkeys", keys(spent)),
      section("Two-factor sign-in", factor.el),
      section("Sessions", sessionList.el),
      section("Delete account", deleteAccount(app))),
  ];
}

let n = 0;
function section(title, ...content) {
  const id = "settings-" + ++n;
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id, text: title }), content);
}

// passkeyCount is how many passkeys the account had when settings last
// read them: with one, a form that re-authenticates offers it.
let passkeyCount = 0;

// reauthFields are what a change account recovery relies on asks for:
// the current password and, when two-factor sign-in is on, a code; or,
// where the account has a passkey this browser can use, the passkey in
// place of both (its assertion rides on the form until it is sent).
function reauthFields(app, hint) {
  const withPasskey = async (e) => {
    const f = e.target.form;
    try {
      f.passkey = await passkey.get(await api("POST", "/auth/passkey/options"));
    } catch (err) {
      showProblem(f, err);
      return;
    }
    f.requestSubmit();
  };
  return [
    field("current_password", "Current password", { type: "password", autocomplete: "current-password", required: true, hint, "data-reauth": true }),
    app.me.mfa_enabled ? field("code", "Code from your app, or a recovery code", { autocomplete: "one-time-code", required: true, "data-reauth": true }) : null,
    passkeyCount > 0 && passkey.supported()
      ? h("p", {}, h("button", { type: "button", class: "secondary", text: "Confirm with a passkey instead", onclick: withPasskey }))
      : null,
  ].filter(Boolean);
}

// reauth is the re-authentication part of a body, from a form's values, or
// the passkey confirmed in its place (used once).
function reauth(v, f) {
  if (f && f.passkey) {
    const assertion = f.passkey;
    f.passkey = null;
    return { passkey: assertion };
  }
  return v.code === undefined ? { current_password: v.current_password } : { current_password: v.current_password, code: v.code.trim() };
}

// profile saves the name over the version of the account this page read:
// a change made elsewhere meanwhile is shown, with what was typed kept, to
// reapply over it or to discard.
function profile(app) {
  const line = actionLine();
  const f = form({
    label: "Profile",
    submit: "Save profile",
    fields: [field("full_name", "Full name", { autocomplete: "name", value: app.me.full_name || "" })],
    async onSubmit(v) {
      clearConflict(f);
      try {
        app.me = await api("PATCH", "/users/me", { full_name: v.full_name.trim() || null }, { headers: ifMatch(app.me) });
      } catch (p) {
        if (p.status !== 412) throw p;
        return changedElsewhere(await app.refreshMe());
      }
      f.elements.namedItem("full_name").value = app.me.full_name || "";
      line.done("Your profile is saved.");
    },
  });
  function changedElsewhere(now) {
    showConflict(f, {
      title: "Your profile was changed elsewhere.",
      now: `Your name is now ${now.full_name ? `“${now.full_name}”` : "not set"}.`,
      reapplyLabel: "Reapply my change",
      discard: () => {
        f.elements.namedItem("full_name").value = now.full_name || "";
        line.done("Showing your profile as it is now.");
      },
    });
  }
  return [line.el, f];
}

// appearance is the theme: the system's, or light or dark whatever the
// system says. The choice lives in localStorage (theme.js applies it
// before the next page is drawn) and on <html> at once.
function appearance() {
  const line = actionLine();
  let chosen = "system";
  try {
    chosen = localStorage.getItem("appearance") || "system";
  } catch {
    // storage refused: the system's
  }
  const choices = [["system", "System"], ["light", "Light"], ["dark", "Dark"]];
  const choose = (value, label) => {
    try {
      if (value === "system") localStorage.removeItem("appearance");
      else localStorage.setItem("appearance", value);
    } catch {
      // storage refused: this page only
    }
    if (value === "system") delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = value;
    line.done(value === "system" ? "The appearance follows your system." : `The appearance is ${label.toLowerCase()}.`);
  };
  return [
    h("fieldset", {},
      h("legend", { text: "Theme" }),
      choices.map(([value, label]) => h("label", { class: "choice" },
        h("input", { type: "radio", name: "appearance", value, checked: chosen === value, onchange: () => choose(value, label) }), label))),
    line.el,
  ];
}

// email shows the address, whether it is verified (with a new link on
// request) and a change waiting for its link, and asks for a change:
// nothing changes until the new address follows the link.
function email(app, spent) {
  const box = h("div", {});
  const line = actionLine();
  const draw = () => box.replaceChildren(...[
    h("p", {}, "Now: ", h("strong", { text: app.me.email }), app.me.email_verified ? " (verified)." : " (not verified)."),
    app.me.email_verified ? null : h("div", { class: "actions" }, resendButton(line)),
    app.me.pending_email ? h("p", {}, "Waiting for confirmation: ", h("strong", { text: app.me.pending_email }),
      ". It becomes your email when you follow the link we mailed there, within 24 hours.") : null,
  ].filter(Boolean));
  draw();
  return [
    box,
    line.el,
    form({
      label: "Change email",
      submit: "Change email",
      fields: [
        field("email", "New email", { type: "email", autocomplete: "email", required: true }),
        ...reauthFields(app, "We mail a link to the new address; following it makes the change and signs out your other sessions."),
      ],
      async onSubmit(v, f) {
        app.me = await api("PATCH", "/users/me", { email: v.email, ...reauth(v, f) });
        f.reset();
        draw();
        await spent(v);
        line.done(app.me.pending_email
          ? `We mailed a link to ${app.me.pending_email}. Your email changes when you follow it.`
          : "Your email stays as it is.");
      },
    }),
  ];
}

function password(app, sessionList, spent) {
  const line = actionLine();
  return [line.el, form({
    label: "Change password",
    submit: "Change password",
    fields: [
      ...reauthFields(app),
      field("new_password", "New password", { type: "password", autocomplete: "new-password", required: true,
        hint: "8 to 128 characters. Not a common password, and not your email, your name or part of them. Your other sessions are signed out." }),
      field("repeat_password", "Repeat the new password", { type: "password", autocomplete: "new-password", required: true }),
    ],
    async onSubmit(v, f) {
      if (v.new_password !== v.repeat_password) throw mismatch("repeat_password");
      await api("POST", "/users/me/password", { ...reauth(v, f), new_password: v.new_password });
      f.reset();
      await Promise.all([sessionList.load(), spent(v)]);
      line.done("Your password is changed, and your other sessions are signed out.");
    },
  })];
}

// passkeys lists the account's passkeys, each renamed in place or deleted
// with every factor asked again, and adds one: every factor, then the
// browser's prompt. It reads the list first, and answers a function that
// draws the section (spent: a recovery code was used).
async function passkeys(app) {
  const list = h("ul", { class: "list", "aria-label": "Your passkeys" });
  const line = actionLine();
  const draw = (page) => list.replaceChildren(...(page.data.length ? page.data.map(row) : [h("li", { class: "muted", text: "No passkeys yet." })]));
  const load = async () => {
    const page = await api("GET", "/users/me/passkeys?limit=100");
    passkeyCount = page.data.length;
    draw(page);
  };
  let spent = () => null;

  function row(p) {
    const li = h("li", {});
    const cancel = () => h("button", { type: "button", class: "secondary", text: "Cancel", onclick: show });
    function show() {
      li.replaceChildren(
        h("div", { class: "row" },
          h("span", { class: "title", text: p.name }),
          h("span", { class: "actions" },
            h("button", { type: "button", class: "secondary", text: "Rename", "aria-label": `Rename ${p.name}`, onclick: rename }),
            h("button", { type: "button", class: "secondary", text: "Delete", "aria-label": `Delete ${p.name}`, onclick: remove }))),
        h("p", { class: "muted desc", text: describe(p) }));
    }
    function rename() {
      const f = form({
        label: `Rename ${p.name}`,
        submit: "Save name",
        fields: [field("name", "Name", { required: true, maxlength: 64, value: p.name })],
        extra: [cancel()],
        async onSubmit(v) {
          p = await api("PATCH", `/users/me/passkeys/${p.id}`, { name: v.name.trim() });
          show();
          line.done(`The passkey is renamed “${p.name}”.`);
        },
      });
      li.replaceChildren(f);
      f.elements.namedItem("name").focus();
    }
    function remove() {
      const f = form({
        label: `Delete ${p.name}`,
        submit: "Delete passkey",
        danger: true,
        fields: [h("p", { text: `“${p.name}” will no longer sign you in. Delete it from the device or service that holds it too.` }), ...reauthFields(app)],
        extra: [cancel()],
        async onSubmit(v, f) {
          await api("DELETE", `/users/me/passkeys/${p.id}`, reauth(v, f));
          await Promise.all([load(), spent(v)]);
          line.done(`“${p.name}” is deleted.`);
        },
      });
      li.replaceChildren(f);
      f.elements.namedItem("current_password").focus();
    }
    show();
    return li;
  }

  const add = passkey.supported() ? form({
    label: "Add a passkey",
    submit: "Add a passkey",
    fields: [
      field("name", "Name (optional)", { maxlength: 64, hint: "Which device or service holds it, such as “Work laptop”." }),
      ...reauthFields(app, "Your browser then asks to make the passkey, with your fingerprint, face, PIN or security key."),
    ],
    async onSubmit(v, f) {
      const credential = await passkey.create(await api("POST", "/users/me/passkeys/options", reauth(v, f)));
      const added = await api("POST", "/users/me/passkeys", v.name.trim() ? { credential, name: v.name.trim() } : { credential });
      f.reset();
      await Promise.all([load(), spent(v)]);
      line.done(`“${added.name}” is added: it signs you in with no password, and counts as both factors.`);
    },
  }) : h("p", { class: "muted", text: "This browser cannot make passkeys. Passkeys listed here still sign you in where they are kept." });

  await load();
  return (onSpent) => {
    spent = onSpent;
    return [
      h("p", { text: "A passkey signs you in with your fingerprint, face, screen lock or security key instead of your password. It works only on this site, so it cannot be phished." }),
      line.el, list, h("h3", { text: "Add a passkey" }), add,
    ];
  };
}

// describe is what a passkey's row says of it: where it lives, when it was
// added and last used, whether it syncs.
function describe(p) {
  const backup = p.backed_up ? "synced to your other devices" : p.backup_eligible ? "can sync, not synced yet" : "on one device only";
  const text = [p.device, `added ${when(p.created_at)}`, p.last_used_at ? `last used ${when(p.last_used_at)}` : "not used yet", backup].filter(Boolean).join(" · ");
  return text.charAt(0).toUpperCase() + text.slice(1) + ".";
}

// sessions is the list of the account's sessions, with load to read it
// again after a change that ends some.
async function sessions() {
  const list = h("ul", { class: "list", "aria-label": "Your sessions" });
  const line = actionLine();
  async function load() {
    let page;
    try {
      page = await api("GET", "/users/me/sessions?limit=100");
    } catch (err) {
      if (err.handled) throw err;
      list.replaceChildren(h("li", { class: "muted", text: err.detail }));
      return;
    }
    list.replaceChildren(...page.data.map((s) => h("li", {},
      h("div", { class: "row" },
        h("span", { class: "title", text: agent(s.user_agent) }),
        s.current ? h("span", { class: "badge", text: "This device" }) : confirmButton("Sign out", "Sign out this session", () =>
          act(() => api("DELETE", `/users/me/sessions/${s.id}`), "That session is signed out."))),
      h("p", { class: "muted desc", text: `From ${s.client_ip} · signed in ${when(s.created_at)}${s.method === "passkey" ? " with a passkey" : ""} · last used ${when(s.last_used_at)}${s.mfa ? " · with a second factor" : ""}.` }))));
  }
  // act makes a change, reads the list anew, and only then says it worked.
  async function act(call, message) {
    const ok = await line.run(call);
    await load();
    if (ok) line.done(message);
    return ok;
  }
  await load();
  const el = [line.el, list, h("div", { class: "actions" },
    confirmButton("Sign out all other sessions", "Sign out every other session", () => act(() => api("DELETE", "/users/me/sessions"), "Every other session is signed out.")))];
  return { el, load };
}

// agent is a short name for a User-Agent: the browser and the system.
function agent(ua) {
  if (!ua) return "Unknown device";
  const browser = /(Firefox|Edg|Chrome|Safari)\/[\d.]+/.exec(ua);
  const system = /(Windows|Android|iPhone|iPad|Mac OS X|Linux)/.exec(ua);
  if (!browser) return ua.slice(0, 60);
  const name = { Edg: "Edge" }[browser[1]] || browser[1];
  return system ? `${name} on ${system[1].replace("Mac OS X", "macOS")}` : name;
}

// twoFactor is the second factor's section: set up when off (password,
// then the app's code), new recovery codes or off when on. A change that
// turns it on or off draws the whole page anew: other forms ask for a
// code once it is on. refresh reads it again (the recovery codes left).
function twoFactor(app, mfa) {
  const box = h("div", { class: "flow" });
  const left = h("p", {});
  const drawLeft = () => {
    const n = mfa.recovery_codes_left;
    left.className = n <= 3 ? "alert" : "muted";
    left.textContent = `${n} recovery code${n === 1 ? "" : "s"} left of 10.${n <= 3 ? " Make new ones before you run out." : ""}`;
  };

  function off() {
    return [
      h("p", { text: "Off. With it on, signing in takes your password and a 6-digit code from an authenticator app on your phone." }),
      form({
        label: "Set up an authenticator app",
        submit: "Set up an authenticator app",
        fields: [field("current_password", "Current password", { type: "password", autocomplete: "current-password", required: true })],
        async onSubmit(v) {
          const enrolment = await api("POST", "/users/me/mfa/totp", v);
          box.replaceChildren(...pending(enrolment));
          box.querySelector("h3").focus();
        },
      }),
    ];
  }

  function pending(enrolment) {
    const uri = h("input", { id: "otpauth-uri", readonly: true, value: enrolment.otpauth_uri, class: "code" });
    const copied = actionLine();
    return [
      h("h3", { tabindex: "-1", text: "Add this account to your authenticator app" }),
      h("p", { text: "Scan this code with the app:" }),
      qrSVG(enrolment.otpauth_uri, "QR code of the setup link: scan it with your authenticator app."),
      h("p", { text: "Or add an account by key and type this key (spaces do not matter):" }),
      h("p", {}, h("code", { id: "totp-secret", text: enrolment.secret.match(/.{1,4}/g).join(" ") })),
      h("div", { class: "field" }, h("label", { for: "otpauth-uri", text: "Or paste this setup link into an app that takes one" }), uri),
      h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", text: "Copy the setup link", onclick: async () => {
        try {
          await navigator.clipboard.writeText(enrolment.otpauth_uri);
          copied.done("The setup link is copied.");
        } catch {
          uri.select();
          copied.done("Select and copy the link above.");
        }
      } }), copied.el),
      form({
        label: "Confirm the app",
        submit: "Turn on two-factor sign-in",
        fields: [field("code", "The 6-digit code the app shows now", { autocomplete: "one-time-code", inputmode: "numeric", required: true, maxlength: 6 })],
        async onSubmit(v) {
          const doc = await api("POST", "/users/me/mfa/totp/confirm", { code: v.code.trim() });
          box.replaceChildren(...codes(doc.recovery_codes, "Two-factor sign-in is on.", "Two-factor sign-in is on."));
          box.querySelector("h3").focus();
        },
      }),
    ];
  }

  function codes(list, heading, message) {
    return [
      h("h3", { tabindex: "-1", text: heading }),
      h("p", { text: "These recovery codes sign you in once each if you lose your phone. Keep them somewhere safe now: they are shown only this once." }),
      h("ol", { class: "codes", "aria-label": "Recovery codes" }, list.map((c) => h("li", { text: c }))),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", text: "Copy the codes", onclick: () => navigator.clipboard.writeText(list.join("\n")).catch(() => {}) }),
        h("button", { type: "button", text: "I have saved them", onclick: () => app.reload(message) })),
    ];
  }

  function on() {
    drawLeft();
    return [
      h("p", { text: "On: signing in takes your password and a code from your authenticator app." }),
      left,
      h("h3", { text: "New recovery codes" }),
      form({
        label: "New recovery codes",
        submit: "Make new recovery codes",
        fields: reauthFields(app),
        async onSubmit(v, f) {
          const doc = await api("POST", "/users/me/mfa/recovery-codes", reauth(v, f));
          box.replaceChildren(...codes(doc.recovery_codes, "New recovery codes: the old ones no longer work.", "You have 10 new recovery codes."));
          box.querySelector("h3").focus();
        },
      }),
      h("h3", { text: "Turn it off" }),
      form({
        label: "Turn two-factor sign-in off",
        submit: "Turn two-factor sign-in off",
        danger: true,
        fields: reauthFields(app),
        async onSubmit(v, f) {
          await api("DELETE", "/users/me/mfa", reauth(v, f));
          app.reload("Two-factor sign-in is off.");
        },
      }),
    ];
  }

  box.replaceChildren(...(mfa.enabled ? on() : off()));
  return {
    el: box,
    async refresh() {
      mfa = await api("GET", "/users/me/mfa");
      drawLeft();
    },
  };
}

function deleteAccount(app) {
  if (app.me.is_superuser) return h("p", { class: "muted", text: "A superuser cannot delete their own account; another superuser can." });
  return [
    h("p", { text: "Your account, its items and its sessions are deleted at once. This cannot be undone." }),
    form({
      label: "Delete account",
      submit: "Delete my account and items",
      danger: true,
      fields: reauthFields(app),
      async onSubmit(v, f) {
        await api("DELETE", "/users/me", reauth(v, f));
        app.me = null;
        app.navigate("/login", { flash: "Your account is deleted." });
      },
    }),
  ];
}
