// Shared by every page: DOM building (text nodes only, never markup), the REST
// client with the session's CSRF token, live views (EventSource), formatting.
"use strict";

const D = (() => {
  const KNOWN = ["completed", "no-answer", "busy", "failed", "cancelled", "machine",
    "voicemail", "unknown", "suppressed", "bot-failed"];

  // el("td", {class: "x"}, "text", child): strings become text nodes, so a
  // contact's "<script>" is shown as those very characters.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    return fill(node, attrs, children);
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    return fill(node, attrs, children);
  }

  function fill(node, attrs, children) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      node.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return node;
  }

  function replace(node, ...children) {
    node.replaceChildren();
    fill(node, {}, children);
  }

  let session = null;

  async function me() {
    if (session) return session;
    const resp = await fetch("/ui/api/me", { credentials: "same-origin" });
    if (resp.status === 401) {
      location.assign("/ui/signin?next=" + encodeURIComponent(location.pathname + location.search));
      throw new Error("signed out");
    }
    session = await resp.json();
    return session;
  }

  class ApiError extends Error {}

  // The REST API itself, with the session cookie and the CSRF token.
  async function api(method, path, body) {
    const s = await me();
    const headers = { "X-CSRF-Token": s.csrf };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const lines = [data.error || resp.statusText];
      for (const d of data.detail || []) {
        lines.push((d.line ? "line " + d.line + ": " : "") + (d.field ? d.field + ": " : "") + d.message);
      }
      throw new ApiError(lines.join("\n"));
    }
    return data;
  }

  // A live view: called with each new state the server pushes.
  function watch(path, onData, onGone) {
    const source = new EventSource(path);
    source.onmessage = (ev) => onData(JSON.parse(ev.data));
    source.addEventListener("gone", () => { source.close(); if (onGone) onGone(); });
    // a refusal (404, 401) closes it for good; a dropped connection is retried by the browser
    source.onerror = () => { if (source.readyState === EventSource.CLOSED && onGone) onGone(); };
    return source;
  }

  function confirmDialog(message, action) {
    return new Promise((resolve) => {
      const dialog = el("dialog", { id: "confirm" },
        el("p", {}, message),
        el("div", { class: "buttons" },
          el("button", { id: "confirm-no", onclick: () => done(false) }, "Keep it"),
          el("button", { id: "confirm-yes", class: "danger", onclick: () => done(true) }, action)));
      function done(ok) { dialog.close(); dialog.remove(); resolve(ok); }
      document.body.append(dialog);
      dialog.showModal();
    });
  }

  function header(here) {
    const link = (href, text) => el("a", { href, class: here === href ? "here" : null }, text);
    const who = el("span", { class: "who" });
    const out = el("button", { id: "signout", onclick: signOut }, "Sign out");
    const bar = el("header", {}, el("strong", {}, "Dialer"), link("/ui/", "Campaigns"),
      link("/ui/new", "New campaign"), link("/ui/accounts", "Accounts"), who, out);
    document.body.prepend(bar);
    me().then((s) => replace(who, s.admin ? "admin key" : "key " + s.key_id + " · " + s.accounts.join(", ")));
  }

  async function signOut() {
    await api("POST", "/ui/api/signout");
    location.assign("/ui/signin");
  }

  function outcomeClass(name) {
    return "o-" + (KNOWN.includes(name) ? name : "other");
  }

  function pct(x) { return (100 * x).toFixed(x >= 1 || x === 0 ? 0 : 1) + " %"; }

  function when(epoch) {
    if (!epoch) return "";
    return new Date(epoch * 1000).toLocaleString();
  }

  function duration(s) {
    if (s === null || s === undefined) return "—";
    s = Math.round(s);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function safeUrl(text) {
    try {
      const u = new URL(text);
      return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
    } catch (e) { return null; }
  }

  function param(name) { return new URLSearchParams(location.search).get(name); }

  return { el, svg, replace, me, api, ApiError, watch, confirmDialog, header, outcomeClass,
    pct, when, duration, safeUrl, param };
})();
