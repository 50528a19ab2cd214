"use strict";
document.getElementById("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const error = document.getElementById("signin-error");
  const resp = await fetch("/ui/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ key: document.getElementById("key").value }),
  });
  if (!resp.ok) {
    const data = await resp.json().catch(() => ({}));
    D.replace(error, data.error || "sign-in failed");
    return;
  }
  const next = D.param("next");
  // only a path of this dashboard: never an address elsewhere
  location.assign(next && /^\/ui\/[A-Za-z0-9_/?=&.%-]*$/.test(next) ? next : "/ui/");
});
