// The monitor's page: live pictures, local times, review marks and the clip viewer. No framework, no build.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;

function post(url, body) {
  return fetch(url, {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                     body: JSON.stringify(body), credentials: "same-origin"});
}

function localTimes(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) { t.textContent = d.toLocaleString(); t.title = t.getAttribute("datetime"); }
  }
  for (const el of root.querySelectorAll("[data-utc]")) {
    const d = new Date(el.dataset.utc);
    if (isNaN(d)) continue;
    const hour = d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
    el.textContent = el.tagName === "title" ? `${hour}: ${el.textContent}` : hour;
  }
}

// Cameras: each picture is asked for again once the last one has arrived and the period has passed, so a
// slow phone asks for less; nothing is asked for while the page is hidden.
function liveCameras() {
  const grid = document.querySelector(".cameras");
  if (!grid) return;
  const period = Number(grid.dataset.periodMs) || 250;
  for (const img of grid.querySelectorAll("img.live")) {
    let timer = null;
    const next = () => {
      timer = null;
      if (document.hidden) return;
      img.src = `${img.dataset.src}?t=${Date.now()}`;
    };
    const again = (delay) => { if (timer === null) timer = setTimeout(next, delay); };
    img.addEventListener("load", () => again(period));
    img.addEventListener("error", () => again(2000));  // no frame yet, or the camera is away
    document.addEventListener("visibilitychange", () => { if (!document.hidden) again(0); });
    next();
  }
  const refresh = async () => {
    try {
      const response = await fetch("/status", {headers: {Accept: "application/json"}});
      if (response.ok) showStatus(await response.json());
    } catch (e) { /* the monitor is restarting: try again at the next tick */ }
  };
  setInterval(refresh, 2000);
}

function showStatus(status) {
  for (const section of document.querySelectorAll("section.camera")) {
    const cam = (status.cameras || {})[section.dataset.camera];
    if (!cam) continue;
    const state = section.querySelector('[data-field="state"]');
    state.textContent = cam.state;
    state.className = `state state-${cam.state}`;
    section.querySelector('[data-field="fps"]').textContent = `${(cam.fps || 0).toFixed(1)} fps`;
    const since = section.querySelector('[data-field="since"]');
    since.textContent = "";
    if (cam.offline_since) {
      since.append("offline since ");
      const t = document.createElement("time");
      t.setAttribute("datetime", cam.offline_since);
      since.append(t);
      localTimes(since);
    }
    const counts = section.querySelector('[data-field="counts"]');
    counts.textContent = "";
    for (const [name, c] of Object.entries(cam.counts || {})) {
      const span = document.createElement("span");
      span.textContent = "now" in c ? `${name}: ${c.now} now, ${c.entered} in` : `${name}: in ${c.in}, out ${c.out}`;
      counts.append(span);
    }
  }
}

function showUnreviewed(n) {
  const badge = document.getElementById("unreviewed-count");
  if (badge) badge.textContent = String(n);
}

function markRow(row, reviewed) {
  row.classList.toggle("reviewed", reviewed);
  const button = row.querySelector("button.review");
  button.setAttribute("aria-pressed", String(reviewed));
  button.textContent = reviewed ? "Reviewed" : "Mark reviewed";
}

function events() {
  const list = document.getElementById("events");
  if (!list) return;
  const form = document.getElementById("filters");
  form.elements.tz.value = String(new Date().getTimezoneOffset());
  list.addEventListener("click", async (e) => {
    const review = e.target.closest("button.review");
    const open = e.target.closest("button.open");
    if (review) {
      const row = review.closest("li.event");
      const reviewed = review.getAttribute("aria-pressed") !== "true";
      const response = await post("/api/review", {ids: [Number(row.dataset.id)], reviewed});
      if (response.ok) { markRow(row, reviewed); showUnreviewed((await response.json()).unreviewed); }
    } else if (open) {
      showEvidence(open.dataset.clip, open.dataset.snapshot);
    }
  });
  const all = document.getElementById("review-page");
  if (all) all.addEventListener("click", async () => {
    const ids = all.dataset.ids.split(",").map(Number);
    const response = await post("/api/review", {ids, reviewed: true});
    if (response.ok) {
      for (const row of list.querySelectorAll("li.event")) markRow(row, true);
      showUnreviewed((await response.json()).unreviewed);
    }
  });
  const viewer = document.getElementById("viewer");
  viewer.addEventListener("close", () => { const v = document.getElementById("viewer-video"); v.pause(); v.removeAttribute("src"); v.load(); });
}

function showEvidence(clip, snapshot) {
  const viewer = document.getElementById("viewer");
  const video = document.getElementById("viewer-video");
  const image = document.getElementById("viewer-image");
  video.hidden = !clip;
  image.hidden = Boolean(clip);
  if (clip) {
    video.src = clip;
    video.play().catch(() => { /* the user presses play */ });
  } else {
    image.src = snapshot;
  }
  viewer.showModal();
}

function logout() {
  const button = document.getElementById("logout");
  if (button) button.addEventListener("click", async () => { await post("/logout", {}); location.href = "/login"; });
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  liveCameras();
  events();
  logout();
});
