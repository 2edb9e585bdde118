/* Customers: the customer picker and optional fragments. Loaded by customer pages and by the
 * picker fragment itself (so a page that embeds the picker needs nothing else); loading it twice
 * is harmless. No inline handlers anywhere: the CSP forbids them.
 *
 * Picker contract (see templates/customers/picker.html): choosing a customer sets the value of the
 * element whose id is the picker's data-picker-target and dispatches a bubbling
 * `customer:selected` event on it (detail {id, name, phone, email}); "Change" clears it and
 * dispatches `customer:cleared`.
 *
 * Optional fragments: an element with data-optional-fragment (e.g. the orders history slot on the
 * customer page) shows nothing when its hx-get fails (404 until the orders app serves it) instead
 * of raising omni.js's error toast.
 */
(function () {
  "use strict";

  if (window.OmniCustomers) {
    return;
  }

  function pickerOf(element) {
    return element && element.closest ? element.closest("[data-picker-target]") : null;
  }

  function dataOf(element) {
    return {
      id: element.getAttribute("data-pick-customer") || element.getAttribute("data-picked-customer"),
      name: element.getAttribute("data-name") || "",
      phone: element.getAttribute("data-phone") || "",
      email: element.getAttribute("data-email") || "",
    };
  }

  function targetOf(picker) {
    return document.getElementById(picker.getAttribute("data-picker-target"));
  }

  function select(picker, customer) {
    var target = targetOf(picker);
    if (target) {
      if ("value" in target) {
        target.value = customer.id;
      }
      target.dispatchEvent(new CustomEvent("customer:selected", { bubbles: true, detail: customer }));
    }
    var label = customer.name + (customer.phone ? " · " + customer.phone : "");
    picker.querySelector("[data-picker-chosen-name]").textContent = label;
    picker.querySelector("[data-picker-chosen]").hidden = false;
    picker.querySelector("[data-picker-body]").hidden = true;
    picker.setAttribute("data-picked-id", customer.id);
  }

  function clear(picker) {
    var target = targetOf(picker);
    if (target) {
      if ("value" in target) {
        target.value = "";
      }
      target.dispatchEvent(new CustomEvent("customer:cleared", { bubbles: true }));
    }
    picker.querySelector("[data-picker-chosen]").hidden = true;
    picker.querySelector("[data-picker-body]").hidden = false;
    picker.removeAttribute("data-picked-id");
    var search = picker.querySelector("input[type=search]");
    if (search) {
      search.focus();
    }
  }

  document.addEventListener("click", function (event) {
    var choice = event.target.closest ? event.target.closest("[data-pick-customer]") : null;
    if (choice && pickerOf(choice)) {
      event.preventDefault();
      select(pickerOf(choice), dataOf(choice));
      return;
    }
    var change = event.target.closest ? event.target.closest("[data-picker-clear]") : null;
    if (change && pickerOf(change)) {
      event.preventDefault();
      clear(pickerOf(change));
    }
  });

  // Enter inside the picker never submits the surrounding form; in "New customer" it adds them.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.target.tagName !== "INPUT" || !pickerOf(event.target)) {
      return;
    }
    event.preventDefault();
    var create = event.target.closest(".picker-create");
    var add = create ? create.querySelector("[data-picker-add]") : null;
    if (add) {
      add.click();
    }
  });

  // A customer created inline comes back as [data-picked-customer]: choose them.
  document.addEventListener("htmx:load", function (event) {
    var root = event.detail && event.detail.elt;
    if (!root || !root.querySelector) {
      return;
    }
    var picked = root.matches("[data-picked-customer]") ? root : root.querySelector("[data-picked-customer]");
    if (picked && pickerOf(picked)) {
      select(pickerOf(picked), dataOf(picked));
    }
  });

  // Capture phase on window runs before omni.js's document listeners: stop the error toast there.
  function quietOptional(event) {
    var slot = event.target && event.target.closest ? event.target.closest("[data-optional-fragment]") : null;
    if (slot) {
      event.stopPropagation();
      slot.hidden = true;
    }
  }
  window.addEventListener("htmx:responseError", quietOptional, true);
  window.addEventListener("htmx:sendError", quietOptional, true);

  window.OmniCustomers = { select: select, clear: clear };
})();
