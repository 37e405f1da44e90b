// Passkeys, as the browser makes and uses them (WebAuthn Level 3): the
// service's options go in as JSON (parse…FromJSON), the credential comes
// out as JSON (toJSON), so the page holds no base64 or CBOR code. What the
// browser refuses becomes a Problem the forms show like any other.
import { Problem } from "./api.js";

// supported says the browser takes the JSON forms (Baseline 2025).
export function supported() {
  return typeof window.PublicKeyCredential === "function" &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";
}

// conditionalAvailable says the browser can offer passkeys in the email
// field's autofill (conditional mediation).
export async function conditionalAvailable() {
  if (!supported() || typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") return false;
  try {
    return await PublicKeyCredential.isConditionalMediationAvailable();
  } catch {
    return false;
  }
}

// The autofill's request, while one waits: a dialog's request, or a
// passkey's creation, cancels it first (a browser runs one at a time).
let autofill = null;

// cancelAutofill cancels the autofill's request, and answers once it is
// settled.
export function cancelAutofill() {
  if (!autofill) return Promise.resolve();
  autofill.controller.abort();
  return autofill.done;
}

// create makes a passkey from creation options, and answers the
// registration response to send back.
export async function create(options) {
  await cancelAutofill();
  try {
    const cred = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) });
    return cred.toJSON();
  } catch (err) {
    throw refused(err, "No passkey was added");
  }
}

// get asks for an assertion for request options: in the browser's dialog,
// or when conditional from the autofill of a field marked "webauthn" (it
// waits until the person picks a passkey there; null when cancelled).
export async function get(options, { conditional = false } = {}) {
  await cancelAutofill();
  const controller = conditional ? new AbortController() : null;
  const request = navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
    mediation: conditional ? "conditional" : "optional",
    signal: controller ? controller.signal : undefined,
  });
  if (controller) autofill = { controller, done: request.catch(() => null) };
  try {
    return (await request).toJSON();
  } catch (err) {
    if (controller && controller.signal.aborted) return null;
    throw refused(err, "You were not signed in");
  } finally {
    if (autofill && autofill.controller === controller) autofill = null;
  }
}

// refused says in words what the browser's error means.
function refused(err, outcome) {
  const why = {
    NotAllowedError: "the passkey prompt was closed or timed out",
    InvalidStateError: "this device holds a passkey for this account already",
    SecurityError: "this address cannot use passkeys here; open the app at the address its operator set (in development, http://localhost)",
    NotSupportedError: "this device has no passkey of a kind the service takes",
    AbortError: "the request was cancelled",
  }[err && err.name] || (err && err.message) || String(err);
  return new Problem(0, { detail: `${outcome}: ${why}.` });
}
