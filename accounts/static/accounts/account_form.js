// Mail account form: fill in the protocol's standard port as the protocol
// changes (unless the admin typed another one), and show the clear-text
// password warning for POP and IMAP without STARTTLS.
(function () {
  "use strict";
  var form = document.getElementById("mail-account-form");
  if (!form) return;
  var protocol = form.querySelector("[name=protocol]");
  var port = form.querySelector("[name=port]");
  var starttls = form.querySelector("[name=starttls]");
  var warning = document.getElementById("plain-text-warning");
  var defaults = {};
  (protocol.getAttribute("data-default-ports") || "").split(",").forEach(function (pair) {
    var parts = pair.split(":");
    if (parts.length === 2) defaults[parts[0]] = parts[1];
  });
  var previous = protocol.value;

  function updateWarning() {
    if (!warning) return;
    var plain = (protocol.value === "pop" || protocol.value === "imap") && !starttls.checked;
    warning.hidden = !plain;
    starttls.disabled = protocol.value === "pops" || protocol.value === "imaps";
    if (starttls.disabled) starttls.checked = false;
  }

  protocol.addEventListener("change", function () {
    var standard = Object.values(defaults);
    if (!port.value || port.value === defaults[previous] || standard.indexOf(port.value) !== -1) {
      port.value = defaults[protocol.value] || "";
    }
    previous = protocol.value;
    updateWarning();
  });
  starttls.addEventListener("change", updateWarning);
  if (!port.value && defaults[protocol.value]) port.value = defaults[protocol.value];
  updateWarning();
})();
