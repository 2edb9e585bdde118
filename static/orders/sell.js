/* Orders: the sale on the tablet.
 *
 * - "Rest" buttons fill a tender's amount with what is left to pay (total minus the other tenders).
 * - Shows what is left to pay and the change due for cash as the associate types.
 * - After every swap of the cart, the scan field gets the focus back (a hand scanner types into it),
 *   and is emptied if it still holds what it held when the request left. Whatever was typed or
 *   scanned while the request was in flight, or before the swap settled, is kept.
 * No inline scripts (CSP): everything hangs off data- attributes.
 */
(function () {
  "use strict";

  function cents(value) {
    var number = parseFloat(String(value || "").replace(",", "."));
    return isFinite(number) ? Math.round(number * 100) : 0;
  }

  function money(c) {
    return (c / 100).toFixed(2);
  }

  function due() {
    var total = document.querySelector("[data-due]");
    return total ? cents(total.getAttribute("data-due")) : 0;
  }

  function paidExcept(form, name) {
    var sum = 0;
    form.querySelectorAll("[data-tender-amount]").forEach(function (input) {
      if (input.name !== name) {
        sum += cents(input.value);
      }
    });
    return sum;
  }

  function refresh(form) {
    if (!form) {
      return;
    }
    var left = due() - paidExcept(form, "");
    var leftNote = form.querySelector("[data-left-to-pay]");
    if (leftNote) {
      leftNote.textContent = left > 0 ? "Left to pay: " + money(left) : left < 0 ? "Tenders exceed the total by " + money(-left) : "";
    }
    var cash = form.querySelector("[name=cash_amount]");
    var tendered = form.querySelector("[data-cash-tendered]");
    var change = form.querySelector("[data-change-due]");
    if (cash && tendered && change) {
      var diff = cents(tendered.value) - cents(cash.value);
      change.textContent = tendered.value && cash.value && diff >= 0 ? "Change due: " + money(diff) : "";
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-fill]") : null;
    if (!button) {
      return;
    }
    var form = button.closest("form");
    var input = form && form.querySelector("[name=" + button.getAttribute("data-fill") + "]");
    if (input) {
      var rest = due() - paidExcept(form, input.name);
      input.value = rest > 0 ? money(rest) : "";
      refresh(form);
      input.focus();
    }
  });

  document.addEventListener("input", function (event) {
    var form = event.target.closest ? event.target.closest("[data-sell-pay]") : null;
    if (form) {
      refresh(form);
    }
  });

  function isCart(event) {
    var target = event.detail && event.detail.target;
    return Boolean(target && target.id === "sale-lines");
  }

  // What the scan field held when the last request for the cart left. htmx fires afterSettle once
  // per swapped element (the cart, and the out-of-band checkout and results), so it is not reset.
  var sentValue = null;

  document.addEventListener("htmx:beforeRequest", function (event) {
    var scan = document.getElementById("sell-code");
    if (scan && isCart(event)) {
      sentValue = scan.value;
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    if (isCart(event)) {
      var scan = document.getElementById("sell-code");
      var form = document.querySelector("[data-sell-pay]");
      refresh(form);
      var active = document.activeElement;
      var typing = active && active.closest && active.closest(".sell-side, .sell-discount, .sell-address");
      if (scan && !typing) {
        if (scan.value === sentValue) {
          scan.value = "";
        }
        scan.focus();
      }
    }
  });
})();
