// Follows a running import's progress (templates/import_job.tmpl): polls the
// job's status and reloads the page once the job has finished. Without
// JavaScript, the page's <noscript> refresh does the same, less smoothly.
(function () {
  "use strict";
  var box = document.getElementById("import-running");
  if (!box) {
    return;
  }
  var url = box.getAttribute("data-status-url");
  var bar = document.getElementById("import-progress");
  var done = document.getElementById("import-done");
  var total = document.getElementById("import-total");
  var percent = document.getElementById("import-percent");
  var failures = 0;

  function show(s) {
    bar.max = s.total || 1;
    bar.value = s.done;
    done.textContent = String(s.done);
    total.textContent = String(s.total);
    percent.textContent = String(s.total ? Math.floor((s.done * 100) / s.total) : 0);
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) {
          throw new Error("status " + r.status);
        }
        return r.json();
      })
      .then(function (s) {
        failures = 0;
        show(s);
        if (!s.running) {
          window.location.reload();
          return;
        }
        window.setTimeout(poll, 500);
      })
      .catch(function () {
        // Signed out, or the network is gone: the page itself will say.
        failures++;
        if (failures >= 3) {
          window.location.reload();
          return;
        }
        window.setTimeout(poll, 2000);
      });
  }

  window.setTimeout(poll, 300);
})();
