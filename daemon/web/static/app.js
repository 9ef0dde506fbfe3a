// refreshd dashboard: the only script. It follows a running step's output live over
// server-sent events, and keeps every other page current without reloading it: on each
// event of the stream of run changes (a run started, a step changed, a run ended), it
// fetches the page again and swaps in the new content of <main>, keeping the scroll
// position and the focused field. Every page works without it (a page showing something
// running then reloads itself every few seconds).
"use strict";
(function () {
  var pre = document.querySelector("pre[data-events]");
  if (pre && window.EventSource) {
    followLog(pre);
    return;
  }
  var main = document.querySelector("main[data-live]");
  if (main && window.EventSource && window.fetch && window.DOMParser) {
    followRuns(main);
  }

  function followLog(pre) {
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
      say("The step has ended (" + e.data + ").");
      final(e.data);
    });
    es.addEventListener("stop", function (e) {
      // The daemon dropped this follower (it fell behind, or its slot went to another):
      // the step goes on.
      es.close();
      say("Stopped following: " + e.data + ".");
    });
    es.onerror = function () {
      es.close();
      say("The live stream was interrupted; reload the page to follow again.");
    };
    // final fetches the page again once the step has ended and puts its outcome line (how
    // the attempt ended, its duration) and the attempts in place of the running ones; the
    // output followed live stays.
    function final(why) {
      if (!window.fetch || !window.DOMParser) {
        return;
      }
      fetch(window.location.href, { cache: "no-store", credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) {
          if ((r.headers.get("Content-Type") || "").indexOf("text/html") !== 0) {
            throw new Error("not a page");
          }
          return r.text();
        })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          ["outcome", "attempts"].forEach(function (id) {
            var fresh = doc.getElementById(id), old = document.getElementById(id);
            if (fresh && old) {
              old.replaceWith(document.adoptNode(fresh));
            } else if (fresh && id === "attempts") {
              document.getElementById("outcome").after(document.adoptNode(fresh));
            }
          });
          var o = document.getElementById("outcome");
          say("The step has ended: " + (o ? o.textContent.split(" · ")[0] : why) + ".");
          if (status) {
            status.setAttribute("data-final", "1");
          }
        })
        .catch(function () {
          say("The step has ended (" + why + "). Reload for its final status.");
        });
    }
  }

  function followRuns(main) {
    var busy = false, again = false, opened = false;
    var es = new EventSource(main.getAttribute("data-live"));
    es.onopen = function () {
      main.setAttribute("data-live-state", "open");
      // After a reconnection, changes may have been missed while the stream was down.
      if (opened) {
        update();
      }
      opened = true;
    };
    es.addEventListener("runs", update);
    es.addEventListener("stop", function () {
      // The daemon needed this stream's slot for another follower: stay as we are.
      es.close();
      main.setAttribute("data-live-state", "ended");
    });
    es.onerror = function () {
      // EventSource reconnects by itself (the daemon restarting, say).
      main.setAttribute("data-live-state", "reconnecting");
    };

    // update fetches the page again and swaps its content in; changes that come while a
    // fetch is under way make one more fetch after it.
    function update() {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      fetch(window.location.href, { cache: "no-store", credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) {
          var type = r.headers.get("Content-Type") || "";
          if (type.indexOf("text/html") !== 0) {
            throw new Error("not a page: " + type);
          }
          return r.text();
        })
        .then(swap)
        .catch(function () {
          // A failed fetch leaves the page as it was; the next change tries again.
        })
        .then(function () {
          busy = false;
          if (again) {
            again = false;
            update();
          }
        });
    }

    function swap(html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById("main");
      if (!fresh) {
        return;
      }
      if (fresh.innerHTML !== main.innerHTML) {
        var keep = focused();
        var x = window.scrollX, y = window.scrollY;
        main.replaceChildren.apply(main, Array.prototype.slice.call(document.adoptNode(fresh).childNodes));
        window.scrollTo(x, y);
        restore(keep);
        document.title = doc.title;
      }
      var foot = doc.querySelector("body > footer"), old = document.querySelector("body > footer");
      if (foot && old) {
        old.replaceChildren.apply(old, Array.prototype.slice.call(document.adoptNode(foot).childNodes));
      }
      main.setAttribute("data-live-updates", String(Number(main.getAttribute("data-live-updates") || 0) + 1));
    }

    // focused is the field or link with focus in <main>, found again after a swap by its
    // id or name, with what was typed in it.
    function focused() {
      var el = document.activeElement;
      if (!el || !main.contains(el) || !(el.id || el.name)) {
        return null;
      }
      var keep = { id: el.id, name: el.name, value: el.value };
      if (typeof el.selectionStart === "number") {
        keep.start = el.selectionStart;
        keep.end = el.selectionEnd;
      }
      return keep;
    }

    function restore(keep) {
      if (!keep) {
        return;
      }
      var el = keep.id ? document.getElementById(keep.id) : main.querySelector("[name=\"" + CSS.escape(keep.name) + "\"]");
      if (!el || !main.contains(el)) {
        return;
      }
      if (typeof keep.value === "string" && "value" in el) {
        el.value = keep.value;
      }
      el.focus({ preventScroll: true });
      if (typeof keep.start === "number" && el.setSelectionRange) {
        try {
          el.setSelectionRange(keep.start, keep.end);
        } catch (e) {
          // Not a text field after all.
        }
      }
    }
  }
})();
