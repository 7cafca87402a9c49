// Small conveniences of the reading pages; every page works without them.
(function () {
  "use strict";
  // Buttons that destroy or hide mail ask first.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
  // "Select all" in the trash.
  document.querySelectorAll("input.select-all").forEach(function (box) {
    box.addEventListener("change", function () {
      var form = box.closest("form");
      form.querySelectorAll('input[name="messages"]').forEach(function (item) {
        item.checked = box.checked;
      });
    });
  });
})();
