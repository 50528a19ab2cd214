"use strict";
D.header("");
const { el } = D;
const id = D.param("id") || "";
const $ = (x) => document.getElementById(x);
const base = "/v1/campaigns/" + encodeURIComponent(id);
const PAGE = 25;
let offset = 0;
let lastFinished = -1;
let outcomesSeen = new Set();

$("export-csv").setAttribute("href", base + "/calls?format=csv");
$("export-csv").setAttribute("download", "campaign-" + id + ".csv");

function showStatus(view) {
  const s = view.status;
  document.title = (s.name || s.id) + " · Dialer";
  D.replace($("name"), s.name || s.id);
  D.replace($("state"), s.state);
  $("state").setAttribute("class", "badge " + s.state);
  D.replace($("progress"), Charts.progress(s.progress, 600));
  D.replace($("progress-text"), `${s.finished} of ${s.total} contacts finished (${D.pct(s.progress)})`);
  D.replace($("eta"), s.state === "running" && view.eta_s !== null ? "about " + D.duration(view.eta_s) + " left" :
    s.state === "done" ? "finished" : "");
  D.replace($("meta"), `account ${s.account} · bot ${s.bot || "echo"} · started ${D.when(s.created_at)}`);
  D.replace($("waiting"), s.waiting.reasons.map((r) => r.text).join("; "));
  $("pause").disabled = s.state !== "running";
  $("resume").disabled = s.state !== "paused";
  $("cancel").disabled = s.state === "cancelled" || s.state === "done";
  D.replace($("gauge"), Charts.gauge(view.gauge.active, view.gauge.limit));
  const c = view.charts;
  D.replace($("timeline"), Charts.timeline(c.timeline));
  D.replace($("attempts"), Charts.bars(Object.fromEntries(Object.entries(c.attempts).map(([n, k]) => [n + " attempt" + (n === "1" ? "" : "s"), k]))));
  const questions = Object.entries(c.answers);
  $("answers-section").classList.toggle("hidden", !questions.length);
  D.replace($("answers"), questions.map(([q, counts]) =>
    el("div", { class: "panel answer-chart", "data-question": q }, el("h3", {}, q), Charts.bars(counts))));
  for (const o of Object.keys(s.outcomes)) {
    if (!outcomesSeen.has(o)) { outcomesSeen.add(o); $("outcome").append(el("option", { value: o }, o)); }
  }
  if (s.finished !== lastFinished) { lastFinished = s.finished; loadContacts(); }
}

async function act(action) {
  D.replace($("action-error"));
  const verbs = { pause: "Pause", resume: "Resume", cancel: "Cancel" };
  const text = {
    pause: "Pause this campaign? Calls in progress go on; no new ones start.",
    resume: "Resume this campaign?",
    cancel: "Cancel this campaign? Waiting calls are settled as cancelled; this cannot be undone.",
  }[action];
  if (!(await D.confirmDialog(text, verbs[action]))) return;
  try { showStatusOnly(await D.api("POST", base + "/" + action)); }
  catch (e) { D.replace($("action-error"), e.message); }
}

function showStatusOnly(s) {
  D.replace($("state"), s.state);
  $("state").setAttribute("class", "badge " + s.state);
}

function attemptsTable(row) {
  const rows = row.attempts.map((a) => {
    const url = a.recording_url ? D.safeUrl(a.recording_url) : null;
    return el("tr", {},
      el("td", {}, String(a.n ?? "")), el("td", {}, a.status || ""), el("td", {}, D.duration(a.duration_s)),
      el("td", {}, D.when(a.started_at)), el("td", {}, a.reason ? a.reason.text : ""),
      el("td", {}, a.answered_by || ""),
      el("td", {}, url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, "recording") : ""));
  });
  const answers = Object.entries(row.answers).sort().map(([q, v]) => el("li", {}, q + " = " + v));
  return el("div", { class: "attempts" },
    el("table", {}, el("thead", {}, el("tr", {}, ["#", "Status", "Duration", "Started", "Reason", "Answered by", "Recording"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)),
    answers.length ? el("ul", { class: "answers" }, answers) : el("p", { class: "muted" }, "no answers"),
    row.reason ? el("p", {}, "why: " + row.reason.text) : null);
}

function contactRow(row) {
  const vars = Object.entries(row.vars).map(([k, v]) => k + ": " + (typeof v === "string" ? v : JSON.stringify(v))).join(", ");
  const answers = Object.entries(row.answers).sort().map(([q, v]) => q + "=" + v).join(" ");
  const tr = el("tr", { class: "clickable contact", "data-id": row.id },
    el("td", {}, row.to || ""), el("td", { class: "vars" }, vars), el("td", {}, row.state),
    el("td", {}, row.outcome || ""), el("td", {}, String(row.attempts.length)), el("td", {}, answers));
  tr.addEventListener("click", () => {
    const next = tr.nextElementSibling;
    if (next && next.classList.contains("detail")) { next.remove(); return; }
    tr.after(el("tr", { class: "detail" }, el("td", { colspan: 6 }, attemptsTable(row))));
  });
  return tr;
}

let loading = null;
async function loadContacts() {
  const q = new URLSearchParams({ offset, limit: PAGE, q: $("search").value, outcome: $("outcome").value });
  const mine = (loading = fetch("/ui/api/campaigns/" + encodeURIComponent(id) + "/contacts?" + q, { credentials: "same-origin" }));
  const resp = await mine;
  if (mine !== loading || !resp.ok) return;  // a newer request or a refusal
  const page = await resp.json();
  const open = new Set([...document.querySelectorAll("#contacts tr.detail")].map((d) => d.previousElementSibling && d.previousElementSibling.dataset.id));
  const body = document.querySelector("#contacts tbody");
  D.replace(body, page.calls.map(contactRow));
  for (const tr of body.querySelectorAll("tr.contact")) if (open.has(tr.dataset.id)) tr.click();
  D.replace($("contacts-count"), page.total + " contacts");
  D.replace($("page"), page.total ? `${offset + 1}–${Math.min(offset + PAGE, page.total)} of ${page.total}` : "none");
  $("prev").disabled = offset === 0;
  $("next").disabled = offset + PAGE >= page.total;
}

async function exportJson() {
  const rows = [];
  for (let at = 0; ; ) {
    const page = await D.api("GET", base + "/calls?limit=1000&offset=" + at);
    rows.push(...page.calls);
    if (page.next_offset === null) break;
    at = page.next_offset;
  }
  const blob = new Blob([JSON.stringify(rows, null, 2)], { type: "application/json" });
  const a = el("a", { href: URL.createObjectURL(blob), download: "campaign-" + id + ".json" });
  document.body.append(a);
  a.click();
  a.remove();
}

for (const action of ["pause", "resume", "cancel"]) $(action).addEventListener("click", () => act(action));
$("export-json").addEventListener("click", exportJson);
let typing = null;
$("search").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => { offset = 0; loadContacts(); }, 250); });
$("outcome").addEventListener("change", () => { offset = 0; loadContacts(); });
$("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); loadContacts(); });
$("next").addEventListener("click", () => { offset += PAGE; loadContacts(); });

D.me().then(() => D.watch("/ui/api/campaigns/" + encodeURIComponent(id) + "/events", showStatus,
  () => D.replace($("name"), "no such campaign")));
