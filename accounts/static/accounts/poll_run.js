// "Fetch new mail" progress: ask the status endpoint every two seconds until
// the poll is done, then show its result. Without script, the reload link does.
(function () {
  "use strict";
  var box = document.getElementById("poll-run");
  if (!box || box.getAttribute("data-done") === "1") return;
  var url = box.getAttribute("data-status-url");
  var badge = document.getElementById("poll-run-status");
  var sentence = document.getElementById("poll-run-sentence");
  var reload = document.getElementById("poll-run-reload");

  function check() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (data) {
        sentence.textContent = data.sentence;
        if (data.done) {
          badge.textContent = data.status_label;
          badge.className = "badge " + ({ ok: "ok", failed: "bad", skipped: "warn" }[data.status] || "");
          if (reload) reload.hidden = true;
          box.setAttribute("data-done", "1");
        } else {
          window.setTimeout(check, 2000);
        }
      })
      .catch(function () {
        window.setTimeout(check, 5000);
      });
  }
  window.setTimeout(check, 1000);
})();
