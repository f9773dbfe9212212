// Quorum Registry's pages: forms that call the management API, typed confirmations,
// search as you type, copy buttons. No framework; every page works without errors
// when an element is absent.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

function formBody(form) {
  const body = {};
  for (const el of form.elements) {
    if (!el.name || el.dataset.local !== undefined || el.type === "submit") continue;
    let value;
    if (el.type === "checkbox") value = el.checked;
    else if (el.dataset.bool !== undefined) value = el.value === "true";
    else if (el.dataset.list !== undefined) value = el.value.split(/[\s,]+/).filter(Boolean);
    else if (el.type === "number") value = el.value === "" ? null : Number(el.value);
    else value = el.value;
    const path = el.name.split(".");
    let target = body;
    for (const key of path.slice(0, -1)) target = target[key] = target[key] || {};
    target[path[path.length - 1]] = value;
  }
  return body;
}

function showError(form, message) {
  let box = form.querySelector(".error");
  if (!box) {
    box = document.createElement("p");
    box.className = "error";
    box.setAttribute("role", "alert");
    form.appendChild(box);
  }
  box.textContent = message;
}

async function callApi(form) {
  const [method, url] = form.dataset.api.split(" ");
  const options = { method, headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" };
  if (method !== "GET" && method !== "DELETE") {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(formBody(form));
  }
  const button = form.querySelector("[type=submit]");
  if (button) button.disabled = true;
  try {
    const response = await fetch(url, options);
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const errors = (await response.json()).errors || [];
        if (errors.length) message = errors.map((e) => e.message).join("; ");
      } catch (e) { /* not JSON */ }
      showError(form, message);
      return;
    }
    const text = await response.text(); // read to the end: leaving now would abort it
    const then = form.dataset.then || "reload";
    if (then.startsWith("show:")) {
      // Something shown once (a new token): into the page, not reloaded away.
      const [, id, field] = then.split(":");
      const box = document.getElementById(id);
      const value = JSON.parse(text)[field];
      box.querySelector("[data-value]").textContent = value;
      box.querySelector("[data-copy]")?.setAttribute("data-copy", value);
      box.hidden = false;
      form.reset();
    } else if (then.startsWith("go:")) window.location.assign(then.slice(3));
    else window.location.reload();
  } catch (e) {
    showError(form, "the registry did not answer: " + e.message);
  } finally {
    if (button) button.disabled = false;
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.dataset.api) return;
  event.preventDefault();
  callApi(form);
});

document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    navigator.clipboard?.writeText(copy.dataset.copy).then(() => {
      copy.textContent = "Copied";
      setTimeout(() => (copy.textContent = "Copy"), 1500);
    }, () => {});
  }
  const opener = event.target.closest("[data-open]");
  if (opener) {
    const dialog = document.getElementById(opener.dataset.open);
    // One dialog serves many rows: the row's button says what it acts on.
    const form = dialog?.querySelector("form");
    if (form && opener.dataset.api) form.dataset.api = opener.dataset.api;
    const label = dialog?.querySelector("[data-label]");
    if (label && opener.dataset.label) label.textContent = opener.dataset.label;
    form?.reset();
    form?.querySelector(".error")?.remove();
    dialog?.showModal();
  }
  const closer = event.target.closest("[data-close]");
  if (closer) closer.closest("dialog")?.close();
});

// A select that picks where its form sends (a namespace, say).
for (const select of document.querySelectorAll("select[data-api-prefix]")) {
  const aim = () =>
    (select.form.dataset.api =
      select.dataset.apiPrefix + select.value + (select.dataset.apiSuffix || ""));
  select.addEventListener("change", aim);
  aim();
}

// Search as you type: the list is fetched again, as HTML, and swapped in.
const search = document.querySelector("input[data-filter]");
if (search) {
  let timer;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const url = new URL(window.location.href);
      url.searchParams.set("q", search.value);
      url.searchParams.delete("page");
      const response = await fetch(url + "&fragment=1", { credentials: "same-origin" });
      if (response.ok) {
        document.getElementById(search.dataset.filter).outerHTML = await response.text();
        history.replaceState(null, "", url);
      }
    }, 200);
  });
}

// Pages that watch the cluster refresh their live parts every few seconds.
const live = document.querySelector("[data-refresh]");
if (live) {
  setInterval(async () => {
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById(live.id);
    if (fresh) live.innerHTML = fresh.innerHTML;
  }, Number(live.dataset.refresh) * 1000);
}
