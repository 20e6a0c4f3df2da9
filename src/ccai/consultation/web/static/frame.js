// Inside an embed (static/embed.js), tell the embedding page how tall this page is, whenever it changes.
(function () {
  if (window.parent === window) { return; }
  function report() {
    // offsetHeight: the content's own height (scrollHeight never drops below the frame's height)
    window.parent.postMessage({ ccaiHeight: document.documentElement.offsetHeight }, "*");
  }
  window.addEventListener("load", report);
  document.addEventListener("htmx:afterSwap", report);
  if (window.ResizeObserver) { new ResizeObserver(report).observe(document.body); }
})();
