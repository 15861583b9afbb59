/* ibsol web page: catalog, solution page, playground and jobs, on the HTTP API (docs/api.md) with the token the
 * user pastes, kept in sessionStorage (this tab only). No framework and nothing from another site: the gateway's
 * Content-Security-Policy allows this server only. Every text from the server reaches the page through
 * textContent, never as HTML. */
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "ibsol.token";
const PLAYGROUND_MAX = 64 * 1024 * 1024; /* run_sync sends the file inside a JSON body (IBSOL_MAX_BODY) */
const PAGE_DPI = 110;

const $ = (id) => document.getElementById(id);
const state = { token: null, me: null, apps: [], tab: "catalog", run: null, page: 1, pages: 1, stream: null };

/* ---- small helpers ---------------------------------------------------------------------------------------- */

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function showMessage(text, kind) {
  $("message-text").textContent = text;
  $("message").className = kind === "info" ? "info" : "";
  $("message").hidden = false;
}

function clearMessage() {
  $("message").hidden = true;
}

class ApiError extends Error {
  constructor(status, code, msg) {
    super(msg);
    this.status = status;
    this.code = code;
  }
}

/* One API call. `query` becomes the query string; `json` the body; `raw` (a Blob or File) is sent as it is.
 * Resolves to the parsed JSON (or the Response when `response` is set); rejects with an ApiError whose message is
 * the server's. A 401 ends the session: the token is wrong or was revoked. */
async function api(method, path, opts = {}) {
  const url = new URL(path.startsWith("/") ? path : API + "/" + path, location.origin);
  for (const [k, v] of Object.entries(opts.query || {})) url.searchParams.set(k, v);
  const headers = { Authorization: "Bearer " + (opts.token || state.token) };
  let body;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  } else if (opts.raw !== undefined) {
    headers["Content-Type"] = "application/octet-stream";
    body = opts.raw;
  }
  let r;
  try {
    r = await fetch(url, { method, headers, body, signal: opts.signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "unreachable", "The server cannot be reached (" + e.message + ").");
  }
  if (!r.ok) {
    let code = "http_" + r.status, msg = r.status + " " + r.statusText;
    try {
      const j = await r.json();
      code = j.code || code;
      msg = j.msg || msg;
    } catch (e) { /* not the API's error shape: the status says it */ }
    if (r.status === 401 && !opts.token) {
      logout();
      msg = "Your token was refused (" + msg + "). Log in again with a valid token.";
    } else if (r.status === 413) {
      msg = "Too large for the server: " + msg;
    }
    throw new ApiError(r.status, code, msg);
  }
  if (opts.response) return r;
  if (r.status === 204) return {};
  return r.json();
}

