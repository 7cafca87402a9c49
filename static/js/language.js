// The language menu of the top bar switches as soon as a language is chosen;
// without JavaScript its button does.
(function () {
  "use strict";
  document.querySelectorAll("form.lang-form select").forEach(function (select) {
    select.addEventListener("change", function () {
      select.form.submit();
    });
  });
})();
