/* Omni live screens: a fragment that comes in after a change it does not show catches up by itself.
 *
 * An element with `hx-trigger="sse:<name>"` re-fetches itself when the page's live connection
 * (omni/live_stream.py) sends a message of that name. htmx starts listening when it processes the
 * element, and for a fragment that is swapped in, that happens when the swap settles: after the server
 * rendered it and after it is on screen. A message that arrives in between finds no listener, so the
 * fragment would show the old figure until the next change.
 *
 * So each live fragment carries `data-live-since`, the id of the latest live event it reflects (the
 * server reads it before the data). This script notes the highest event id the page's connections
 * have delivered for each event name. When htmx binds an element whose fragment is older than a
 * message already delivered for one of its names, the script fires that trigger once, and the element
 * re-fetches itself. The new fragment reflects at least that id, so the re-fetch cannot loop.
 *
 * A name is noted from the moment an element that listens for it is bound. Every live page binds all
 * of its connection's names when it loads, before the connection opens.
 */
(function () {
  "use strict";

  if (!window.htmx) {
    return;
  }

  var latest = {}; // event name -> highest event id delivered for it on this page (0: none yet)
  var connections = []; // [{source: EventSource, noted: {name: true}}]

  function note(event) {
    var id = parseInt(event.lastEventId, 10) || 0;
    if (id > (latest[event.type] || 0)) {
      latest[event.type] = id;
    }
  }

  function follow(connection, name) {
    if (!connection.noted[name]) {
      connection.noted[name] = true;
      connection.source.addEventListener(name, note);
    }
  }

  // "sse:stock-1, sse:stock-2" -> ["stock-1", "stock-2"]; "sse:stock-location-3 delay:300ms" -> ["stock-location-3"]
  function liveNames(element) {
    var names = [];
    (element.getAttribute("hx-trigger") || "").split(",").forEach(function (spec) {
      var event = spec.trim().split(/\s+/)[0];
      if (event.indexOf("sse:") === 0) {
        names.push(event.slice(4));
      }
    });
    return names;
  }

  // The sse extension creates a new EventSource when one closes for good: note on each, from its
  // opening (before it delivers anything), every name the page listens for.
  document.addEventListener("htmx:sseOpen", function (event) {
    var source = event.detail.source;
    var connection = null;
    connections = connections.filter(function (known) {
      if (known.source === source) {
        connection = known;
      }
      return known.source.readyState !== EventSource.CLOSED;
    });
    if (!connection) {
      connection = { source: source, noted: {} };
      connections.push(connection);
    }
    Object.keys(latest).forEach(function (name) {
      follow(connection, name);
    });
  });

  // htmx has processed this element; the sse extension binds its listener next, in the same task, so
  // every message delivered before it is noted here and every later one reaches the listener.
  document.addEventListener("htmx:afterProcessNode", function (event) {
    var element = event.target;
    if (!(element instanceof Element) || !element.hasAttribute("hx-trigger")) {
      return;
    }
    var names = liveNames(element);
    names.forEach(function (name) {
      latest[name] = latest[name] || 0;
      connections.forEach(function (connection) {
        follow(connection, name);
      });
    });
    var since = parseInt(element.getAttribute("data-live-since"), 10);
    if (isNaN(since)) {
      return;
    }
    for (var i = 0; i < names.length; i++) {
      if (latest[names[i]] > since) {
        htmx.trigger(element, "sse:" + names[i]); // one re-fetch brings the element up to date
        return;
      }
    }
  });
})();
