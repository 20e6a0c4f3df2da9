// While the first report of a conversation is being computed (jobs.py), reload every few seconds until
// it is there; the page says so, and offers a reload link for browsers without JavaScript.
// The wait starts once the page has loaded: a reload that began earlier would cut off a slow first load.
(function () {
  if (!document.getElementById("report-computing")) return;
  function later() { setTimeout(function () { window.location.reload(); }, 3000); }
  if (document.readyState === "complete") later(); else window.addEventListener("load", later);
})();
