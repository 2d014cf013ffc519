// eoms console: the few things a page cannot do without script. Everything works without it
// (forms post, lists reload); this adds live updates, branch fields and attachment upload.
// No inline script anywhere: the Content-Security-Policy allows only this file.
(function () {
  "use strict";
  var csrf = document.body ? document.body.getAttribute("data-csrf") : null;

  function toast(text) {
    var box = document.getElementById("toast");
    if (!box) return;
    var m = document.createElement("div");
    m.className = "msg";
    m.textContent = text; // text, never HTML
    box.appendChild(m);
    setTimeout(function () { m.remove(); }, 8000);
  }

  // ── Live to-do list: a new notification refreshes the rows ──
  var rows = document.querySelector("[data-live]");
  if (window.EventSource && csrf) {
    var es = new EventSource("/api/v1/notifications/stream");
    es.addEventListener("notification", function (ev) {
      try { toast(JSON.parse(ev.data).text); } catch (e) { /* ignore a malformed event */ }
      if (rows) {
        fetch(rows.getAttribute("data-live"), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (html === null) return;
            // The server renders and escapes the rows; they are parsed as a table body.
            var t = document.createElement("tbody");
            t.innerHTML = html;
            rows.replaceChildren.apply(rows, Array.prototype.slice.call(t.childNodes));
          });
      }
    });
  }

  // ── Branch fields: ask the engine which ones the form makes required ──
  function branchFields(form) {
    return Array.prototype.slice.call(form.querySelectorAll(".field[data-branch]"));
  }
  function refreshBranches(form) {
    var url = form.getAttribute("data-branch-url");
    if (!url || branchFields(form).length === 0) return;
    var params = new URLSearchParams();
    new FormData(form).forEach(function (v, k) {
      if (k !== "_csrf" && typeof v === "string") params.append(k, v);
    });
    fetch(url + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) {
        if (!j) return;
        branchFields(form).forEach(function (f) {
          var key = f.getAttribute("data-key");
          var on = j.required.indexOf(key) >= 0;
          var input = f.querySelector("input, select, textarea");
          var filled = input && input.value !== "";
          f.hidden = !on && !filled;
          if (input) { if (on) input.setAttribute("required", ""); else input.removeAttribute("required"); }
        });
      });
  }
  Array.prototype.forEach.call(document.querySelectorAll("form[data-branch-url]"), function (form) {
    form.addEventListener("change", function () { refreshBranches(form); });
    refreshBranches(form);
  });

  // ── Attachment upload: the file is the request body ──
  var up = document.getElementById("upload");
  if (up && csrf) {
    up.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var input = up.querySelector("input[type=file]");
      var status = up.querySelector(".upload-status");
      if (!input.files.length) return;
      var file = input.files[0];
      var url = "/api/v1/tickets/" + up.getAttribute("data-ticket") + "/attachments?name=" + encodeURIComponent(file.name);
      status.textContent = "…";
      fetch(url, {
        method: "POST", credentials: "same-origin", body: file,
        headers: { "X-CSRF-Token": csrf, "Content-Type": file.type || "application/octet-stream" }
      }).then(function (r) {
        if (r.ok) { location.reload(); return; }
        return r.json().then(function (e) { status.textContent = e.message; });
      }).catch(function () { status.textContent = "✗"; });
    });
  }
})();
