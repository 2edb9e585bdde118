/* Transfers: scanning screens. After each scan (htmx request from a [data-scan-form]) the field is
 * cleared and focused again, so a hand scanner can fire the next code straight away. No inline JS. */
(function () {
  "use strict";

  function refocus(form) {
    var input = form.querySelector("input[name=code]");
    if (input) {
      input.value = "";
      input.focus();
    }
  }

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target.closest ? event.target.closest("form") : null;
    if (form && form.hasAttribute("data-scan-form")) {
      refocus(form);
    } else {
      var scan = document.querySelector("form[data-scan-form]");
      if (scan) {
        refocus(scan);
      }
    }
  });
})();
