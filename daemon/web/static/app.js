// refreshd dashboard: the only script. It follows a running step's output live over
// server-sent events; every page works without it (a running attempt's page then shows
// what the log file held when the page was made).
"use strict";
(function () {
  var pre = document.querySelector("pre[data-events]");
  if (!pre || !window.EventSource) {
    return;
  }
  var status = document.getElementById("live-status");
  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }
  // Keep the view at the bottom while the reader is there; leave it alone once they
  // scroll up to read.
  function atBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
  }
  var es = new EventSource(pre.getAttribute("data-events"));
  es.onopen = function () {
    // The stream replays the step's output from its start: it replaces what the page had.
    pre.textContent = "";
    say("Following the output live.");
  };
  es.onmessage = function (e) {
    var follow = atBottom();
    pre.appendChild(document.createTextNode(e.data + "\n"));
    if (follow) {
      window.scrollTo(0, document.body.scrollHeight);
    }
  };
  es.addEventListener("end", function (e) {
    es.close();
    pre.setAttribute("data-ended", "1");
    say("The step has ended (" + e.data + "). Reload for its final status.");
  });
  es.onerror = function () {
    es.close();
    say("The live stream was interrupted; reload the page to follow again.");
  };
})();
