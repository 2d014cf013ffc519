// The browsable API page: renders /api/openapi.json and lets a signed-in user try each call.
"use strict";
(function () {
  const $ = (sel) => document.querySelector(sel);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    return e;
  };
  const tokenInput = $("#token");
  tokenInput.value = sessionStorage.getItem("eoms-token") || "";
  tokenInput.addEventListener("change", () => sessionStorage.setItem("eoms-token", tokenInput.value));

  $("#signin").addEventListener("click", async () => {
    const res = await fetch("/api/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: $("#user").value, password: $("#pass").value }),
    });
    const j = await res.json();
    if (res.ok) {
      tokenInput.value = j.token;
      sessionStorage.setItem("eoms-token", j.token);
      $("#who").textContent = j.user.name + " (" + j.user.id + ")";
    } else {
      $("#who").textContent = j.message;
    }
  });

  function resolve(doc, schema, depth) {
    if (!schema || depth > 4) return schema;
    if (schema.$ref) {
      const name = schema.$ref.split("/").pop();
      return resolve(doc, doc.components.schemas[name], depth + 1);
    }
    const out = Array.isArray(schema) ? [] : {};
    for (const [k, v] of Object.entries(schema)) out[k] = typeof v === "object" && v !== null ? resolve(doc, v, depth + 1) : v;
    return out;
  }

  function operation(doc, path, method, op) {
    const d = el("details", {});
    d.append(el("summary", {}, el("span", { class: "m " + method }, method), el("span", { class: "p" }, path), el("span", { class: "s" }, op.summary || "")));
    const body = el("div", { class: "body" });
    const inputs = {};
    if (op.parameters && op.parameters.length) {
      const t = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "value")));
      for (const p of op.parameters) {
        const input = el("input", { placeholder: (p.schema && p.schema.type) || "" });
        inputs[p.in + ":" + p.name] = input;
        t.append(el("tr", { class: "try" }, el("td", {}, p.name + (p.required ? " *" : ""), el("div", { class: "s" }, p.description || "")), el("td", {}, p.in), el("td", {}, input)));
      }
      body.append(t);
    }
    let bodyArea = null;
    if (op.requestBody) {
      const [type, media] = Object.entries(op.requestBody.content)[0];
      body.append(el("div", {}, "Request body (" + type + ")"));
      if (media.schema) body.append(el("pre", {}, JSON.stringify(resolve(doc, media.schema, 0), null, 2)));
      bodyArea = el("textarea", { placeholder: type });
      bodyArea.dataset.type = type;
      body.append(bodyArea);
    }
    const out = el("pre", {}, "");
    const send = el("button", { type: "button" }, "Send");
    send.addEventListener("click", async () => {
      let url = path;
      const query = new URLSearchParams();
      const headers = {};
      for (const [key, input] of Object.entries(inputs)) {
        const [where, name] = key.split(":");
        if (!input.value) continue;
        if (where === "path") url = url.replace("{" + name + "}", encodeURIComponent(input.value));
        else if (where === "query") query.set(name, input.value);
        else if (where === "header") headers[name] = input.value;
      }
      if (tokenInput.value) headers["Authorization"] = "Bearer " + tokenInput.value;
      const init = { method: method.toUpperCase(), headers };
      if (bodyArea && bodyArea.value) { init.body = bodyArea.value; headers["Content-Type"] = bodyArea.dataset.type; }
      const qs = query.toString();
      const res = await fetch(url + (qs ? "?" + qs : ""), init);
      const text = await res.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
      out.textContent = res.status + " " + res.statusText + "\n\n" + shown;
    });
    body.append(send, out);
    const codes = Object.entries(op.responses || {}).map(([c, r]) => c + " " + (r.description || "")).join("\n");
    body.append(el("div", { class: "s" }, "Responses"), el("pre", {}, codes));
    d.append(body);
    return d;
  }

  fetch("/api/openapi.json").then((r) => r.json()).then((doc) => {
    $("#info").textContent = doc.info.title + " " + doc.info.version + " — " + doc.info.description;
    const byTag = {};
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const tag = (op.tags && op.tags[0]) || "other";
        (byTag[tag] = byTag[tag] || []).push([path, method, op]);
      }
    }
    const main = $("#ops");
    main.textContent = "";
    for (const [tag, ops] of Object.entries(byTag)) {
      main.append(el("h2", {}, tag));
      for (const [path, method, op] of ops) main.append(operation(doc, path, method, op));
    }
  });
})();
