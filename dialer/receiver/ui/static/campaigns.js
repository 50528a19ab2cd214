"use strict";
D.header("/ui/");
const { el } = D;
const stateSel = document.getElementById("state");
const accountSel = document.getElementById("account");
let source = null;

function row(c) {
  return el("tr", { "data-id": c.id },
    el("td", {}, el("a", { href: "/ui/campaign?id=" + encodeURIComponent(c.id) }, c.name || c.id)),
    el("td", {}, c.account),
    el("td", {}, el("span", { class: "badge " + c.state }, c.state)),
    el("td", {}, Charts.progress(c.progress), " ", el("span", { class: "pct" }, D.pct(c.progress))),
    el("td", {}, Charts.mix(c.outcomes)),
    el("td", {}, D.when(c.created_at)),
    el("td", {}, c.state === "running" ? D.duration(c.eta_s) : "—"));
}

function start() {
  if (source) source.close();
  const q = new URLSearchParams();
  if (stateSel.value) q.set("state", stateSel.value);
  if (accountSel.value) q.set("account", accountSel.value);
  source = D.watch("/ui/api/campaigns/events?" + q, (view) => {
    D.replace(document.querySelector("#campaigns tbody"), view.campaigns.map(row));
    D.replace(document.getElementById("count"), view.total + " campaigns");
  });
}

D.me().then((s) => {
  for (const a of s.accounts) accountSel.append(el("option", { value: a }, a));
  stateSel.addEventListener("change", start);
  accountSel.addEventListener("change", start);
  start();
});
