// The console works without this script; it adds copy buttons and keeps a
// running sync's progress up to date.
(function () {
  "use strict";
  document.documentElement.setAttribute("data-script", "on");
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
  // key names the running run and the last finished one: when it changes
  // and nothing runs, the runs and charts below changed too.
  function key(root) {
    var k = root.querySelector("#live-key");
    return k ? k.getAttribute("data-key") : "";
  }
  var shown = key(live);
  function refresh() {
    fetch(live.getAttribute("data-live"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var next = document.createElement("div");
        next.innerHTML = html;
        var k = key(next), running = next.querySelector(".state.running") !== null;
        if (k !== shown && !running) { location.reload(); return; }
        shown = k;
        live.innerHTML = html;
        setTimeout(refresh, running ? 1500 : 3000);
      })
      .catch(function () { setTimeout(refresh, 10000); });
  }
  setTimeout(refresh, live.getAttribute("data-running") === "1" ? 1500 : 3000);
})();
