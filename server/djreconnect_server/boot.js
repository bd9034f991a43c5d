// djreconnect's boot loader: the only script besides PyScript's that runs before the
// Python runtime does. Until the runtime starts, it keeps dj-submit forms from submitting
// and dj-click links from navigating, and records those clicks and submits (bounded) for
// the runtime to send on its first mount; and it shows a boot that fails (an asset that
// does not load, an error before the start, no start in time) on the page.
// Records: [kind, element, data]: "click" or "submit", the dj-click / dj-submit element,
// and for a submit the form's FormData when it was submitted (null for a click).
// The runtime calls take() as it starts: the listeners go, the records are its to send.
(function (c) {
  var doc = document, records = [], bytes = 0, failed = null, timer = 0, observer = null;
  var script = doc.currentScript;
  var timeout = +(script && script.getAttribute("data-timeout-ms")) || c.timeout_ms;
  var deadline = Date.now() + timeout;

  function record(event) {
    var click = event.type === "click", target = event.target;
    var element = target && target.closest ? target.closest("[" + (click ? c.click : c.submit) + "]") : null;
    if (!element || !element.closest("[" + c.view + "]")) return;
    if (!click || element.nodeName === "A") event.preventDefault();
    var data = click || element.nodeName !== "FORM" ? null : new FormData(element), size = 0;
    if (data) data.forEach(function (value, name) { size += name.length + (typeof value === "string" ? value.length : 0); });
    if (records.length >= c.limit || bytes + size > c.bytes) { boot.refused++; return; }
    bytes += size;
    records.push([event.type, element, data]);
  }

  // URLs of what the include loads (PyScript, the interpreter, the wheel, a config URL):
  // an error that names one of their folders is a boot failure; other errors are the page's.
  function ours(text) {
    if (/PythonError/.test(text)) return true;
    var urls = [], nodes = doc.querySelectorAll("script[type=module][src],script[type=py],script[type=mpy],py-script,mpy-script");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i], src = node.getAttribute("src"), config = node.getAttribute("config");
      if (src && /\/core\.js$/.test(src)) urls.push(src);
      if (config) {
        try { config = JSON.parse(config); urls.push(config.interpreter || ""); urls = urls.concat(Object.keys(config.files || {})); }
        catch (error) { urls.push(config); }
      }
    }
    for (i = 0; i < urls.length; i++) {
      if (!urls[i]) continue;
      try { var url = new URL(urls[i], doc.baseURI).href; } catch (error) { continue; }
      if (text.indexOf(url.slice(0, url.lastIndexOf("/") + 1)) >= 0) return true;
    }
    return false;
  }

  function fail(what) {
    if (failed !== null) return;
    failed = String(what);
    function show() {
      var style = doc.createElement("style"), box = doc.createElement("div");
      style.textContent = c.css;
      doc.head.insertBefore(style, doc.head.firstChild);
      box.className = c.error;
      box.setAttribute("role", "alert");
      box.textContent = c.message + failed;
      doc.body.insertBefore(box, doc.body.firstChild);
      doc.body.classList.add(c.failed);
    }
    if (doc.body) show(); else doc.addEventListener("DOMContentLoaded", show);
  }

  function onError(event) {
    var target = event.target;
    if (target && target !== window && target.nodeType === 1) {
      var url = target.src || target.href || "";
      if (url && ours(url)) fail("could not load " + url);
      return;
    }
    var error = event.error || event.reason || event.message || "";
    var text = String((error && error.message) || error) + " " + String((error && error.stack) || "") + " " + (event.filename || "");
    if (ours(text)) fail(String((error && error.message) || error).split("\n")[0]);
  }

  function check() {
    var shown = doc.querySelector(".py-error");  // PyScript shows Python errors this way
    if (shown) {
      var lines = shown.textContent.trim().split("\n");
      fail(lines[lines.length - 1]);
    } else if (Date.now() > deadline) {
      fail("it did not start within " + Math.round(timeout / 1000) + " s");
    }
  }

  var boot = {
    waiting: true,
    refused: 0,
    fail: fail,
    failure: function () { return failed; },
    take: function () {
      boot.waiting = false;
      doc.removeEventListener("click", record, true);
      doc.removeEventListener("submit", record, true);
      window.removeEventListener("error", onError, true);
      window.removeEventListener("unhandledrejection", onError);
      clearInterval(timer);
      if (observer) observer.disconnect();
      if (failed !== null) {  // it was only slow: the runtime is here after all
        var shown = doc.querySelectorAll("." + c.error);
        for (var i = 0; i < shown.length; i++) shown[i].remove();
        doc.body.classList.remove(c.failed);
        failed = null;
      }
      var taken = records;
      records = [];
      return taken;
    }
  };
  window[c.global] = boot;
  doc.addEventListener("click", record, true);
  doc.addEventListener("submit", record, true);
  window.addEventListener("error", onError, true);
  window.addEventListener("unhandledrejection", onError);
  timer = setInterval(check, 250);
  try {  // an asset answered with an HTTP error (Pyodide waits forever when its wasm is missing)
    observer = new PerformanceObserver(function (list) {
      list.getEntries().forEach(function (entry) {
        if (entry.responseStatus >= 400 && ours(entry.name)) fail("could not load " + entry.name + " (HTTP " + entry.responseStatus + ")");
      });
    });
    observer.observe({ type: "resource", buffered: true });
  } catch (error) { observer = null; }
})
