// ccai consultation embed: paste <script src="https://YOUR-SERVER/static/embed.js" data-conversation="1"
// data-xid="USER_ID" async></script> where the conversation should appear. It adds an iframe that grows with
// its content: the framed page posts its height, and only messages from this script's own origin and frame
// are believed.
(function () {
  var script = document.currentScript;
  if (!script) { return; }
  var origin = new URL(script.src).origin;
  var conversation = script.getAttribute("data-conversation");
  var xid = script.getAttribute("data-xid");
  var frame = document.createElement("iframe");
  frame.src = origin + "/c/" + encodeURIComponent(conversation) + (xid ? "?xid=" + encodeURIComponent(xid) : "");
  frame.title = script.getAttribute("data-title") || "Consultation";
  frame.style.width = "100%";
  frame.style.border = "0";
  frame.style.height = "640px";
  script.parentNode.insertBefore(frame, script.nextSibling);
  window.addEventListener("message", function (event) {
    if (event.origin !== origin || event.source !== frame.contentWindow) { return; }
    var height = event.data && event.data.ccaiHeight;
    if (typeof height === "number" && height > 0 && height < 100000) {
      frame.style.height = Math.ceil(height) + "px";
    }
  });
})();
