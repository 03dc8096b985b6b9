/* Import servers from a CSV (or JSON) file: a preview first (nothing stored), then the import. */
"use strict";

(function () {
  var t = BM.t, el = BM.el;
  var ENDPOINTS = JSON.parse(document.getElementById("bm-endpoints").textContent);
  var form = document.getElementById("import-form");
  var file = document.getElementById("file");
  var upload = document.getElementById("upload");
  var previewPanel = document.getElementById("preview-panel");
  var preview = document.getElementById("preview");
  var panel = document.getElementById("report-panel");
  var report = document.getElementById("report");
  var sequence = 0; // answers to an older request (another file, a later import) are dropped

  function rowError(e) {
    var message = e.message || "";
    if (e.code && BM.tOr("import." + e.code, null) !== null) {
      message = t("import." + e.code, {field: e.field || "", detail: e.detail || ""});
    }
    return el("tr", {class: "row-bad", "data-line": String(e.line)}, [
      el("td", {text: String(e.line)}), el("td", {class: "id-text", text: e.uuid || ""}),
      el("td", {text: t("ui.row_rejected")}), el("td", {text: message})]);
  }

  function rowOk(uuid, what) {
    return el("tr", {class: "row-ok", "data-uuid": uuid}, [el("td", {text: ""}),
      el("td", {class: "id-text", text: uuid}), el("td", {text: t(what)}), el("td", {text: ""})]);
  }

  /** The per-row table; labels: [created, updated, unchanged] keys. */
  function rowsTable(id, data, labels) {
    var rows = (data.errors || []).map(rowError)
      .concat((data.created || []).map(function (u) { return rowOk(u, labels[0]); }))
      .concat((data.updated || []).map(function (u) { return rowOk(u, labels[1]); }))
      .concat((data.unchanged || []).map(function (u) { return rowOk(u, labels[2]); }));
    return el("div", {class: "table-wrap"}, [el("table", {class: "data", id: id}, [
      el("thead", {}, [el("tr", {}, [t("ui.line"), t("ui.uuid"), t("ui.result"), t("ui.detail")]
        .map(function (h) { return el("th", {text: h}); }))]),
      el("tbody", {}, rows)])]);
  }

  function counts(data) {
    return {created: (data.created || []).length, updated: (data.updated || []).length,
            unchanged: (data.unchanged || []).length, rejected: (data.errors || []).length};
  }

  function showPreview(data) {
    BM.clear(preview);
    var c = counts(data);
    var usable = c.created + c.updated + c.unchanged > 0;
    preview.appendChild(el("p", {id: "preview-summary", class: c.rejected ? "notice" : "notice good",
      text: usable ? t("ui.preview_summary", c) : t("ui.preview_nothing")}));
    preview.appendChild(rowsTable("preview-rows", data,
      ["ui.row_will_create", "ui.row_will_update", "ui.row_will_keep"]));
    previewPanel.classList.remove("hidden");
    upload.disabled = !usable;
  }

  function show(data) {
    BM.clear(report);
    var c = counts(data);
    report.appendChild(el("p", {id: "import-summary", class: c.rejected ? "notice" : "notice good",
      text: t("cli.import_summary", c)}));
    if (typeof data.queued === "number") {
      report.appendChild(el("p", {id: "import-queued", class: "muted", text: t("ui.queued", {count: data.queued})}));
    }
    report.appendChild(rowsTable("import-rows", data, ["ui.row_created", "ui.row_updated", "ui.row_unchanged"]));
    previewPanel.classList.add("hidden");
    panel.classList.remove("hidden");
  }

  function showError(res) {
    BM.clear(report);
    report.appendChild(el("div", {class: "notice error", id: "import-error", text: BM.errorText(res.status, res.data)}));
    panel.classList.remove("hidden");
  }

  /** POST the chosen file; the API takes the file itself as the body (the name tells CSV from JSON). */
  function send(extra) {
    var chosen = file.files[0];
    var url = ENDPOINTS.import + "?filename=" + encodeURIComponent(chosen.name) + extra;
    var mine = ++sequence;
    return BM.api("POST", url, chosen).then(function (res) { return mine === sequence ? res : null; });
  }

  file.addEventListener("change", function () {
    document.getElementById("file-name").textContent = file.files.length ? file.files[0].name : t("ui.no_file");
    upload.disabled = true;
    panel.classList.add("hidden");
    previewPanel.classList.add("hidden");
    if (!BM.canImport || !file.files.length) return;
    send("&dry_run=true").then(function (res) {
      if (!res) return;
      if (res.ok && res.data) showPreview(res.data);
      else showError(res);
    });
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (!BM.canImport || !file.files.length) return;
    upload.disabled = true;
    send(document.getElementById("register").checked ? "&register=true" : "").then(function (res) {
      if (!res) return;
      if (res.ok && res.data) show(res.data);
      else showError(res);
    });
  });
})();
