// hotswap portal: the few live parts. Everything works without this file
// except live updates and copying to the clipboard.
(function () {
  "use strict";

  function slug(s) { return String(s).toLowerCase().replace(/[^a-z0-9_-]/g, "-"); }

  // A page the Back button restores from memory may show a state that is
  // over (a swap result with its Swap back button): load it afresh.
  window.addEventListener("pageshow", function (ev) { if (ev.persisted) location.reload(); });

  // A page a form posted to (its error shown) gets its own address, which
  // a reload or a bookmark can load.
  var page = document.body.dataset.pageUrl;
  if (page && window.history.replaceState) history.replaceState(null, "", page);

  // After saving, the confirmation shows where the page opens (#settings,
  // #keys), not out of view at its top.
  var flash = document.getElementById("flash");
  var anchor = null;
  if (location.hash.length > 1) {
    // A malformed hash (#%) must not stop the script: the confirm dialogs
    // below are attached by it.
    try { anchor = document.getElementById(decodeURIComponent(location.hash.slice(1))); } catch (e) { anchor = null; }
  }
  if (flash && anchor) {
    var head = anchor.querySelector("h2, h3");
    if (head) head.insertAdjacentElement("afterend", flash); else anchor.insertBefore(flash, anchor.firstChild);
  }

  // "Get function URL": reveal the URL with its key, select it, copy it.
  document.querySelectorAll("button.get-url").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var input = document.getElementById(btn.dataset.target);
      var box = input.closest(".url-box");
      var note = box.querySelector(".copied");
      box.hidden = false;
      btn.setAttribute("aria-expanded", "true");
      input.focus();
      input.select();
      var fallback = function () {
        try { note.textContent = document.execCommand("copy") ? "Copied to the clipboard" : "Selected: press Ctrl+C to copy"; }
        catch (e) { note.textContent = "Selected: press Ctrl+C to copy"; }
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(function () { note.textContent = "Copied to the clipboard"; }, fallback);
      } else {
        fallback();
      }
    });
  });

  // Show / hide a key value.
  document.querySelectorAll("button.reveal").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var input = document.getElementById(btn.dataset.target);
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      btn.textContent = show ? "Hide" : "Show";
      btn.setAttribute("aria-pressed", show ? "true" : "false");
    });
  });

  // Forms that ask before they act.
  document.querySelectorAll("form.confirm").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      if (!window.confirm(f.dataset.confirm || "Are you sure?")) ev.preventDefault();
    });
  });

  // Long-running forms (deploy, swap, rollback) say what they are doing.
  document.querySelectorAll("form[data-progress]").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      if (f.dataset.busy) { ev.preventDefault(); return; }
      f.dataset.busy = "1";
      f.setAttribute("aria-busy", "true");
      var out = document.getElementById(f.dataset.progress);
      if (out) {
        var what = f.id === "deploy-form" ? "Uploading and deploying… the slot keeps serving until the new deployment is ready." :
          (ev.submitter && ev.submitter.value === "preview") ? "Preparing the preview: starting and warming handlers…" :
          "Working: preparing, warming, then flipping in one step…";
        out.textContent = what;
      }
    });
  });

  // Hidden inputs that follow a select (the swap form follows the slot choice).
  document.querySelectorAll("input[data-sync-from]").forEach(function (h) {
    var src = document.getElementById(h.dataset.syncFrom);
    if (src) src.addEventListener("change", function () { h.value = src.value; });
  });

  // The swap plan follows the slots chosen: fetch it again when a select
  // changes, and offer the swap only when the plan holds.
  var planForm = document.getElementById("swap-plan-form");
  if (planForm) {
    var replan = function () {
      var q = new URLSearchParams(new FormData(planForm)).toString();
      var u = planForm.action + "?" + q;
      fetch(u, { credentials: "same-origin" }).then(function (r) { return r.ok || r.status < 500 ? r.text() : null; }).then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("swap-plan-region");
        var region = document.getElementById("swap-plan-region");
        if (!fresh || !region) return;
        region.innerHTML = fresh.innerHTML;
        // The swap is offered only beside a plan: its form posts what
        // the plan shows.
        var why = region.querySelector("#swap-plan-error") ? "swap-plan-error" : region.querySelector("#swap-plan") ? "" : "swap-plan-needed";
        document.querySelectorAll("#swap-form button").forEach(function (b) {
          b.disabled = why !== "";
          if (why) b.setAttribute("aria-describedby", why); else b.removeAttribute("aria-describedby");
        });
        history.replaceState(null, "", u);
      });
    };
    planForm.querySelectorAll("select").forEach(function (s) { s.addEventListener("change", replan); });
  }

  // The pencil opens the inline rename form.
  var rename = document.getElementById("rename-pipeline");
  if (rename) {
    rename.addEventListener("click", function () {
      var f = document.getElementById("rename-form");
      f.hidden = !f.hidden;
      rename.setAttribute("aria-expanded", f.hidden ? "false" : "true");
      if (!f.hidden) { var i = document.getElementById("rename-name"); i.focus(); i.select(); }
    });
  }

  // The editor's gutter numbers its lines and scrolls with it.
  var gutter = document.getElementById("pipeline-gutter");
  var editor = document.getElementById("pipeline-definition");
  if (gutter && editor) {
    var number = function () {
      var want = editor.value.split("\n").length, have = gutter.children.length;
      for (; have < want; have++) {
        var ln = document.createElement("span");
        ln.className = "ln";
        ln.textContent = String(have + 1);
        gutter.appendChild(ln);
        gutter.appendChild(document.createTextNode("\n"));
      }
      for (; have > want; have--) {
        gutter.removeChild(gutter.lastChild);
        gutter.removeChild(gutter.lastChild);
      }
    };
    editor.addEventListener("input", number);
    editor.addEventListener("scroll", function () { gutter.scrollTop = editor.scrollTop; });
  }

  // A problem's line number jumps to that line in the editor: selects it,
  // scrolls it into view and marks it in the gutter.
  document.querySelectorAll("button.goto-line").forEach(function (b) {
    b.addEventListener("click", function () {
      var ta = document.getElementById(b.dataset.target);
      var lines = ta.value.split("\n"), n = parseInt(b.dataset.line, 10) - 1, start = 0;
      for (var i = 0; i < n && i < lines.length; i++) start += lines[i].length + 1;
      ta.focus();
      ta.setSelectionRange(start, start + (lines[n] || "").length);
      var lh = parseFloat(getComputedStyle(ta).lineHeight) || 20;
      ta.scrollTop = Math.max(0, (n - 3) * lh);
      if (gutter) {
        gutter.scrollTop = ta.scrollTop;
        gutter.querySelectorAll(".ln.current").forEach(function (l) { l.classList.remove("current"); });
        var ln = gutter.querySelectorAll(".ln")[n];
        if (ln) ln.classList.add("current");
      }
    });
  });

  // Live state: poll the page's status endpoint every 2s.
  var url = document.body.dataset.statusUrl;
  if (!url) return;
  var deployStatus = document.getElementById("deploy-status");

  // dirty reports whether a form field inside el holds input not yet sent.
  function dirty(el) {
    var fields = el.querySelectorAll("input, textarea, select");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.type === "checkbox" || f.type === "radio") {
        if (f.checked !== f.defaultChecked) return true;
      } else if (f.tagName === "SELECT") {
        // With no option marked selected, the first one is the default.
        var def = 0;
        for (var j = 0; j < f.options.length; j++) {
          if (f.options[j].defaultSelected) { def = j; break; }
        }
        if (f.multiple) {
          for (j = 0; j < f.options.length; j++) {
            if (f.options[j].selected !== f.options[j].defaultSelected) return true;
          }
        } else if (f.options.length && f.selectedIndex !== def) {
          return true;
        }
      } else if (f.type !== "hidden" && f.type !== "file" && f.value !== f.defaultValue) {
        return true;
      } else if (f.type === "file" && f.files && f.files.length) {
        return true;
      }
    }
    return false;
  }

  function refreshSections() {
    var secs = document.querySelectorAll("[data-refresh]");
    if (!secs.length) return;
    for (var i = 0; i < secs.length; i++) {
      if (secs[i].contains(document.activeElement) && document.activeElement !== document.body) return;
    }
    fetch(location.href, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.text() : null; }).then(function (html) {
      if (!html) return;
      var doc = new DOMParser().parseFromString(html, "text/html");
      secs.forEach(function (s) {
        var fresh = doc.getElementById(s.id);
        if (!fresh) return;
        // Keep what the reader opened or closed (a stage's log).
        var had = s.querySelectorAll("details"), got = fresh.querySelectorAll("details");
        if (had.length === got.length) {
          for (var i = 0; i < had.length; i++) got[i].open = had[i].open;
        }
        // Replace a section only when its content changed, and never
        // under someone's feet: not while it holds focus or a field the
        // user has typed into but not sent yet.
        if (fresh.innerHTML === s.innerHTML || dirty(s)) return;
        if (s.contains(document.activeElement) && document.activeElement !== document.body) return;
        s.innerHTML = fresh.innerHTML;
      });
    });
  }

  function apply(st) {
    var changed = false;
    Object.keys(st.states || {}).forEach(function (k) {
      document.querySelectorAll('[data-state-key="' + k + '"]').forEach(function (el) {
        var v = st.states[k];
        if (el.textContent !== v) {
          el.textContent = v;
          el.className = "badge state-" + slug(v);
          changed = true;
        }
      });
    });
    Object.keys(st.text || {}).forEach(function (k) {
      document.querySelectorAll('[data-text-key="' + k + '"]').forEach(function (el) {
        if (el.textContent !== st.text[k]) el.textContent = st.text[k];
      });
    });
    if (deployStatus && deployStatus.textContent && st.states && st.states["deploy-progress"]) {
      deployStatus.textContent = "Deploy " + (st.text["deploy-progress-id"] || "") + ": " + st.states["deploy-progress"];
    }
    var log = document.getElementById("slot-log");
    if (log && st.log) {
      var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      var frag = document.createDocumentFragment();
      st.log.forEach(function (l) {
        var line = document.createElement("span");
        line.className = "log-line";
        var t = document.createElement("span"); t.className = "log-time"; t.textContent = l.time;
        var s = document.createElement("span"); s.className = "log-stream"; s.textContent = "[" + l.stream + "]";
        line.appendChild(t); line.appendChild(document.createTextNode(" ")); line.appendChild(s);
        line.appendChild(document.createTextNode(" " + l.text));
        frag.appendChild(line); frag.appendChild(document.createTextNode("\n"));
      });
      var text = st.log.map(function (l) { return l.time + " [" + l.stream + "] " + l.text; }).join("\n");
      if (log.dataset.last !== text) {
        log.dataset.last = text;
        log.replaceChildren(frag);
        if (atEnd) log.scrollTop = log.scrollHeight;
      }
    }
    if (changed) refreshSections();
  }

  // The app's running operation (status.json's operation), live for every
  // viewer: the phase in a polite live region, the phases so far in a list.
  var opStatus = null, opList = null;
  var opMain = document.getElementById("main");
  if (opMain) {
    var opBox = document.createElement("section");
    opBox.id = "op-progress";
    opBox.className = "op-progress";
    opBox.setAttribute("aria-label", "Operation in progress");
    opBox.dataset.testid = "op-progress";
    opStatus = document.createElement("p");
    opStatus.setAttribute("role", "status");
    opStatus.setAttribute("aria-live", "polite");
    opStatus.dataset.testid = "op-status";
    opList = document.createElement("ol");
    opList.className = "op-phases";
    opList.dataset.testid = "op-phases";
    opList.hidden = true;
    opBox.appendChild(opStatus);
    opBox.appendChild(opList);
    var opH1 = opMain.querySelector("h1");
    if (opH1 && opH1.parentNode === opMain) opH1.insertAdjacentElement("afterend", opBox);
    else opMain.insertBefore(opBox, opMain.firstChild);
  }
  function seconds(ms) { return (ms / 1000).toFixed(1) + " s"; }
  function opTitle(op) {
    switch (op.kind) {
      case "deploy": return "Deploy to " + op.slot;
      case "swap": return "Swap of " + op.slot + " into " + op.target;
      case "rollback": return "Rollback of " + op.slot;
      case "settings": return "Settings change of " + op.slot;
      default: return op.kind + (op.slot ? " of " + op.slot : "");
    }
  }
  function showOperation(op) {
    if (!opStatus) return;
    if (!op) {
      if (opStatus.textContent) opStatus.textContent = "";
      opList.hidden = true;
      opList.replaceChildren();
      return;
    }
    // Only the phase goes in the live region: the elapsed time changes at
    // every poll and would be read out each time.
    var text = opTitle(op) + ": " + (op.phase || "running");
    if (op.end && op.state === "failed" && op.detail) text += " — " + op.detail;
    if (opStatus.textContent !== text) opStatus.textContent = text;
    var frag = document.createDocumentFragment();
    (op.phases || []).forEach(function (e, i, all) {
      var li = document.createElement("li");
      var last = i === all.length - 1;
      li.textContent = e.phase + (e.detail && !e.end ? " (" + e.detail + ")" : "") + " at " + seconds(e.elapsedMs) +
        (last && !op.end ? ", " + seconds(op.elapsedMs) + " so far" : "");
      frag.appendChild(li);
    });
    opList.replaceChildren(frag);
    opList.hidden = !(op.phases && op.phases.length);
  }

  function poll() {
    if (document.hidden) { setTimeout(poll, 2000); return; }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (st) { if (st) { showOperation(st.operation); apply(st); } })
      .catch(function () {})
      .then(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 2000);
})();
