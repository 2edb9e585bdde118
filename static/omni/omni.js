/* Omni: behaviour shared by every screen. Loaded (deferred) after htmx, before htmx processes the page.
 *
 * - htmx swaps 400/409/422 HTML responses into their target (forms re-render with inline errors)
 *   and reports every other 4xx/5xx, and network failures, in a toast instead of doing nothing.
 * - A server can raise a toast itself: `HX-Trigger: {"omni:toast": {"message": "...", "level": "error"}}`
 *   (omni.http.htmx_toast does this).
 * - `<select data-autosubmit>` submits its form on change (no inline handlers: the CSP forbids them).
 * - When a session expired, an htmx request lands on the sign-in page: reload the whole page there.
 */
(function () {
  "use strict";

  if (!window.htmx) {
    return;
  }

  // 400 (invalid input), 409 (state conflict, e.g. stock ran out) and 422 are answered with the
  // form fragment and its messages: swap them. Other errors are not swapped and raise responseError.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "400|409|422", swap: true, error: false },
    { code: "[45]..", swap: false, error: true },
  ];
  // Pages answer HX-Request with a fragment, so a history restore must ask for the whole page.
  htmx.config.historyRestoreAsHxRequest = false;
  // Shared tablets: do not keep copies of pages (customers, orders) in localStorage.
  htmx.config.historyCacheSize = 0;
  // omni.css styles .htmx-indicator; htmx would otherwise inject an inline <style>.
  htmx.config.includeIndicatorStyles = false;

  // htmx binds content it swaps in only when the swap settles (20 ms later, so that the fade-in can
  // run): a tap or a scan in between did nothing. Bind it as soon as it is in the page; binding again
  // at settle is a no-op for an element htmx already knows.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target instanceof Element && event.target.isConnected) {
      htmx.process(event.target);
    }
  });

  var TOAST_MS = { info: 4000, success: 3000, warning: 6000, error: 8000 };

  function toast(message, level) {
    level = TOAST_MS[level] ? level : "info";
    var container = document.getElementById("toasts");
    if (!container || !message) {
      return;
    }
    var item = document.createElement("div");
    item.className = "toast toast-" + level;
    item.setAttribute("role", level === "error" ? "alert" : "status");
    var text = document.createElement("span");
    text.className = "toast-text";
    text.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", function () {
      item.remove();
    });
    item.appendChild(text);
    item.appendChild(close);
    container.appendChild(item);
    window.setTimeout(function () {
      item.remove();
    }, TOAST_MS[level]);
  }

  // The message a failed response carries: {"message"} JSON from the API error handler, the text
  // of a [role=alert] or <title> in an HTML page, or short plain text.
  function messageFrom(xhr) {
    var type = (xhr.getResponseHeader("Content-Type") || "").toLowerCase();
    var body = typeof xhr.responseText === "string" ? xhr.responseText : "";
    var fallback = "Something went wrong (" + xhr.status + "). Please try again.";
    if (xhr.status === 403) {
      fallback = "You are not allowed to do that here.";
    } else if (xhr.status === 404) {
      fallback = "That was not found. It may have been removed.";
    } else if (xhr.status === 429) {
      fallback = "Too many attempts. Please wait a moment.";
    } else if (xhr.status >= 500) {
      fallback = "The server had a problem (" + xhr.status + "). Your change was not saved.";
    }
    try {
      if (type.indexOf("json") !== -1) {
        var data = JSON.parse(body);
        return data.message || data.detail || fallback;
      }
      if (type.indexOf("html") !== -1) {
        var doc = new DOMParser().parseFromString(body, "text/html");
        var alert = doc.querySelector("[role=alert], .error-message");
        if (alert && alert.textContent.trim()) {
          return alert.textContent.trim();
        }
        return fallback;
      }
      var text = body.trim();
      if (text && text.length <= 300) {
        return text;
      }
    } catch (err) {
      /* unreadable body: fall back */
    }
    return fallback;
  }

  function announcedToast(xhr) {
    var trigger = xhr.getResponseHeader("HX-Trigger") || "";
    return trigger.indexOf("omni:toast") !== -1;
  }

  document.addEventListener("omni:toast", function (event) {
    var detail = event.detail || {};
    toast(detail.message || detail.value, detail.level);
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    // Session expired: the request followed a redirect to the sign-in page.
    var loginPath = document.body.getAttribute("data-login-url") || "/login/";
    var landed = xhr.responseURL ? new URL(xhr.responseURL, window.location.href) : null;
    var asked = (event.detail.pathInfo && event.detail.pathInfo.requestPath) || "";
    if (landed && landed.pathname === loginPath && asked.indexOf(loginPath) !== 0) {
      event.detail.shouldSwap = false;
      window.location.assign(loginPath + "?next=" + encodeURIComponent(window.location.pathname + window.location.search));
      return;
    }
    // An error that is swapped must be an HTML fragment; JSON or text goes to a toast instead.
    if (xhr.status >= 400 && event.detail.shouldSwap) {
      var type = (xhr.getResponseHeader("Content-Type") || "").toLowerCase();
      if (type.indexOf("html") === -1 || !xhr.responseText) {
        event.detail.shouldSwap = false;
        if (!announcedToast(xhr)) {
          toast(messageFrom(xhr), "error");
        }
      }
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (!announcedToast(xhr)) {
      toast(messageFrom(xhr), "error");
    }
  });

  document.addEventListener("htmx:sendError", function () {
    toast("Cannot reach Omni. Check the network; your change was not sent.", "error");
  });

  document.addEventListener("htmx:timeout", function () {
    toast("Omni took too long to answer. Please try again.", "warning");
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) {
      target.form.requestSubmit();
    }
  });

  // The top bar's links scroll sideways when there are more than fit: show the edge fade and keep
  // the current section in view.
  function fitNav() {
    var nav = document.querySelector(".topbar .nav");
    if (!nav) {
      return;
    }
    nav.classList.toggle("is-overflowing", nav.scrollWidth > nav.clientWidth + 1);
  }
  document.addEventListener("DOMContentLoaded", function () {
    fitNav();
    var active = document.querySelector(".topbar .nav .is-active");
    if (active && active.scrollIntoView) {
      active.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  });
  window.addEventListener("resize", fitNav);

  // Mark the page as scripted so no-JS fallbacks (e.g. the switcher's button) can hide.
  document.documentElement.classList.add("js");

  window.Omni = { toast: toast };
})();
