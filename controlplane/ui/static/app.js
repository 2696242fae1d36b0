// Vigie: the little script the pages use. Every page works without it;
// it only refreshes the dashboard, copies secrets and asks before
// destructive actions.
(function () {
  "use strict";

  // Refresh a region from a fragment URL while its checkbox is checked
  // (the person controls the refresh: RGAA 13.1). Paused in hidden tabs.
  document.querySelectorAll("input[data-refresh]").forEach(function (box) {
    var target = document.getElementById(box.dataset.target);
    var every = (parseInt(box.dataset.every, 10) || 10) * 1000;
    if (!target) { return; }
    function tick() {
      if (!box.checked || document.hidden) { return; }
      fetch(box.dataset.refresh, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.status === 401 && r.headers.get("X-Vigie-Login")) {
            window.location = r.headers.get("X-Vigie-Login");
            return null;
          }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html === null || html === undefined) { return; }
          target.innerHTML = html;
          // The live region lives outside the replaced fragment: only
          // a changed sentence is announced.
          var live = document.getElementById(box.dataset.live);
          var said = target.querySelector("[data-live-text]");
          if (live && said && live.textContent !== said.textContent) { live.textContent = said.textContent; }
        })
        .catch(function () { /* offline for a moment: the next tick retries */ });
    }
    setInterval(tick, every);
  });

  // Copy a one-time secret (token, password) to the clipboard.
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var el = document.getElementById(b.dataset.copy);
      if (!el || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(el.textContent.trim()).then(function () {
        b.textContent = b.dataset.copied || "Copié";
      });
    });
  });

  // Ask before what cannot be undone.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.dataset.confirm)) { e.preventDefault(); }
    });
  });

  // Bring the error summary of a refused form to the reader's attention.
  var errs = document.getElementById("erreurs");
  if (errs) { errs.focus(); }
})();
