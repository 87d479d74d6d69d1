// The run page's live parts and the app-wide htmx error handling. A file of its
// own, since the Content-Security-Policy allows no inline script. Every page
// still reads without it: durations show their server value, the log shows its
// lines, a failed form posts and shows its error page.
(function () {
  "use strict";

  // Durations of running runs tick from the container's start (same format as the server).
  function formatDuration(seconds) {
    if (seconds < 60) return seconds.toFixed(1) + "s";
    var s = Math.floor(seconds);
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    var m = Math.floor(s / 60) % 60;
    return Math.floor(s / 3600) + "h " + (m < 10 ? "0" : "") + m + "m";
  }
  function tick() {
    document.querySelectorAll("time.ticking[data-since]").forEach(function (el) {
      var since = Date.parse(el.getAttribute("data-since"));
      if (!isNaN(since)) el.textContent = formatDuration(Math.max(0, (Date.now() - since) / 1000));
    });
  }
  setInterval(tick, 1000);

  // The log follows its tail while the reader is at the bottom; scrolling up stops that.
  var following = true;
  function log() { return document.getElementById("log"); }
  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 8; }
  function toEnd() { var el = log(); if (el) el.scrollTop = el.scrollHeight; }
  function setFollowing(on) {
    following = on;
    var button = document.querySelector("[data-log=follow]");
    if (button) button.setAttribute("aria-pressed", on ? "true" : "false");
  }
  function applyFilters(root) {
    var el = log();
    if (!el) return;
    var out = document.getElementById("show-out"), err = document.getElementById("show-err");
    el.classList.toggle("hide-out", !!out && !out.checked);
    el.classList.toggle("hide-err", !!err && !err.checked);
    var search = document.getElementById("log-search");
    var needle = search ? search.value.toLowerCase() : "";
    el.classList.toggle("searching", needle !== "");
    (root || el).querySelectorAll(".l").forEach(function (line) {
      line.classList.toggle("hit", needle !== "" && line.textContent.toLowerCase().indexOf(needle) >= 0);
    });
  }

  // A wide chart that scrolls in its own box (the year's heat map) opens at its
  // recent end, on a phone too.
  function scrollToEnd(root) {
    (root || document).querySelectorAll(".scroll-x.at-end").forEach(function (box) { box.scrollLeft = box.scrollWidth; });
  }
  document.addEventListener("DOMContentLoaded", function () { scrollToEnd(); });
  document.addEventListener("htmx:afterSwap", function (event) { scrollToEnd(event.target); });

  document.addEventListener("DOMContentLoaded", function () {
    var el = log();
    if (!el) return;
    toEnd();
    el.addEventListener("scroll", function () { setFollowing(atBottom(el)); });
    applyFilters();
  });
  document.addEventListener("input", function (event) {
    if (event.target.closest("#log-tools")) applyFilters();
  });
  document.addEventListener("change", function (event) {
    if (event.target.closest("#log-tools")) applyFilters();
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-log]");
    if (!button) return;
    var what = button.getAttribute("data-log");
    if (what === "end" || what === "follow") { setFollowing(true); toEnd(); }
    if (what === "first-error") {
      var first = document.querySelector("#log .l.bad");
      if (!first) { button.textContent = "No error line"; return; }
      setFollowing(false);
      document.querySelectorAll("#log .l.focus").forEach(function (l) { l.classList.remove("focus"); });
      first.classList.add("focus");
      first.scrollIntoView({ block: "center" });
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target.id !== "log") return;
    applyFilters();
    if (following) toEnd();
  });
  // The stream's `line` events swap into #log through the SSE extension.
  document.addEventListener("htmx:sseMessage", function (event) {
    if (event.target.id === "log" && following) toEnd();
  });

  // A request that fails shows its error where it was made, instead of nothing.
  document.addEventListener("htmx:responseError", function (event) {
    var elt = event.detail.elt;
    var xhr = event.detail.xhr;
    var message = "The request failed (" + xhr.status + ")";
    var type = xhr.getResponseHeader("Content-Type") || "";
    if (type.indexOf("json") >= 0) {
      try { var body = JSON.parse(xhr.responseText); if (body.detail) message = String(body.detail); } catch (e) { /* keep the status */ }
    } else if (xhr.responseText) {
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var found = doc.querySelector(".error-page .error") || doc.querySelector(".banner.error, main p");
      var text = (found || doc.body).textContent.trim();
      if (text) message = text.slice(0, 500);
    }
    var anchor = elt.closest("form") || elt;
    var note = anchor.previousElementSibling;
    if (!note || !note.classList.contains("request-error")) {
      note = document.createElement("p");
      note.className = "banner error request-error";
      note.setAttribute("role", "alert");
      anchor.parentNode.insertBefore(note, anchor);
    }
    note.textContent = message;
  });
  document.addEventListener("htmx:sendError", function (event) {
    var anchor = event.detail.elt.closest("form") || event.detail.elt;
    var note = document.createElement("p");
    note.className = "banner error request-error";
    note.setAttribute("role", "alert");
    note.textContent = "The server could not be reached; nothing was changed.";
    if (!(anchor.previousElementSibling || {}).classList || !anchor.previousElementSibling.classList.contains("request-error")) {
      anchor.parentNode.insertBefore(note, anchor);
    }
  });
  // A successful request clears the error it left before.
  document.addEventListener("htmx:afterRequest", function (event) {
    if (!event.detail.successful) return;
    var anchor = event.detail.elt.closest("form") || event.detail.elt;
    var note = anchor.previousElementSibling;
    if (note && note.classList.contains("request-error")) note.remove();
  });
})();
