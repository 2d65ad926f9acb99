// The API, as the signed-in browser calls it: the session cookie rides along by itself; writes
// add the CSRF token (from the readable fitlens_csrf cookie). No token is ever kept by the page.
export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function csrf() {
  const match = document.cookie.match(/(?:^|; )fitlens_csrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function call(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { ...headers }, credentials: "same-origin", cache: "no-cache" };
  if (method !== "GET" && method !== "HEAD") init.headers["X-CSRF-Token"] = csrf();
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401 && !path.startsWith("/session")) signInThenBack();
    throw new ApiError(response.status, data.detail || response.statusText);
  }
  return data;
}

// To the sign-in page, which comes back here (the deep link a demo printed) once signed in.
export function signInThenBack() {
  const here = location.hash.replace(/^#/, "");
  if (here.startsWith("/signin")) return;
  location.hash = `#/signin?next=${encodeURIComponent(here || "/runs")}`;
}

// Who is signed in and their role in each team (GET /me): what the pages offer to do.
let roles = new Map();
export function setRoles(teams) { roles = new Map(teams.map((t) => [t.id, t.role])); }
export const canWrite = (teamId) => ["owner", "member"].includes(roles.get(teamId));

export const get = (path, params) => call(params ? `${path}?${query(params)}` : path);

export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) q.append(key, v);
  }
  return q.toString();
}

// A run's or study's Server-Sent Events, by cookie (EventSource cannot send headers).
export function follow(path, handlers) {
  const source = new EventSource(API + path, { withCredentials: true });
  for (const [kind, handle] of Object.entries(handlers)) {
    source.addEventListener(kind, (e) => handle(JSON.parse(e.data)));
  }
  source.addEventListener("end", () => source.close());
  return source;
}

// JSON carries NaN and +-Infinity as strings: numbers for the charts, or null (a gap).
export function num(value) {
  if (typeof value === "number") return value;
  if (value === "Infinity") return Infinity;
  if (value === "-Infinity") return -Infinity;
  if (value === "NaN") return NaN;
  return null;
}

export function fmt(value, digits = 4) {
  const v = num(value);
  if (v === null || v === undefined) return "–";
  if (!Number.isFinite(v)) return String(v);
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function statusBadge(status) {
  return el("span", { class: `status ${status}` }, status);
}
