// Goes on to the provider's sign-in page. A form may only post to this site
// (the page policy's form-action), so the step to the provider is a plain
// navigation; the link on the page does the same without script.
(function () {
  "use strict";
  var link = document.getElementById("signin-continue");
  if (link) {
    window.location.assign(link.href);
  }
})();
