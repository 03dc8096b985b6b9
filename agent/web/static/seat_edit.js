/* Edit or delete this seat (admins; the page loads this module only for them). Confirmed. */
"use strict";

(function () {
  var t = BM.t, el = BM.el;
  var uuid = document.body.getAttribute("data-uuid");
  var url = "/api/v1/servers/" + encodeURIComponent(uuid);
  // Editable fields: [API name, label key, input type]; the password stays blank = unchanged.
  var FIELDS = [["ip", "ui.ip", "text"], ["desc", "ui.desc", "text"], ["os", "ui.os", "text"],
                ["ipmi_hostname", "ui.ipmi_host", "text"], ["ipmi_port", "ui.ipmi_port", "number"],
                ["ipmi_username", "ui.ipmi_user", "text"], ["ipmi_password", "ui.ipmi_password_new", "password"],
                ["mac", "ui.mac", "text"], ["labels", "ui.labels", "text"]];
  var CURRENT = {ipmi_hostname: "ipmi_host", ipmi_username: "ipmi_user"};
  var panel = el("section", {class: "panel", id: "seat-admin"}, [el("h2", {text: t("ui.seat_admin")})]);
  var note = el("div", {id: "seat-admin-notice", role: "status"});

  function labelText(labels) {
    return Object.keys(labels || {}).map(function (k) { return k + "=" + labels[k]; }).join(";");
  }

  function currentValue(server, name) {
    if (name === "labels") return labelText(server.labels);
    if (name === "ipmi_password") return "";
    var value = server[CURRENT[name] || name];
    return value === null || value === undefined ? "" : value;
  }

  /** The fields that differ from server, in the API's shape. */
  function changes(server, values) {
    var body = {};
    FIELDS.forEach(function (f) {
      var name = f[0], value = values[name].trim();
      if (value === String(currentValue(server, name))) return;
      if (name === "ipmi_password" && !value) return;
      if (name === "labels") {
        var labels = {};
        value.split(";").filter(Boolean).forEach(function (pair) {
          var at = pair.indexOf("=");
          labels[pair.slice(0, at < 0 ? pair.length : at).trim()] = at < 0 ? "" : pair.slice(at + 1).trim();
        });
        body.labels = labels;
      } else if (name === "ipmi_port") body.ipmi_port = value ? parseInt(value, 10) : null;
      else if (name === "mac") body.mac = value || null;
      else body[name] = value;
    });
    return body;
  }

  function edit() {
    BM.api("GET", url).then(function (res) {
      if (!res.ok) { BMConfirm.notice(note, BM.errorText(res.status, res.data), false); return; }
      var server = res.data;
      BMConfirm.ask({title: t("ui.edit_seat", {uuid: uuid}), ok: t("ui.save"),
                     fields: FIELDS.map(function (f) {
                       return {name: f[0], label: t(f[1]), type: f[2], value: currentValue(server, f[0])};
                     })}).then(function (values) {
        if (!values) return;
        var body = changes(server, values);
        if (!Object.keys(body).length) { BMConfirm.notice(note, t("ui.nothing_changed"), true); return; }
        BM.api("PATCH", url, body).then(function (saved) {
          if (saved.ok) {
            BMConfirm.notice(note, t("ui.seat_saved", {uuid: uuid}), true);
          } else {
            BMConfirm.notice(note, BM.errorText(saved.status, saved.data), false);
          }
        });
      });
    });
  }

  function remove() {
    BMConfirm.ask({title: t("ui.delete_seat", {uuid: uuid}), danger: true, ok: t("ui.delete"),
                   text: t("ui.delete_seat_confirm", {uuid: uuid})}).then(function (values) {
      if (!values) return;
      BM.api("DELETE", url).then(function (res) {
        if (res.ok) window.location.assign("/ui/?deleted=" + encodeURIComponent(uuid));
        else BMConfirm.notice(note, BM.errorText(res.status, res.data), false);
      });
    });
  }

  panel.appendChild(el("p", {class: "row-buttons"}, [
    el("button", {class: "btn", type: "button", id: "seat-edit", text: t("ui.edit"), onclick: edit}),
    el("button", {class: "btn danger", type: "button", id: "seat-delete", text: t("ui.delete"), onclick: remove})]));
  panel.appendChild(note);
  document.getElementById("main").appendChild(panel);
})();
