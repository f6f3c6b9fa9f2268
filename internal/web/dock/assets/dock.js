// The dock page, live: the server renders the page complete; this script
// only replaces the tiles with each snapshot from /api/events. Every text
// goes in through textContent, never as HTML. If nothing is heard for
// longer than the server's refresh allows, the page says it is stale.
"use strict";
(function () {
  var main = document.getElementById("bays");
  var stale = document.getElementById("stale");
  var refresh = parseInt(document.body.dataset.refreshMs, 10) || 30000;
  var last = Date.now();

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // where is the bay as the server renders it (BayView.BayDir, BayLeaf):
  // a watched folder's directory, cut from its start when the tile is
  // narrow, and its last element, always whole.
  function where(bay) {
    var w = el("div", "where");
    w.title = bay;
    var i = bay.lastIndexOf("/");
    if (i > 0 && i < bay.length - 1) {
      var d = el("span", "dir");
      var iso = el("bdi", "", bay.slice(0, i + 1));
      iso.dir = "ltr";
      d.appendChild(iso);
      w.appendChild(d);
      bay = bay.slice(i + 1);
    }
    w.appendChild(el("span", "leaf", bay));
    return w;
  }

  function tile(b) {
    var t = el("section", "tile st-" + b.state);
    t.dataset.bay = b.bay;
    t.dataset.camera = b.camera;
    t.dataset.state = b.state;
    t.appendChild(where(b.bay));
    t.appendChild(el("div", "cam", b.camera));
    if (b.assigned_to) t.appendChild(el("div", "who", b.assigned_to));
    t.appendChild(el("div", "state", b.label));
    if (b.state === "copying") {
      var p = el("progress");
      p.max = 100;
      p.value = b.percent;
      t.appendChild(p);
      t.appendChild(el("div", "count", b.files_done + " of " + b.files_total + " files"));
    }
    return t;
  }

  function render(bays) {
    var out = document.createDocumentFragment();
    if (bays.length === 0) out.appendChild(el("p", "empty", "No camera docked"));
    bays.forEach(function (b) { out.appendChild(tile(b)); });
    main.replaceChildren(out);
  }

  function setStale(on) {
    stale.classList.toggle("hidden", !on);
    document.body.classList.toggle("stale", on);
  }

  var es;
  function connect() {
    es = new EventSource("/api/events");
    es.addEventListener("bays", function (ev) {
      last = Date.now();
      setStale(false);
      render(JSON.parse(ev.data));
    });
    // The browser reconnects by itself; until it does, the tiles are old.
    es.addEventListener("error", function () { setStale(true); });
  }
  connect();
  setInterval(function () {
    // Silence longer than two refreshes: a connection that died without
    // an error (a pulled cable). Say so, and start a new one.
    if (Date.now() - last > refresh * 2 + 5000) {
      setStale(true);
      es.close();
      last = Date.now();
      connect();
    }
  }, 1000);
})();
