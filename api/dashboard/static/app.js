// The dashboard's shell: who is signed in, and which page the URL's hash names.
//   #/signin?next=...  #/runs  #/runs/12  #/compare?runs=1,2  #/studies  #/studies/3
import { ApiError, call, setRoles } from "./api.js";
import { describe, disposeAll } from "./charts.js";
import * as compare from "./pages/compare.js";
import * as run from "./pages/run.js";
import * as runs from "./pages/runs.js";
import * as signin from "./pages/signin.js";
import * as studies from "./pages/studies.js";
import * as study from "./pages/study.js";

const main = document.getElementById("app");
let leave = null; // the current page's clean-up (closes its streams and timers)
let me = null;

// For the browser tests and the benchmark: what each chart draws, and any page error.
window.fitlens = { charts: describe, errors: [] };
window.addEventListener("error", (e) => window.fitlens.errors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.fitlens.errors.push(String(e.reason)));

async function whoAmI() {
  const session = await call("/session"); // 200 either way: who the cookie signs in, or nobody
  me = session.user ? session : null;
  if (me) setRoles((await call("/me")).teams);
  document.getElementById("who").textContent = me ? `signed in as ${me.user}` : "";
  document.getElementById("sign-out").hidden = !me;
  return me;
}

async function route() {
  if (leave) leave();
  leave = null;
  disposeAll();
  performance.clearMarks("fitlens:charts-drawn"); // each page marks when its charts are drawn
  main.replaceChildren();
  const [path, search] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "signin" || (!me && !(await whoAmI()))) {
    // Back to the page asked for: the one in ?next=, or this very one (a deep link opened
    // while signed out keeps its hash), never a page outside the dashboard.
    const next = parts[0] === "signin" ? params.get("next") || "/runs" : path + (search ? `?${search}` : "");
    const back = `#${next.startsWith("/") && !next.startsWith("/signin") ? next : "/runs"}`;
    leave = signin.render(main, { done: async () => {
      await whoAmI();
      if (location.hash === back) route(); else location.hash = back;
    } });
    return;
  }
  try {
    if (parts[0] === "runs" && parts[1]) leave = await run.render(main, Number(parts[1]));
    else if (parts[0] === "compare") leave = await compare.render(main, params);
    else if (parts[0] === "studies" && parts[1]) leave = await study.render(main, Number(parts[1]));
    else if (parts[0] === "studies") leave = await studies.render(main, params);
    else leave = await runs.render(main, params);
  } catch (e) {
    main.replaceChildren();
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = e instanceof ApiError && e.status === 404 ? "Not found." : `Error: ${e.message}`;
    main.append(p);
  }
}

document.getElementById("sign-out").addEventListener("click", async () => {
  await call("/session", { method: "DELETE" }).catch(() => null);
  me = null;
  await whoAmI();
  location.hash = "#/signin";
});

// The page's own nav entry is marked, so a person knows where they are.
function markNav() {
  const page = location.hash.replace(/^#\/?/, "").split(/[/?]/)[0] || "runs";
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("here", a.dataset.page === page);
}
window.addEventListener("hashchange", markNav);

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", async () => {
  await whoAmI();
  markNav();
  route();
});
