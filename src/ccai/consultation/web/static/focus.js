// After a vote, move keyboard focus to the next statement (or to a refused draft), so keyboard and
// screen-reader users continue where they were instead of at the top of the page. No inline script:
// the CSP allows only files from this origin.
(function () {
  function focusMarked() {
    var target = document.querySelector("[data-focus]");
    if (target) { target.focus(); }
  }
  document.addEventListener("DOMContentLoaded", focusMarked);
  document.addEventListener("htmx:afterSwap", focusMarked);
})();
