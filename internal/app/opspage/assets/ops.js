// The operations page's live parts, in plain JavaScript: the health panel
// is fetched again every few seconds, and the alert feed appends each
// alert the server sends (server-sent events). Text is set with
// textContent, never as HTML.
"use strict";

(function () {
  var health = document.getElementById("health");
  var rounds = 0;
  function refreshHealth() {
    fetch("/ops/health", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var next = document.createElement("div");
        next.innerHTML = html;
        // The chart keeps its element, so that it does not blink; it is
        // drawn again every other round.
        var chart = health.querySelector("img.chart");
        var slot = next.querySelector("img.chart");
        if (chart && slot) {
          slot.replaceWith(chart);
          if (++rounds % 2 === 0) { chart.src = "/ops/chart.svg?t=" + Date.now(); }
        }
        health.replaceChildren.apply(health, Array.prototype.slice.call(next.childNodes));
      })
      .catch(function () { /* the next round tries again */ });
  }
  if (health) { setInterval(refreshHealth, 3000); }

  var feed = document.getElementById("alert-feed");
  var state = document.getElementById("feed-state");
  if (!feed || !window.EventSource) { return; }
  function setState(text, ok) {
    state.textContent = text;
    state.className = "badge " + (ok ? "ok" : "warn");
  }
  function cell(row, text, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = text;
    row.appendChild(td);
    return td;
  }
  var es = new EventSource("/ops/alerts");
  es.onopen = function () { setState("live", true); };
  es.onerror = function () { setState("reconnecting", false); };
  es.addEventListener("alert", function (ev) {
    var a = JSON.parse(ev.data);
    var rows = feed.querySelectorAll("tr[data-alert-id]");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute("data-alert-id") === a.id) {
        rows[i].setAttribute("data-live", "1"); // listed already, now seen live too
        return;
      }
    }
    var tr = document.createElement("tr");
    tr.setAttribute("data-alert-id", a.id);
    tr.setAttribute("data-live", "1");
    tr.className = "new";
    tr.setAttribute("data-order", a.order);
    tr.title = a.time + " UTC, event " + a.event_id + (a.previous ? ", was " + a.previous : "");
    cell(tr, a.time.slice(a.time.indexOf(" ") + 1), "time");
    var sev = document.createElement("span");
    sev.className = "sev sev-" + String(a.severity).toLowerCase();
    sev.textContent = a.severity;
    cell(tr, "").appendChild(sev);
    var key = cell(tr, "", "key");
    var sku = document.createElement("span");
    sku.className = "sku";
    sku.textContent = a.sku;
    var loc = document.createElement("span");
    loc.className = "loc";
    loc.textContent = a.location;
    key.appendChild(sku);
    key.appendChild(document.createTextNode(" "));
    key.appendChild(loc);
    cell(tr, a.on_hand + " / " + a.threshold, "num");
    // Newest first: before the first row that is older (data-order is
    // the alert time then the event time, UTC, which compare as text).
    var before = null;
    for (var j = 0; j < feed.rows.length; j++) {
      if ((feed.rows[j].getAttribute("data-order") || "") < a.order) { before = feed.rows[j]; break; }
    }
    feed.insertBefore(tr, before);
    while (feed.rows.length > 100) { feed.deleteRow(feed.rows.length - 1); }
  });
})();
