/* Inventory: scanning on the tablet. No inline script anywhere (CSP script-src 'self').
 *
 * - A hand scanner acts as a keyboard: it types the code and Enter. Fields marked [data-scan-input]
 *   take it; when the scan lands while nothing editable has focus, the keys are steered into the
 *   page's first scan field, so scanning works without tapping the field first.
 * - Camera: a [data-camera-for="<input id>"] button opens #camera-dialog and reads a barcode with the
 *   vendored html5-qrcode (loaded on first use; it uses the native BarcodeDetector where there is
 *   one), or the native BarcodeDetector alone if the library cannot load. The code fills the input;
 *   [data-scan-submit] then submits its form, [data-scan-next="<id>"] moves on to that field.
 * - Forms marked [data-scan-form] (stocktake): the field is emptied as each scan is taken and the
 *   scans are sent one at a time (htmx.ajax into [data-target]); an empty scan is not sent.
 * - [data-flip-sign="<input id>"] turns 3 into -3 and back (tablet keypads often lack a minus).
 * - Enter in a [data-scan-next] field moves to that field instead of submitting.
 */
(function () {
  "use strict";

  var FORMATS = ["EAN_13", "EAN_8", "UPC_A", "UPC_E", "CODE_128", "CODE_39", "ITF", "QR_CODE"];
  var NATIVE_FORMATS = ["ean_13", "ean_8", "upc_a", "upc_e", "code_128", "code_39", "itf", "qr_code"];
  var libraryPromise = null;
  var active = null; // {stop: function}

  function scanInputs() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-scan-input]"));
  }

  function isEditable(element) {
    if (!element || element === document.body) {
      return false;
    }
    var tag = element.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || element.isContentEditable;
  }

  // --- Hand scanner: steer stray keystrokes into the scan field -------------------------------
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (isEditable(document.activeElement) || (document.querySelector("dialog[open]") !== null)) {
      return;
    }
    if (event.key.length !== 1 || !/[0-9A-Za-z\-_.]/.test(event.key)) {
      return;
    }
    var input = scanInputs()[0];
    if (!input) {
      return;
    }
    event.preventDefault();
    input.focus();
    input.value = input.value + event.key;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  });

  // A scanner's Enter in a field that is not the last one (the adjustment's SKU) moves on
  // instead of submitting a half-filled form.
  document.addEventListener("keydown", function (event) {
    var field = event.target;
    if (event.key !== "Enter" || !(field instanceof HTMLInputElement) || !field.hasAttribute("data-scan-next")) {
      return;
    }
    var next = document.getElementById(field.getAttribute("data-scan-next"));
    if (next) {
      event.preventDefault();
      next.focus();
    }
  });

  // --- Found a code: fill the field and move on ----------------------------------------------
  function deliver(input, code) {
    input.value = code;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    var next = input.getAttribute("data-scan-next");
    if (input.hasAttribute("data-scan-submit") && input.form) {
      input.form.requestSubmit();
    } else if (next && document.getElementById(next)) {
      document.getElementById(next).focus();
    } else {
      input.focus();
    }
  }

  // --- Camera --------------------------------------------------------------------------------
  function cameraAvailable() {
    return !!(window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  }

  function loadLibrary(src) {
    if (window.Html5Qrcode) {
      return Promise.resolve(window.Html5Qrcode);
    }
    if (!libraryPromise) {
      libraryPromise = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = src;
        script.async = true;
        script.onload = function () {
          var lib = window.Html5Qrcode || (window.__Html5QrcodeLibrary__ && window.__Html5QrcodeLibrary__.Html5Qrcode);
          if (lib) {
            resolve(lib);
          } else {
            reject(new Error("html5-qrcode did not load"));
          }
        };
        script.onerror = function () {
          libraryPromise = null;
          reject(new Error("html5-qrcode did not load"));
        };
        document.head.appendChild(script);
      });
    }
    return libraryPromise;
  }

  function startLibrary(Html5Qrcode, view, onCode) {
    var lib = window.__Html5QrcodeLibrary__ || {};
    var known = lib.Html5QrcodeSupportedFormats || window.Html5QrcodeSupportedFormats || {};
    var formats = FORMATS.map(function (name) {
      return known[name];
    }).filter(function (value) {
      return value !== undefined;
    });
    var reader = new Html5Qrcode(view.id, {
      verbose: false,
      formatsToSupport: formats.length ? formats : undefined,
      experimentalFeatures: { useBarCodeDetectorIfSupported: true },
    });
    var stopped = false;
    var stop = function () {
      if (stopped) {
        return;
      }
      stopped = true;
      reader.stop().then(function () {
        reader.clear();
      }).catch(function () {
        /* already stopped */
      });
    };
    return reader
      .start({ facingMode: "environment" }, { fps: 10, qrbox: { width: 300, height: 150 } }, function (text) {
        onCode(text);
      })
      .then(function () {
        return { stop: stop };
      });
  }

  function startNative(view, onCode) {
    if (!("BarcodeDetector" in window)) {
      return Promise.reject(new Error("no barcode reader"));
    }
    var detector = new window.BarcodeDetector({ formats: NATIVE_FORMATS });
    return navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
      var video = document.createElement("video");
      video.setAttribute("playsinline", "");
      video.muted = true;
      video.srcObject = stream;
      view.innerHTML = "";
      view.appendChild(video);
      var timer = null;
      var stopped = false;
      var stop = function () {
        stopped = true;
        window.clearTimeout(timer);
        stream.getTracks().forEach(function (track) {
          track.stop();
        });
        view.innerHTML = "";
      };
      var tick = function () {
        if (stopped) {
          return;
        }
        detector
          .detect(video)
          .then(function (codes) {
            if (codes.length && codes[0].rawValue) {
              onCode(codes[0].rawValue);
            } else {
              timer = window.setTimeout(tick, 150);
            }
          })
          .catch(function () {
            timer = window.setTimeout(tick, 300);
          });
      };
      return video.play().then(function () {
        tick();
        return { stop: stop };
      });
    });
  }

  function openCamera(input) {
    var dialog = document.getElementById("camera-dialog");
    var view = document.getElementById("camera-view");
    if (!dialog || !view) {
      return;
    }
    var status = dialog.querySelector("[data-camera-status]");
    var say = function (text) {
      if (status) {
        status.textContent = text;
      }
    };
    var done = false;
    var onCode = function (code) {
      if (done) {
        return;
      }
      done = true;
      closeCamera();
      deliver(input, String(code).trim());
    };
    say("Starting the camera…");
    dialog.showModal();
    loadLibrary(dialog.getAttribute("data-qrcode-src"))
      .then(function (Html5Qrcode) {
        return startLibrary(Html5Qrcode, view, onCode);
      })
      .catch(function () {
        return startNative(view, onCode);
      })
      .then(function (handle) {
        if (!dialog.open) {
          handle.stop();
          return;
        }
        active = handle;
        say("Hold the barcode inside the frame.");
      })
      .catch(function () {
        say("The camera cannot read barcodes here. Type the code or use the hand scanner.");
      });
  }

  function closeCamera() {
    if (active) {
      active.stop();
      active = null;
    }
    var dialog = document.getElementById("camera-dialog");
    if (dialog && dialog.open) {
      dialog.close();
    }
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) {
      return;
    }
    var opener = target.closest("[data-camera-for]");
    if (opener) {
      var input = document.getElementById(opener.getAttribute("data-camera-for"));
      if (input) {
        openCamera(input);
      }
      return;
    }
    if (target.closest("[data-camera-close]")) {
      closeCamera();
      return;
    }
    var flip = target.closest("[data-flip-sign]");
    if (flip) {
      var field = document.getElementById(flip.getAttribute("data-flip-sign"));
      if (field) {
        var value = field.value.trim();
        field.value = value.charAt(0) === "-" ? value.slice(1) : "-" + value.replace(/^\+/, "");
        field.focus();
      }
    }
  });

  document.addEventListener("close", function (event) {
    if (event.target && event.target.id === "camera-dialog" && active) {
      active.stop();
      active = null;
    }
  }, true);

  function showCameraButtons(root) {
    if (!cameraAvailable()) {
      return;
    }
    (root || document).querySelectorAll("[data-camera-for]").forEach(function (button) {
      button.hidden = false;
    });
  }

  // --- Scan forms (stocktake) ----------------------------------------------------------------
  // Each scan is taken off the field at once (the scanner may already be typing the next one) and
  // queued; the queue sends one request at a time, so each reads the key the previous answer left.
  var scanChain = Promise.resolve();

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-scan-form") || !window.htmx) {
      return;
    }
    event.preventDefault();
    var input = form.querySelector("[data-scan-input]");
    var code = input ? input.value.trim() : "";
    if (input) {
      input.value = "";
      input.focus();
    }
    if (!code) {
      return; // nothing scanned (a double tap of the button): nothing to send
    }
    scanChain = scanChain
      .then(function () {
        return htmx.ajax("POST", form.getAttribute("action"), {
          source: form,
          target: form.getAttribute("data-target"),
          swap: "outerHTML",
          values: { code: code },
        });
      })
      .catch(function () {
        /* reported by omni.js (toast); the next scan still goes */
      });
  });

  document.addEventListener("htmx:afterSwap", function () {
    showCameraButtons(document);
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      showCameraButtons(document);
    });
  } else {
    showCameraButtons(document);
  }
})();