/* A drive path's URL under the files API: each segment encoded. */
function filesUrl(drivePath) {
  return "/api/v2/files/" + drivePath.replace(/^\//, "").split("/").map(encodeURIComponent).join("/");
}

function fmtBytes(n) {
  if (n === undefined || n === null) return "";
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function fmtTime(t) {
  if (!t) return "";
  const d = typeof t === "number" ? new Date(t * (t < 1e12 ? 1000 : 1)) : new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

function guard(fn) {
  return async (...args) => {
    try {
      await fn(...args);
    } catch (e) {
      if (e.name !== "AbortError") showMessage(e.message || String(e));
    }
  };
}

function iconFor(name, src) {
  const box = el("div", { class: "icon", "aria-hidden": "true" });
  if (src) box.append(el("img", { src, alt: "" }));
  else {
    let h = 0;
    for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
    box.style.background = "hsl(" + h + " 55% 42%)";
    box.textContent = [...name][0] ? [...name][0].toUpperCase() : "?";
  }
  return box;
}

/* ---- session ------------------------------------------------------------------------------------------- */

async function login(token) {
  const me = await api("GET", "whoami", { token });
  state.token = token;
  state.me = me;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  $("login").hidden = true;
  $("me").hidden = false;
  $("me-name").textContent = me.user;
  $("me-role").textContent = me.role;
  $("tabs").hidden = false;
  $("welcome").hidden = true;
  for (const e of document.querySelectorAll(".admin-only")) e.hidden = me.role !== "admin";
  clearMessage();
  show(state.tab);
}

function logout() {
  if (state.stream) state.stream.abort();
  state.token = null;
  state.me = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("login").hidden = false;
  $("me").hidden = true;
  $("tabs").hidden = true;
  for (const v of document.querySelectorAll(".view")) v.hidden = true;
  $("welcome").hidden = false;
}

function show(tab) {
  state.tab = tab;
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== tab;
  for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tab === tab);
  if (tab === "catalog") guard(loadCatalog)();
  if (tab === "playground") guard(loadPlayground)();
  if (tab === "jobs") guard(loadJobs)();
}

/* ---- catalog ------------------------------------------------------------------------------------------- */

async function loadCatalog() {
  const r = await api("GET", "marketplace/list");
  state.apps = r.apps || [];
  const list = $("apps");
  list.replaceChildren();
  $("apps-empty").hidden = state.apps.length > 0;
  for (const app of state.apps) list.append(appCard(app));
}

function versionSelect(versions, selected) {
  const s = el("select", { "aria-label": "version" });
  for (const v of versions) s.append(el("option", { value: v, text: v, selected: v === selected }));
  return s;
}

function appCard(app) {
  const installed = app.installed_versions || [];
  const available = app.available_versions || [];
  const pick = versionSelect(available.slice().reverse(), app.latest_version);
  const card = el("article", { class: "card", "data-name": app.name },
    el("div", { class: "card-head" }, iconFor(app.name, null),
      el("div", {},
        el("h3", {}, el("button", { class: "link open", type: "button", text: app.name,
                                    onclick: () => guard(openSolution)(app.name, null) })),
        el("div", { class: "muted", text: "latest " + (app.latest_version || "–") }))),
    el("p", { class: "desc", text: app.short_description || "" }),
    el("div", { class: "versions" },
      available.map((v) => el("span", { class: "badge" + (installed.includes(v) ? " ok" : ""),
                                          title: installed.includes(v) ? "installed" : "published",
                                          text: v + (installed.includes(v) ? " ✓ installed" : "") }))),
    el("div", { class: "actions" }, pick,
      el("button", { type: "button", class: "install", text: "Install",
                     onclick: guard(async () => {
                       await api("POST", "marketplace/install", { json: { name: app.name, version: pick.value } });
                       showMessage("Installed " + app.name + " " + pick.value + ".", "info");
                       await loadCatalog();
                     }) }),
      el("button", { type: "button", class: "secondary uninstall", text: "Uninstall",
                     disabled: !installed.includes(pick.value),
                     onclick: guard(async () => {
                       await api("POST", "marketplace/uninstall", { json: { name: app.name, version: pick.value } });
                       showMessage("Uninstalled " + app.name + " " + pick.value + ".", "info");
                       await loadCatalog();
                     }) }),
      state.me && state.me.role === "admin"
        ? el("button", { type: "button", class: "danger unpublish", text: "Unpublish",
                         onclick: guard(async () => {
                           if (!confirm("Unpublish " + app.name + " " + pick.value + "? It is uninstalled too.")) return;
                           await api("POST", "marketplace/unpublish", { json: { name: app.name, version: pick.value } });
                           showMessage("Unpublished " + app.name + " " + pick.value + ".", "info");
                           await loadCatalog();
                         }) })
        : null));
  pick.addEventListener("change", () => {
    card.querySelector("button.uninstall").disabled = !installed.includes(pick.value);
    card.querySelector("button.install").disabled = installed.includes(pick.value);
  });
  card.querySelector("button.install").disabled = installed.includes(pick.value);
  /* the icon comes with the version's details: fetched after the card is shown */
  if (app.icon_file) guard(async () => {
    const info = await api("GET", "marketplace/info", { query: { name: app.name } });
    if (info.icon) card.querySelector(".icon").replaceWith(iconFor(app.name, info.icon));
  })();
  return card;
}

async function publish(file) {
  if (!file) throw new Error("Choose an .ibsolution file to publish.");
  if (!/\.ibsolution$/.test(file.name)) throw new Error("'" + file.name + "' is not an .ibsolution file.");
  const path = "/" + state.me.user + "/.ibsol/web/publish/" + Date.now() + "-" + file.name;
  showMessage("Uploading " + file.name + " (" + fmtBytes(file.size) + ")…", "info");
  await api("PUT", filesUrl(path), { raw: file });
  try {
    const r = await api("POST", "marketplace/publish", { json: { ibsolution_path: path } });
    showMessage("Published " + r.name + " " + r.version + " (sha256 " + r.sha256.slice(0, 12) + "…).", "info");
  } finally {
    api("DELETE", filesUrl(path)).catch(() => {}); /* the upload was only the way in */
  }
  $("publish-file").value = "";
  await loadCatalog();
}

/* ---- solution page ---------------------------------------------------------------------------------------- */

/* `code` spans of a README line as <code> elements, the rest as text. */
function inline(text) {
  return text.split(/(`[^`]+`)/).filter((p) => p).map((p) =>
    p.length > 2 && p.startsWith("`") && p.endsWith("`") ? el("code", { text: p.slice(1, -1) }) : document.createTextNode(p));
}

/* The README as text blocks: headings, lists, code and paragraphs, built as elements (never HTML). */
function renderReadme(text) {
  const out = el("div", {});
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  let para = [], list = null, code = null;
  const flush = () => {
    if (para.length) out.append(el("p", {}, inline(para.join(" "))));
    para = [];
    list = null;
  };
  for (const line of lines) {
    if (code !== null) {
      if (/^```/.test(line)) { out.append(el("pre", { class: "code", text: code.join("\n") })); code = null; }
      else code.push(line);
      continue;
    }
    let m;
    if (/^```/.test(line)) { flush(); code = []; }
    else if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) { flush(); out.append(el("h" + Math.min(6, m[1].length + 2), { text: m[2] })); }
    else if ((m = /^\s*[-*]\s+(.*)$/.exec(line))) {
      if (para.length) { out.append(el("p", {}, inline(para.join(" ")))); para = []; }
      if (!list) { list = el("ul", {}); out.append(list); }
      list.append(el("li", {}, inline(m[1])));
    } else if (!line.trim()) flush();
    else para.push(line.trim());
  }
  if (code !== null) out.append(el("pre", { class: "code", text: code.join("\n") }));
  flush();
  return out;
}

async function openSolution(name, version) {
  const info = await api("GET", "marketplace/info", { query: version ? { name, version } : { name } });
  clearMessage();
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "solution";
  const m = info.manifest || {};
  $("solution-name").textContent = info.name + " " + info.version;
  $("solution-desc").textContent = m.long_description || m.short_description || "";
  $("solution-icon").replaceWith(Object.assign(iconFor(info.name, info.icon || null), { id: "solution-icon" }));
  $("solution-icon").classList.add("big");
  const sel = $("solution-version");
  sel.replaceChildren(...(info.available_versions || []).slice().reverse()
    .map((v) => el("option", { value: v, text: v, selected: v === info.version })));
  sel.onchange = guard(() => openSolution(name, sel.value));
  const facts = $("solution-facts");
  facts.replaceChildren();
  const fact = (k, v) => facts.append(el("dt", { text: k }), el("dd", { text: v === undefined || v === null ? "–" : String(v) }));
  fact("sha256", info.sha256);
  fact("size", fmtBytes(info.size));
  fact("published", fmtTime(info.published_unix || info.published) + (info.publisher ? " by " + info.publisher : ""));
  fact("installed", info.installed ? "yes" : "no");
  fact("versions", (info.available_versions || []).join(", "));
  fact("installed versions", (info.installed_versions || []).join(", ") || "none");
  fact("authors", Array.isArray(m.authors) ? m.authors.join(", ") : m.authors);
  const readme = $("solution-readme");
  readme.replaceChildren(info.readme ? renderReadme(info.readme)
                                     : el("p", { class: "muted", text: "This version has no README.md." }));
  $("solution-manifest").textContent = JSON.stringify(m, null, 2);
  const acts = $("solution-actions");
  acts.replaceChildren(
    el("button", { type: "button", text: info.installed ? "Installed ✓ — try it" : "Install",
                   onclick: guard(async () => {
                     if (!info.installed) await api("POST", "marketplace/install", { json: { name, version: info.version } });
                     await loadPlaygroundOptions();
                     $("pg-solution").value = name + "\u0000" + info.version;
                     show("playground");
                   }) }));
}

/* ---- playground ---------------------------------------------------------------------------------------- */

async function loadPlaygroundOptions() {
  const r = await api("GET", "marketplace/list");
  state.apps = r.apps || [];
  const sel = $("pg-solution"), was = sel.value;
  sel.replaceChildren();
  for (const app of state.apps)
    for (const v of (app.installed_versions || []).slice().reverse())
      sel.append(el("option", { value: app.name + "\u0000" + v, text: app.name + " " + v }));
  if (!sel.options.length) sel.append(el("option", { value: "", text: "(install a solution first)" }));
  if ([...sel.options].some((o) => o.value === was)) sel.value = was;
  updateRunButton();
}

async function loadPlayground() {
  await loadPlaygroundOptions();
}

function updateRunButton() {
  $("pg-run").disabled = !(state.file && $("pg-solution").value);
}

function chooseFile(file) {
  if (!file) return;
  state.file = file;
  $("drop-text").textContent = file.name + " (" + fmtBytes(file.size) + ")";
  updateRunButton();
}

function toBase64(file) {
  return new Promise((resolve, reject) => {
    const rd = new FileReader();
    rd.onload = () => resolve(String(rd.result).replace(/^data:[^,]*,/, ""));
    rd.onerror = () => reject(new Error("'" + file.name + "' cannot be read: " + rd.error));
    rd.readAsDataURL(file);
  });
}

async function runPlayground() {
  const file = state.file;
  const [name, version] = $("pg-solution").value.split("\u0000");
  if (!file || !name) return;
  if (file.size > PLAYGROUND_MAX)
    throw new Error("'" + file.name + "' is " + fmtBytes(file.size) + ": the playground takes documents up to " +
                    fmtBytes(PLAYGROUND_MAX) + ". Run larger ones as a job (solution/run).");
  if (file.size === 0) throw new Error("'" + file.name + "' is empty.");
  clearMessage();
  $("pg-run").disabled = true;
  $("result").hidden = true;
  const status = $("pg-status");
  try {
    /* The document goes to the user's drive (the page images are rendered from there) and, in the run_sync
     * body, to the solution. */
    const safe = file.name.replace(/[\/\\\u0000-\u001f]/g, "_").replace(/^\.+/, "_") || "document";
    const folder = "/" + state.me.user + "/.ibsol/web/playground/" + Date.now();
    const path = folder + "/" + safe;
    /* the last try's document is not needed once the next one runs: the drive keeps only the latest */
    if (state.lastUpload) api("DELETE", filesUrl(state.lastUpload)).catch(() => {});
    state.lastUpload = null;
    status.textContent = "Uploading " + file.name + "…";
    await api("PUT", filesUrl(path), { raw: file });
    state.lastUpload = folder;
    status.textContent = "Running " + name + " " + version + " on " + file.name + "…";
    const content = await toBase64(file);
    const r = await api("POST", "solution/run_sync",
                        { json: { name, version, files: [{ file_name: safe, file_content: content }] } });
    state.run = { path, records: r.records || [], job: r.job_id };
    const errs = state.run.records.filter((x) => x.error).map((x) => x.error);
    status.textContent = "Job " + r.job_id + ": " + state.run.records.length + " record(s).";
    renderFields();
    $("result").hidden = false;
    const failed = errs.length > 0 && errs.length === state.run.records.length;
    $("page").hidden = failed; /* nothing to draw on: the fields panel says why */
    $("page-label").textContent = failed ? "no page: the document failed" : "";
    if (!failed) await showPage(firstFieldPage());
    if (errs.length) showMessage("The document failed: " + errs.join("; "));
  } catch (e) {
    status.textContent = "";
    throw e;
  } finally {
    updateRunButton();
  }
}

function firstFieldPage() {
  for (const rec of state.run.records)
    for (const f of rec.results || []) if (f.page) return f.page;
  return 1;
}

/* Every box of the run: one per field, and one per cell of a table field. */
function allBoxes() {
  const out = [];
  state.run.records.forEach((rec, ri) => {
    (rec.results || []).forEach((f, fi) => {
      const id = ri + "." + fi;
      if (Array.isArray(f.bbox) && f.page) out.push({ id, label: f.key, page: f.page, bbox: f.bbox });
      (f.cells || []).forEach((row, rowi) => row.forEach((c, ci) => {
        if (c && Array.isArray(c.bbox) && c.page)
          out.push({ id: id + "." + rowi, label: ci === 0 ? f.key + "[" + rowi + "]" : "", page: c.page, bbox: c.bbox, cell: true });
      }));
    });
  });
  return out;
}

function hot(id, on) {
  for (const e of document.querySelectorAll('[data-box="' + id + '"], [data-box^="' + id + '."]'))
    e.classList.toggle("hot", on);
  for (const e of document.querySelectorAll('tr[data-field="' + id + '"]')) e.classList.toggle("hot", on);
}

function hoverable(node, id) {
  node.addEventListener("mouseenter", () => hot(id, true));
  node.addEventListener("mouseleave", () => hot(id, false));
  return node;
}

function valueCell(f) {
  if (f.error || f.value === "ERROR") return el("td", { class: "err", text: f.error || "ERROR" });
  if (Array.isArray(f.value) && f.value.every((r) => r && typeof r === "object" && !Array.isArray(r))) {
    const cols = [...new Set(f.value.flatMap((r) => Object.keys(r)))];
    const t = el("table", { class: "grid inner" }, el("tr", {}, cols.map((c) => el("th", { text: c }))));
    return el("td", {}, t, ...[]);
  }
  return el("td", { text: typeof f.value === "string" ? f.value : JSON.stringify(f.value) });
}

function renderFields() {
  const box = $("fields");
  box.replaceChildren();
  state.run.records.forEach((rec, ri) => {
    box.append(el("div", { class: "record-head",
                           text: rec.file_name + " — record " + (rec.record_index ?? ri) + (rec.class ? " (" + rec.class + ")" : "") }));
    if (rec.error) box.append(el("p", { class: "err", text: rec.error }));
    const t = el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, el("th", { text: "Field" }), el("th", { text: "Value" }), el("th", { text: "Type" }), el("th", { text: "Page" }))));
    const tb = el("tbody", {});
    (rec.results || []).forEach((f, fi) => {
      const id = ri + "." + fi;
      const td = valueCell(f);
      const inner = td.querySelector("table");
      if (inner) f.value.forEach((row, rowi) => {
        const tr = el("tr", { "data-field": id + "." + rowi },
          [...inner.rows[0].cells].map((th) => el("td", { text: row[th.textContent] === undefined ? "" : String(row[th.textContent]) })));
        inner.append(hoverable(tr, id + "." + rowi));
      });
      const tr = el("tr", { class: "field", "data-field": id, "data-key": f.key },
        el("td", { text: f.key }), td, el("td", { text: f.field_type || "" }), el("td", { text: f.page || "" }));
      tr.addEventListener("click", () => { if (f.page && f.page !== state.page) guard(showPage)(f.page); });
      tb.append(hoverable(tr, id));
    });
    t.append(tb);
    box.append(t);
    if ((rec.validation || []).length)
      box.append(el("p", { class: "err", text: "Validation: " + rec.validation.map((v) => v.msg || JSON.stringify(v)).join("; ") }));
  });
}

async function showPage(n) {
  const img = $("page-img");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.removeAttribute("src"); /* never a stale page under new boxes */
  $("boxes").replaceChildren();
  $("page").hidden = false;
  let r;
  try {
    r = await api("GET", "pages", { query: { path: state.run.path, page: n, dpi: PAGE_DPI }, response: true });
  } catch (e) {
    $("page").hidden = true;
    $("page-label").textContent = "no page image";
    throw new Error("The page image cannot be shown: " + e.message);
  }
  const blob = await r.blob();
  state.page = n;
  state.pages = parseInt(r.headers.get("X-Page-Count") || "1", 10);
  const w = parseFloat(r.headers.get("X-Page-Width")), h = parseFloat(r.headers.get("X-Page-Height"));
  await new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; img.src = URL.createObjectURL(blob); });
  $("page-label").textContent = "page " + n + " of " + state.pages;
  $("page-prev").disabled = n <= 1;
  $("page-next").disabled = n >= state.pages;
  /* Boxes are in the page's units (PDF points, or character cells for text); placed in percent of the page, so
   * they follow the image at any displayed size. */
  const boxes = $("boxes");
  boxes.replaceChildren();
  for (const b of allBoxes()) {
    if (b.page !== n || !(w > 0 && h > 0)) continue;
    const [x0, y0, x1, y1] = b.bbox;
    const d = el("div", { class: "box" + (b.cell ? " cell" : ""), "data-box": b.id, title: b.label },
      b.label ? el("span", { text: b.label }) : null);
    Object.assign(d.style, { left: (100 * x0 / w) + "%", top: (100 * y0 / h) + "%",
                             width: (100 * (x1 - x0) / w) + "%", height: (100 * (y1 - y0) / h) + "%" });
    boxes.append(hoverable(d, b.id.split(".").slice(0, 2).join(".")));
  }
}

/* ---- jobs ---------------------------------------------------------------------------------------------- */

async function loadJobs() {
  const r = await api("GET", "jobs/list", { query: { limit: 50 } });
  const tb = $("jobs-table").tBodies[0];
  tb.replaceChildren();
  $("jobs-empty").hidden = (r.jobs || []).length > 0;
  for (const j of r.jobs || []) {
    const running = !["COMPLETE", "FAILED", "CANCELLED", "DONE"].includes(j.status);
    tb.append(el("tr", { "data-job": j.job_id },
      el("td", {}, el("code", { text: j.job_id })),
      el("td", { text: j.kind || "" }),
      el("td", { text: fmtTime(j.created) }),
      el("td", { class: "st", text: j.status || "" }),
      el("td", { text: j.total ? (j.index || 0) + " / " + j.total : "" }),
      el("td", {}, el("div", { class: "actions" },
        el("button", { type: "button", class: "secondary", text: running ? "Follow" : "Results",
                       onclick: guard(() => openJob(j.job_id)) }),
        running ? el("button", { type: "button", class: "danger", text: "Cancel",
                                 onclick: guard(async () => {
                                   await api("POST", "jobs/cancel", { json: { job_id: j.job_id } });
                                   showMessage("Job " + j.job_id + " is being cancelled.", "info");
                                   await loadJobs();
                                 }) }) : null))));
  }
}

function jobProgress(st) {
  const p = st.curProgress !== undefined ? st.curProgress : st.total ? (st.index || 0) / st.total : 0;
  $("job-bar").style.width = Math.round(100 * Math.max(0, Math.min(1, p))) + "%";
  $("job-msg").textContent = (st.status || "") + (st.curMsg ? ": " + st.curMsg : "");
}

/* jobs/events through fetch, reading the SSE body as it comes: EventSource cannot send the Authorization
 * header, and the token must never go into a URL (logs, history). */
async function followJob(jobId) {
  if (state.stream) state.stream.abort();
  const ctl = new AbortController();
  state.stream = ctl;
  const r = await api("GET", "jobs/events", { query: { job_id: jobId }, response: true, signal: ctl.signal });
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = "", ended = false;
  try {
    while (!ended) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let ev = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) ev = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (!data) continue;
        let st = {};
        try { st = JSON.parse(data); } catch (e) { continue; }
        jobProgress(st);
        if (ev === "end") ended = true;
      }
    }
  } finally {
    ctl.abort();
    if (state.stream === ctl) state.stream = null;
  }
  return ended;
}

async function openJob(jobId) {
  $("job-detail").hidden = false;
  $("job-title").textContent = "Job " + jobId;
  $("job-results").replaceChildren();
  const st = await api("GET", "jobs/status", { query: { job_id: jobId } });
  let cur = {};
  try { cur = JSON.parse(st.cur_status || "{}"); } catch (e) { /* shown as it is below */ }
  jobProgress(cur);
  if (st.state !== "DONE") await followJob(jobId);
  const res = await api("GET", "jobs/results", { query: { job_id: jobId } });
  const recs = res.records || [];
  const t = el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, ["File", "Record", "Fields", "Error"].map((h) => el("th", { text: h })))));
  const tb = el("tbody", {});
  for (const rec of recs)
    tb.append(el("tr", {},
      el("td", { text: rec.file_name || "" }), el("td", { text: String(rec.record_index ?? "") }),
      el("td", { text: (rec.results || []).map((f) => f.key + " = " + (typeof f.value === "string" ? f.value : JSON.stringify(f.value))).join("; ") }),
      el("td", { class: "err", text: rec.error || "" })));
  t.append(tb);
  $("job-results").replaceChildren(recs.length ? t : el("p", { class: "muted", text: "No records." }));
  await loadJobs();
}

/* ---- wiring -------------------------------------------------------------------------------------------- */

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("token").value.trim();
    if (!t) return showMessage("Paste your API token first.");
    guard(async () => {
      try {
        await login(t);
      } catch (err) {
        if (err.status === 401) throw new Error("That token was refused by the server: " + err.message);
        throw err;
      }
    })();
  });
  $("logout").addEventListener("click", () => { logout(); clearMessage(); });
  $("message-close").addEventListener("click", clearMessage);
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => show(b.dataset.tab));
  $("catalog-refresh").addEventListener("click", guard(loadCatalog));
  $("jobs-refresh").addEventListener("click", guard(loadJobs));
  $("solution-back").addEventListener("click", () => show("catalog"));
  $("publish").addEventListener("submit", (e) => { e.preventDefault(); guard(publish)($("publish-file").files[0]); });
  $("pg-file").addEventListener("change", () => chooseFile($("pg-file").files[0]));
  $("pg-solution").addEventListener("change", updateRunButton);
  $("pg-run").addEventListener("click", guard(runPlayground));
  $("page-prev").addEventListener("click", guard(() => showPage(state.page - 1)));
  $("page-next").addEventListener("click", guard(() => showPage(state.page + 1)));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    chooseFile(e.dataTransfer.files[0]);
  });
  window.addEventListener("unhandledrejection", (e) => showMessage(String(e.reason && e.reason.message || e.reason)));
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) guard(async () => {
    try { await login(saved); } catch (e) { logout(); throw e; }
  })();
});
