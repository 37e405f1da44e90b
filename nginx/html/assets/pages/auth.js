// Signing in (with the second step when the account has one), signing up,
// and the pages mailed links open: recover, reset, verify.
import { api, Problem, retryKey } from "../api.js";
import { h, field, form, mismatch, clearProblem, showProblem } from "../dom.js";
import * as passkey from "../passkey.js";

const passwordHint = "8 to 128 characters. Not a common password, and not your email or part of it.";

export function loginPage(app) {
  const card = h("section", { class: "card narrow" });
  const title = h("h1", { text: "Sign in" });
  const notice = h("div", { role: "status", "aria-live": "polite" });

  const passwordStep = form({
    label: "Sign in",
    submit: "Sign in",
    fields: [
      field("email", "Email", { type: "email", autocomplete: "username webauthn", required: true, value: app.prefill.email || "" }),
      field("password", "Password", { type: "password", autocomplete: "current-password", required: true }),
    ],
    async onSubmit(v) {
      notice.replaceChildren();
      try {
        await api("POST", "/auth/login?session=cookie", { email: v.email, password: v.password }, { signIn: true });
        await passkey.cancelAutofill(); // signed in: the autofill's request waits no more
      } catch (p) {
        if (p instanceof Problem && p.code === "mfa_required") return showCodeStep(p);
        if (p instanceof Problem && p.code === "email_unverified") return offerResend(v.email, p);
        throw p;
      }
      app.prefill = {};
      await app.signedIn();
    },
  });

  // The second step: the password was right; a code finishes it.
  function showCodeStep(p) {
    const codeStep = form({
      label: "Two-factor code",
      submit: "Verify",
      fields: [
        h("p", { text: p.detail }),
        field("code", "Code from your authenticator app, or a recovery code", {
          autocomplete: "one-time-code", required: true, spellcheck: "false", autocapitalize: "none",
        }),
      ],
      extra: [h("button", { type: "button", class: "secondary", text: "Start over", onclick: startOver })],
      async onSubmit(v) {
        await api("POST", "/auth/login/mfa?session=cookie", { mfa_token: p.mfaToken, code: v.code.trim() }, { signIn: true });
        await app.signedIn();
      },
    });
    title.textContent = "Two-factor sign-in";
    passwordStep.replaceWith(codeStep);
    codeStep.elements.namedItem("code").focus();
    function startOver() {
      title.textContent = "Sign in";
      codeStep.replaceWith(passwordStep);
      passwordStep.elements.namedItem("password").value = "";
      passwordStep.elements.namedItem("password").focus();
    }
  }

  function offerResend(email, p) {
    notice.replaceChildren(
      h("p", { class: "alert", text: p.detail }),
      h("button", { type: "button", class: "secondary", text: "Send a new link", onclick: async (e) => {
        e.target.disabled = true;
        try {
          const doc = await api("POST", "/auth/verify-email/resend", { email });
          notice.replaceChildren(h("p", { class: "success", text: doc.detail }));
        } catch (err) {
          notice.replaceChildren(h("p", { class: "alert", text: err.detail || String(err) }));
        }
      } }),
    );
  }

  card.append(title, notice, passwordStep, passkeySignIn(app, card),
    h("p", {}, h("a", { href: "/recover-password", text: "Forgot your password?" })),
    h("p", {}, "No account yet? ", h("a", { href: "/signup", text: "Sign up" })));
  return card;
}

// The sign-in page's challenge, kept while it is fresh and unspent: a
// visit to the page again asks for no other.
let options = null;
let asked = 0;
async function fresh() {
  if (!options || Date.now() - asked > 4 * 60 * 1000) { // challenges live 5 minutes
    options = await api("POST", "/auth/passkey/options", undefined, { signIn: true });
    asked = Date.now();
  }
  return options;
}

// passkeySignIn signs in with a passkey, no email typed: from the button,
// in the browser's dialog, or (where the browser offers it) from the email
// field's autofill. Both use the page's one challenge (fresh); the
// autofill's request is cancelled before the dialog's.
function passkeySignIn(app, card) {
  if (!passkey.supported()) return null;
  const finish = async (credential) => {
    options = null; // its challenge is spent, right or wrong
    await api("POST", "/auth/passkey?session=cookie", { credential }, { signIn: true });
    app.prefill = {};
    await app.signedIn();
  };
  const el = form({
    label: "Sign in with a passkey",
    submit: "Sign in with a passkey",
    secondary: true,
    fields: [h("p", { class: "muted", text: "Or, with no email or password: a passkey on this device, your phone or a security key." })],
    async onSubmit() {
      await finish(await passkey.get(await fresh()));
    },
  });
  (async () => {
    if (!(await passkey.conditionalAvailable())) return;
    let credential;
    try {
      credential = await passkey.get(await fresh(), { conditional: true });
    } catch {
      return; // the button still works, and says what went wrong
    }
    if (!credential || !card.isConnected) return;
    try {
      await finish(credential);
    } catch (err) {
      clearProblem(el);
      showProblem(el, err);
    }
  })();
  return el;
}

