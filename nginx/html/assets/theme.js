// The appearance chosen in Settings (System, Light or Dark), applied before
// the page is drawn so it never shows the other theme first: a classic
// script in <head>, ahead of the stylesheet. localStorage holds this
// choice and nothing else (never a secret); settings.js writes it.
try {
  const chosen = localStorage.getItem("appearance");
  if (chosen === "light" || chosen === "dark") document.documentElement.dataset.theme = chosen;
} catch {
  // Storage refused: the system's colour scheme it is.
}
