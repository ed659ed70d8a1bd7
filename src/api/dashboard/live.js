// understudy dashboard: keeps the page's #live part current. Written for this project; no
// dependencies. Without JavaScript the page is the same, only not refreshed.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch) return;
  var every = (parseInt(live.getAttribute("data-refresh"), 10) || 2) * 1000;
  var busy = false;
  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(location.pathname + location.search, {
      headers: { "X-Understudy-Fragment": "1" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (r) {
      if (r.status === 200) return r.text();
      throw new Error("status " + r.status);
    }).then(function (html) {
      live.innerHTML = html;
      live.removeAttribute("data-stale");
    }).catch(function () {
      live.setAttribute("data-stale", "1");
    }).then(function () { busy = false; });
  }
  setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
})();
