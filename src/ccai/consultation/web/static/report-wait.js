// While the first report of a conversation is being computed (jobs.py), reload every few seconds until
// it is there; the page says so, and offers a reload link for browsers without JavaScript.
(function () {
  if (document.getElementById("report-computing")) {
    setTimeout(function () { window.location.reload(); }, 3000);
  }
})();
