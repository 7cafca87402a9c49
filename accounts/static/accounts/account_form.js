// Mail account form: fill in the protocol's standard port as the protocol
// changes (unless the admin typed another one), show the clear-text
// password warning for POP and IMAP without STARTTLS, and for a sign-in
// provider fill in its mail server and hide the password.
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

  var method = form.querySelector("[name=auth_method]");
  var host = form.querySelector("[name=host]");
  if (!method) return;
  var servers = {};
  try {
    servers = JSON.parse(method.getAttribute("data-mail-servers") || "{}");
  } catch (e) {
    servers = {};
  }
  function showFor(name, shown) {
    var row = form.querySelector("[data-field=" + name + "]");
    if (row) row.hidden = !shown;
  }
  function updateMethod(prefill) {
    var oauth2 = method.value && method.value !== "password";
    showFor("password", !oauth2);
    showFor("oauth2_scopes", method.value === "custom");
    var known = servers[method.value] || [];
    if (!prefill || !known.length) return;
    var server = known[0];
    known.forEach(function (candidate) {
      if (candidate.protocol === protocol.value) server = candidate;
    });
    protocol.value = server.protocol;
    previous = server.protocol;
    host.value = server.host;
    port.value = String(server.port);
    updateWarning();
  }
  method.addEventListener("change", function () { updateMethod(true); });
  protocol.addEventListener("change", function () {
    var known = servers[method.value] || [];
    known.forEach(function (candidate) {
      if (candidate.protocol === protocol.value) {
        host.value = candidate.host;
        port.value = String(candidate.port);
      }
    });
  });
  updateMethod(false);
})();
