// The upload form refuses a file over the upload limit before sending it (the
// server refuses it too, as it arrives).
(function () {
  "use strict";
  document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
    input.addEventListener("change", function () {
      var limit = Number(input.dataset.maxBytes);
      var tooLarge = Array.prototype.some.call(input.files || [], function (file) {
        return file.size > limit;
      });
      input.setCustomValidity(tooLarge ? input.dataset.tooLarge : "");
      input.reportValidity();
    });
  });
})();

// Live progress of a mail import: polls the status endpoint until the import
// has finished. Without JavaScript the page offers a reload link instead.
(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box || box.dataset.finished === "true") {
    return;
  }
  var url = box.dataset.statusUrl;

  function show(name, value) {
    box.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) {
      if (el.tagName === "PROGRESS") {
        el.value = value === null ? 0 : value;
        el.textContent = (value === null ? 0 : value) + "%";
      } else {
        el.textContent = value === null ? "—" : String(value);
      }
    });
  }

  function update(state) {
    ["status_label", "processed", "total", "imported", "duplicates",
     "failed_to_parse", "failed", "percent", "error"].forEach(function (name) {
      show(name, state[name]);
    });
    box.querySelectorAll('[data-field="error"]').forEach(function (el) {
      el.hidden = !state.error;
    });
    box.querySelectorAll('[data-when="importing"]').forEach(function (el) {
      el.hidden = state.status !== "importing";
    });
    box.querySelectorAll('[data-when="running"]').forEach(function (el) {
      el.hidden = state.finished;
    });
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (state) {
        update(state);
        if (state.finished) {
          // The summary (errors, the button to run again) comes with the page.
          window.location.reload();
        } else {
          window.setTimeout(poll, 2000);
        }
      })
      .catch(function () {
        window.setTimeout(poll, 10000);
      });
  }

  window.setTimeout(poll, 1000);
})();
