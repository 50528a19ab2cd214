"use strict";
D.header("/ui/new");
const { el } = D;
const $ = (x) => document.getElementById(x);
let prepared = null;  // the body previewed: Start sends exactly this

function botKind() { return document.querySelector("input[name=bot]:checked").value; }

for (const radio of document.querySelectorAll("input[name=bot]")) {
  radio.addEventListener("change", () => {
    $("survey-box").classList.toggle("hidden", botKind() !== "survey");
    $("relay-box").classList.toggle("hidden", botKind() !== "relay");
    hidePreview();
  });
}
for (const input of document.querySelectorAll("#new-form input, #new-form select")) input.addEventListener("change", hidePreview);

function hidePreview() { prepared = null; $("preview-box").classList.add("hidden"); }

function base64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

// The survey as the API takes it: the document and its WAV prompts (base64).
async function surveyContent() {
  const files = [...$("survey").files];
  const doc = files.find((f) => f.name.endsWith(".json"));
  if (!doc) throw new Error("choose the survey's JSON file (and the WAV files it names)");
  let document_;
  try { document_ = JSON.parse(await doc.text()); }
  catch (e) { throw new Error(doc.name + " is not valid JSON: " + e.message); }
  const prompts = {};
  for (const f of files) if (f !== doc) prompts[f.name] = await base64(f);
  return { label: doc.name, content: { document: document_, prompts } };
}

async function body() {
  const csvFile = $("csv").files[0];
  if (!csvFile) throw new Error("choose a CSV file");
  const out = {
    account: $("account").value,
    csv: await csvFile.text(),
    max_attempts: Number($("max_attempts").value),
    retry_delay_s: Number($("retry_delay_s").value),
    time_limit_s: Number($("time_limit_s").value),
    machine_detection: $("machine_detection").value,
    record: $("record").checked,
  };
  if ($("name").value) out.name = $("name").value;
  if ($("window").value) out.window = $("window").value;
  const kind = botKind();
  if (kind === "survey") {
    const s = await surveyContent();
    out.bot = "survey:" + s.label;
    out.survey = s.content;
  } else if (kind === "relay") {
    out.bot = "relay:" + $("relay").value;
  } else {
    out.bot = "echo";
  }
  return out;
}

$("new-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  D.replace($("new-error"));
  hidePreview();
  try {
    const spec = await body();
    const out = await D.api("POST", "/v1/campaigns?dry_run=true", spec);
    const est = out.preflight.estimate;
    D.replace($("preview-summary"),
      `${out.accepted} contacts will be called, ${out.rejected.length} rows rejected, ` +
      `${out.duplicates} duplicates, ${out.suppressed} on the do-not-call list. ` +
      `At most ${out.preflight.max_concurrent_calls} calls at once: about ${D.duration(est.finish_in_s)} to finish.`);
    D.replace(document.querySelector("#rejected tbody"),
      out.rejected.map((r) => el("tr", {}, el("td", {}, String(r.line)), el("td", {}, r.reason))));
    $("start").disabled = out.accepted === 0;
    prepared = spec;
    $("preview-box").classList.remove("hidden");
  } catch (e) {
    D.replace($("new-error"), e.message);
  }
});

$("start").addEventListener("click", async () => {
  if (!prepared) return;
  $("start").disabled = true;
  try {
    const out = await D.api("POST", "/v1/campaigns", prepared);
    location.assign("/ui/campaign?id=" + encodeURIComponent(out.id));
  } catch (e) {
    D.replace($("new-error"), e.message);
    $("start").disabled = false;
  }
});

D.me().then((s) => {
  for (const a of s.accounts) $("account").append(el("option", { value: a }, a));
});