export function signupPage(app) {
  const key = retryKey();
  return h("section", { class: "card narrow" },
    h("h1", { text: "Sign up" }),
    form({
      label: "Sign up",
      submit: "Create account",
      fields: [
        field("full_name", "Full name (optional)", { autocomplete: "name" }),
        field("email", "Email", { type: "email", autocomplete: "email", required: true }),
        field("password", "Password", { type: "password", autocomplete: "new-password", required: true, hint: passwordHint }),
        field("confirm", "Repeat the password", { type: "password", autocomplete: "new-password", required: true }),
      ],
      async onSubmit(v) {
        if (v.password !== v.confirm) throw mismatch("confirm");
        const body = { email: v.email, password: v.password, full_name: v.full_name.trim() || null };
        await api("POST", "/auth/register", body, { headers: key.header(body) });
        key.done();
        app.prefill = { email: v.email.trim().toLowerCase() };
        app.navigate("/login", { flash: "Your account is ready. We mailed you a link to confirm your address; sign in meanwhile." });
      },
    }),
    h("p", {}, "Have an account? ", h("a", { href: "/login", text: "Sign in" })));
}

export function recoverPage() {
  const done = h("div", { role: "status", "aria-live": "polite" });
  const key = retryKey();
  return h("section", { class: "card narrow" },
    h("h1", { text: "Recover your password" }),
    h("p", { text: "We will mail a link to choose a new password to the address, if it has an account." }),
    done,
    form({
      label: "Recover your password",
      submit: "Mail me a link",
      fields: [field("email", "Email", { type: "email", autocomplete: "email", required: true })],
      async onSubmit(v) {
        const body = { email: v.email };
        const doc = await api("POST", "/auth/password-recovery", body, { headers: key.header(body) });
        key.done();
        done.replaceChildren(h("p", { class: "success", text: doc.detail }));
      },
    }),
    h("p", {}, h("a", { href: "/login", text: "Back to sign in" })));
}

// tokenFromLink reads the token a mailed link carries in its fragment
// (never sent to a server nor in a Referer), and takes it out of the
// address bar and the history.
function tokenFromLink() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
  if (location.hash) history.replaceState(null, "", location.pathname);
  return token;
}

export function resetPage(app) {
  const token = tokenFromLink();
  const card = h("section", { class: "card narrow" }, h("h1", { text: "Choose a new password" }));
  if (!token) {
    card.append(h("p", { text: "This page opens from the link we mail. " }, h("a", { href: "/recover-password", text: "Ask for a link." })));
    return card;
  }
  card.append(form({
    label: "Choose a new password",
    submit: "Change password",
    fields: [
      field("new_password", "New password", { type: "password", autocomplete: "new-password", required: true, hint: passwordHint }),
      field("confirm", "Repeat the new password", { type: "password", autocomplete: "new-password", required: true }),
    ],
    async onSubmit(v) {
      if (v.new_password !== v.confirm) throw mismatch("confirm");
      await api("POST", "/auth/password-reset", { token, new_password: v.new_password });
      app.me = null;
      app.navigate("/login", { flash: "Your password is changed, and every session was signed out. Sign in with the new one." });
    },
  }), h("p", {}, h("a", { href: "/recover-password", text: "Ask for a new link" })));
  return card;
}

export async function verifyPage(app) {
  const token = tokenFromLink();
  const card = h("section", { class: "card narrow" }, h("h1", { text: "Verify your email" }));
  if (!token) {
    card.append(h("p", { text: "This page opens from the link we mail to confirm an address." }));
    return card;
  }
  try {
    await api("POST", "/auth/verify-email", { token });
  } catch (p) {
    if (!(p instanceof Problem) || p.code !== "invalid_token") throw p;
    card.append(h("p", { class: "alert", role: "alert", text: p.detail }), resendForm(app));
    return card;
  }
  if (app.me) await app.refreshMe();
  card.append(h("p", { class: "success", role: "status", text: "Your email address is verified." }),
    h("p", {}, h("a", { href: app.me ? "/" : "/login", text: app.me ? "Go to the dashboard" : "Sign in" })));
  return card;
}

// resendForm mails a fresh verification link: to the signed-in account, or
// to an address typed here.
function resendForm(app) {
  const done = h("div", { role: "status", "aria-live": "polite" });
  const fields = app.me ? [] : [field("email", "Email", { type: "email", autocomplete: "email", required: true })];
  return h("div", {}, done, form({
    label: "Send a new link",
    submit: "Send a new link",
    fields,
    async onSubmit(v) {
      const doc = app.me ? await api("POST", "/users/me/verify-email") : await api("POST", "/auth/verify-email/resend", { email: v.email });
      done.replaceChildren(h("p", { class: "success", text: (doc && doc.detail) || "A new link is on its way." }));
    },
  }));
}
