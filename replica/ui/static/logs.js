// The Logs page: every replica's latest lines, filtered, following new ones.
"use strict";
(() => {
  const form = document.getElementById("log-filter");
  const body = document.querySelector("#log-lines tbody");
  const status = document.getElementById("log-status");
  const follow = document.getElementById("log-follow");
  let cursor = "";
  const LIMIT = 1000;

  function row(line) {
    const tr = document.createElement("tr");
    const fields = { ...line };
    for (const k of ["seq", "ts", "replica", "level", "logger", "msg"]) delete fields[k];
    const extra = Object.keys(fields).length ? " " + JSON.stringify(fields) : "";
    const bad = line.level === "error" || line.level === "critical";
    for (const [text, cls] of [
      [(line.ts || "").replace("T", " ").replace("Z", ""), "nowrap mono"],
      [line.replica, ""],
      [line.level, bad ? "badge bad" : line.level === "warning" ? "badge warn" : ""],
      [line.logger, "mono"],
      [line.msg + extra, "mono"],
    ]) {
      const td = document.createElement("td");
      const holder = cls.startsWith("badge") ? td.appendChild(document.createElement("span")) : td;
      holder.textContent = text; // log text is never markup
      if (cls) holder.className = cls;
      tr.appendChild(td);
    }
    return tr;
  }

  async function poll(fresh) {
    if (fresh) {
      cursor = "";
      body.replaceChildren();
    }
    const params = new URLSearchParams(new FormData(form));
    params.set("after", cursor);
    const response = await fetch("/api/v0/logs?" + params, { credentials: "same-origin" });
    if (!response.ok) {
      status.textContent = `the logs could not be read (${response.status})`;
      return;
    }
    const answer = await response.json();
    cursor = answer.cursor;
    for (const line of answer.lines) body.prepend(row(line)); // newest on top
    while (body.children.length > LIMIT) body.lastElementChild.remove();
    const down = Object.keys(answer.errors);
    status.textContent = down.length ? `not answering: ${down.join(", ")}` : `${body.children.length} lines`;
  }

  form.addEventListener("change", () => poll(true));
  form.addEventListener("input", (e) => e.target.type === "search" && poll(true));
  form.addEventListener("submit", (e) => e.preventDefault());
  poll(true);
  setInterval(() => follow.checked && poll(false), 2000);
})();
