// The console works without this script; it adds copy buttons and keeps a
// running sync's progress up to date.
(function () {
  "use strict";
  document.addEventListener("click", function (e) {
    var b = e.target.closest("button.copy");
    if (!b) return;
    var el = document.getElementById(b.getAttribute("data-copy"));
    if (!el || !navigator.clipboard) return;
    navigator.clipboard.writeText(el.textContent.trim()).then(function () {
      var t = b.textContent;
      b.textContent = "Copied";
      setTimeout(function () { b.textContent = t; }, 1200);
    });
  });
  var live = document.getElementById("live");
  if (!live) return;
  var wasRunning = live.getAttribute("data-running") === "1";
  function refresh() {
    fetch(live.getAttribute("data-live"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var running = html.indexOf("state running") >= 0;
        live.innerHTML = html;
        // A run that just ended: the whole page (runs, charts) changes.
        if (wasRunning && !running) { location.reload(); return; }
        wasRunning = running;
        setTimeout(refresh, running ? 2000 : 5000);
      })
      .catch(function () { setTimeout(refresh, 10000); });
  }
  setTimeout(refresh, wasRunning ? 2000 : 5000);
})();
