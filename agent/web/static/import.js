/* Import servers from a CSV (or JSON) file and show what happened to every row. */
"use strict";

(function () {
  var t = BM.t, el = BM.el;
  var ENDPOINTS = JSON.parse(document.getElementById("bm-endpoints").textContent);
  var form = document.getElementById("import-form");
  var file = document.getElementById("file");
  var upload = document.getElementById("upload");
  var panel = document.getElementById("report-panel");
  var report = document.getElementById("report");

  function rowError(e) {
    var message = e.message || "";
    if (e.code && BM.tOr("import." + e.code, null) !== null) {
      message = t("import." + e.code, {field: e.field || "", detail: e.detail || ""});
    }
    return el("tr", {class: "row-bad", "data-line": String(e.line)}, [
      el("td", {text: String(e.line)}), el("td", {text: e.uuid || ""}),
      el("td", {text: t("ui.row_rejected")}), el("td", {text: message})]);
  }

  function rowOk(uuid, what) {
    return el("tr", {class: "row-ok", "data-uuid": uuid}, [el("td", {text: ""}), el("td", {text: uuid}),
      el("td", {text: t("ui.row_" + what)}), el("td", {text: ""})]);
  }

  function show(data) {
    BM.clear(report);
    var created = data.created || [], updated = data.updated || [], unchanged = data.unchanged || [];
    var errors = data.errors || [];
    report.appendChild(el("p", {id: "import-summary", class: errors.length ? "notice" : "notice good",
      text: t("cli.import_summary", {created: created.length, updated: updated.length,
        unchanged: unchanged.length, rejected: errors.length})}));
    if (typeof data.queued === "number") {
      report.appendChild(el("p", {id: "import-queued", class: "muted", text: t("ui.queued", {count: data.queued})}));
    }
    var rows = errors.map(rowError)
      .concat(created.map(function (u) { return rowOk(u, "created"); }))
      .concat(updated.map(function (u) { return rowOk(u, "updated"); }))
      .concat(unchanged.map(function (u) { return rowOk(u, "unchanged"); }));
    report.appendChild(el("div", {class: "table-wrap"}, [el("table", {class: "data", id: "import-rows"}, [
      el("thead", {}, [el("tr", {}, [t("ui.line"), t("ui.uuid"), t("ui.result"), t("ui.detail")]
        .map(function (h) { return el("th", {text: h}); }))]),
      el("tbody", {}, rows)])]));
    panel.classList.remove("hidden");
  }

  file.addEventListener("change", function () {
    document.getElementById("file-name").textContent = file.files.length ? file.files[0].name : t("ui.no_file");
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (!BM.canImport || !file.files.length) return;
    var chosen = file.files[0];
    upload.disabled = true;
    // The API takes the file itself as the body; the name tells CSV from JSON.
    var url = ENDPOINTS.import + "?filename=" + encodeURIComponent(chosen.name) +
      (document.getElementById("register").checked ? "&register=true" : "");
    BM.api("POST", url, chosen).then(function (res) {
      upload.disabled = false;
      if (res.ok && res.data) {
        show(res.data);
      } else {
        BM.clear(report);
        report.appendChild(el("div", {class: "notice error", id: "import-error", text: BM.errorText(res.status, res.data)}));
        panel.classList.remove("hidden");
      }
    });
  });
})();
