/* Transfers: scanning screens (<form data-scan-form data-target="#panel">).
 *
 * A hand scanner types a code and Enter, and may fire the next code before the answer to the last
 * one arrives. Each code is taken from the field at once (the field is emptied for the next one)
 * and sent in order, one request after the other, through htmx (so the answer replaces the panel
 * and errors show as usual). Without JavaScript the form still posts and the page reloads.
 * After each answer the field has the focus again. No inline JS (CSP).
 */
(function () {
  "use strict";

  if (!window.htmx) {
    return;
  }

  var queue = Promise.resolve();

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || !form.hasAttribute || !form.hasAttribute("data-scan-form")) {
      return;
    }
    event.preventDefault();
    var input = form.querySelector("input[name=code]");
    var code = input ? input.value.trim() : "";
    if (input) {
      input.value = "";
      input.focus();
    }
    if (!code) {
      return;
    }
    queue = queue
      .then(function () {
        return window.htmx.ajax("POST", form.getAttribute("action"), {
          source: form,
          target: form.getAttribute("data-target"),
          swap: "outerHTML",
          values: { code: code },
        });
      })
      .catch(function () {
        /* omni.js already told the user; keep the queue going */
      });
  });

  document.addEventListener("htmx:afterSettle", function () {
    var input = document.querySelector("form[data-scan-form] input[name=code]");
    if (input && document.activeElement !== input && !document.querySelector("dialog[open]")) {
      input.focus();
    }
  });
})();
