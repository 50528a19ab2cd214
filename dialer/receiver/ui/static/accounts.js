"use strict";
D.header("/ui/accounts");
const { el } = D;
const root = document.getElementById("accounts");
const panels = new Map();  // sid -> the live parts of its panel (the DNC box keeps its text)

function panel(sid) {
  if (panels.has(sid)) return panels.get(sid);
  const live = el("div", { class: "grid" });
  const numbers = el("textarea", { id: "dnc-" + sid, placeholder: "one number per line" });
  const note = el("p", { class: "muted" });
  const importBtn = el("button", { class: "primary", onclick: () => importDnc(sid, numbers, note) }, "Import do-not-call numbers");
  const box = el("section", { class: "panel", "data-sid": sid }, el("h2", {}, sid), live,
    el("h3", {}, "Do-not-call list"), numbers, importBtn, note);
  root.append(box);
  const parts = { live, note };
  panels.set(sid, parts);
  return parts;
}

async function importDnc(sid, textarea, note) {
  const numbers = textarea.value.split(/[\s,;]+/).filter(Boolean);
  if (!numbers.length) return;
  try {
    const out = await D.api("POST", "/v1/accounts/" + encodeURIComponent(sid) + "/dnc", { numbers });
    const bad = out.rejected.map((r) => numbers[r.line - 1] + ": " + r.reason);
    D.replace(note, `added ${out.added}; ${out.count} numbers on the list` + (bad.length ? "; refused: " + bad.join(", ") : ""));
    textarea.value = "";
  } catch (e) { D.replace(note, e.message); }
}

async function resume(sid, btn) {
  if (!(await D.confirmDialog(`Resume dialling on ${sid}? Its Exotel credentials were refused; fix them first.`, "Resume"))) return;
  btn.disabled = true;
  try { await D.api("POST", "/v1/accounts/" + encodeURIComponent(sid) + "/resume"); }
  catch (e) { alert(e.message); }
}

function show(a) {
  const { live } = panel(a.sid);
  const circuit = [el("span", { class: "badge circuit " + a.circuit }, "circuit " + a.circuit)];
  if (a.circuit === "open") {
    const btn = el("button", { class: "resume" }, "Resume");
    btn.addEventListener("click", () => resume(a.sid, btn));
    circuit.push(" ", a.circuit_reason, " ", btn);
  }
  D.replace(live,
    el("div", {}, el("h3", {}, "Active calls"), Charts.gauge(a.active, a.max_concurrent_calls)),
    el("div", {}, el("h3", {}, "API budget used, last minute"),
      Charts.progress(a.calls_per_minute ? a.requests_last_minute / a.calls_per_minute : 0, 200),
      el("p", { class: "budget" }, `${a.requests_last_minute} of ${a.calls_per_minute} Exotel requests a minute`)),
    el("div", {}, el("h3", {}, "Limits and state"),
      el("p", {}, `at most ${a.max_concurrent_calls} calls at once, ${a.calls_per_minute} requests a minute`),
      el("p", {}, "caller ID " + a.caller_id), el("p", {}, circuit),
      el("p", { class: "dnc-count" }, a.dnc_count + " numbers on the do-not-call list")));
}

D.watch("/ui/api/accounts/events", (view) => {
  if (!view.accounts.length) D.replace(root, el("p", { class: "muted" }, "no accounts for this key"));
  for (const a of view.accounts) show(a);
});
