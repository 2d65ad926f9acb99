// Sign in with a token: it is sent once (POST /session) and exchanged for an HttpOnly cookie;
// the page never stores it.
import { call, el } from "../api.js";

export function render(main, { done }) {
  const token = el("input", { type: "password", id: "token", autocomplete: "off",
    placeholder: "fl_…" });
  const message = el("p", { class: "error", id: "signin-error" });
  const form = el("form", { class: "card signin", onsubmit: async (e) => {
    e.preventDefault();
    message.textContent = "";
    try {
      await call("/session", { method: "POST",
        headers: { Authorization: `Bearer ${token.value.trim()}` } });
      token.value = "";
      await done();
    } catch (err) {
      message.textContent = `Sign-in failed: ${err.message}`;
    }
  } },
  el("h1", {}, "Sign in to fitlens"),
  el("label", { for: "token" }, "Your API token"),
  token,
  el("button", { class: "primary", type: "submit" }, "Sign in"),
  message,
  el("p", { class: "muted" }, "Get a token from your team's owner, or: python -m api admin token <user>. ",
    "It is exchanged for a session cookie and not kept by this page."));
  main.append(form);
  return null;
}
