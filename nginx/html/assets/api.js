// The API, as the page calls it: same origin, on the cookie session (the
// page never holds a token: the cookie is HttpOnly). Every failure is a
// Problem, the service's problem document.

export class Problem extends Error {
  constructor(status, doc = {}, retryAfter = 0) {
    super(doc.detail || `The service answered ${status}.`);
    this.status = status;
    this.code = doc.code || "";
    this.detail = doc.detail || this.message;
    this.errors = Array.isArray(doc.errors) ? doc.errors : [];
    this.requestId = doc.request_id || "";
    this.mfaToken = doc.mfa_token || "";
    this.retryAfter = retryAfter;
    this.handled = false; // true once the app acted on it (a 401 went back to sign-in)
  }
}

// What the app does when the session is gone (a 401 anywhere but the
// sign-in itself) or the account must enrol a second factor first.
const hooks = { signedOut: () => {}, mustEnrol: () => {} };
export function onSession(h) {
  Object.assign(hooks, h);
}

// api sends one request and answers the parsed body (null for 204).
// opts.signIn: a 401 is the answer to show (a wrong password, a code
// asked), not a session that ended. opts.headers: more headers
// (Idempotency-Key, If-Match).
export async function api(method, path, body, opts = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...opts.headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch("/api/v1" + path, init);
  } catch {
    throw new Problem(0, { detail: "The service cannot be reached. Check your connection and try again." });
  }
  if (r.status === 204) return null;
  const doc = await r.json().catch(() => ({}));
  if (r.ok) return doc;
  const p = new Problem(r.status, doc, Number(r.headers.get("Retry-After")) || 0);
  if (r.status === 401 && !opts.signIn) {
    p.handled = true;
    hooks.signedOut(p);
  } else if (r.status === 403 && p.code === "mfa_enrollment_required" && location.pathname !== "/settings") {
    p.handled = true; // on /settings, where it enrols, the page shows it instead
    hooks.mustEnrol(p);
  }
  throw p;
}

// ifMatch is the If-Match header for a resource as it was read: its
// version, as the service's ETag quotes it.
export const ifMatch = (resource) => ({ "If-Match": `"${resource.version}"` });

// retryKey is the Idempotency-Key of a create form: the same while the
// same body is sent again (a retry after a lost answer happens once), a
// fresh one for another body, and after a success.
export function retryKey() {
  let sent = null;
  let key = "";
  return {
    header(body) {
      const s = JSON.stringify(body);
      if (s !== sent) {
        sent = s;
        key = crypto.randomUUID();
      }
      return { "Idempotency-Key": key };
    },
    done() {
      sent = null;
    },
  };
}

// query is a query string of the params that are set.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}
