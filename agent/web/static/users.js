/* Staff users (admins): list, add, change role, reset password, delete (confirmed). */
"use strict";

(function () {
  var t = BM.t, el = BM.el;
  var URL = "/api/v1/users";
  var tableNode = document.getElementById("users");
  var note = document.getElementById("user-notice");
  var me = document.getElementById("users-panel").getAttribute("data-me");
  var ROLES = ["viewer", "operator", "admin"];

  function userUrl(name) { return URL + "/" + encodeURIComponent(name); }

  function report(res, okText) {
    if (res.ok) BMConfirm.notice(note, okText, true);
    else BMConfirm.notice(note, BM.errorText(res.status, res.data), false);
    load();
  }

  function roleSelect(user) {
    var select = el("select", {"aria-label": t("ui.role"), class: "role-pick"}, ROLES.map(function (r) {
      return el("option", {value: r, text: t("role." + r), selected: r === user.role});
    }));
    select.addEventListener("change", function () {
      var role = select.value;
      BM.api("PATCH", userUrl(user.name), {role: role}).then(function (res) {
        report(res, t("ui.user_role_changed", {name: user.name, role: t("role." + role)}));
      });
    });
    return select;
  }

  function resetPassword(user) {
    BMConfirm.ask({title: t("ui.reset_password") + " · " + user.name, ok: t("ui.save"),
                   fields: [{name: "password", label: t("ui.new_password"), type: "password", required: true}]})
      .then(function (values) {
        if (!values || !values.password) return;
        BM.api("PATCH", userUrl(user.name), {password: values.password}).then(function (res) {
          report(res, t("ui.user_password_reset", {name: user.name}));
        });
      });
  }

  function remove(user) {
    BMConfirm.ask({title: t("ui.delete") + " · " + user.name, danger: true, ok: t("ui.delete"),
                   text: t("ui.delete_user_confirm", {name: user.name})}).then(function (values) {
      if (!values) return;
      BM.api("DELETE", userUrl(user.name)).then(function (res) {
        report(res, t("ui.user_deleted", {name: user.name}));
      });
    });
  }

  function userRow(user) {
    var buttons = [el("button", {class: "btn small", type: "button", "data-action": "reset",
                                 text: t("ui.reset_password"), onclick: function () { resetPassword(user); }})];
    if (user.name !== me) {
      buttons.push(el("button", {class: "btn small danger", type: "button", "data-action": "delete",
                                 text: t("ui.delete"), onclick: function () { remove(user); }}));
    }
    return el("tr", {"data-user": user.name}, [
      el("td", {class: "id-text"}, [user.name, user.name === me ? " " + t("ui.you") : ""]),
      el("td", {}, [roleSelect(user)]),
      el("td", {class: "nowrap", text: BM.stamp(user.created_at)}),
      el("td", {text: user.disabled ? t("ui.disabled") : ""}),
      el("td", {class: "row-buttons"}, buttons)]);
  }

  function load() {
    BM.api("GET", URL).then(function (res) {
      if (!res.ok) { BMConfirm.notice(note, BM.errorText(res.status, res.data), false); return; }
      BM.clear(tableNode);
      tableNode.appendChild(el("thead", {}, [el("tr", {}, [t("ui.username"), t("ui.role"), t("ui.created"),
        "", ""].map(function (h) { return el("th", {text: h}); }))]));
      tableNode.appendChild(el("tbody", {}, res.data.map(userRow)));
    });
  }

  document.getElementById("user-add").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var name = document.getElementById("new-name");
    var password = document.getElementById("new-password");
    var body = {name: name.value.trim(), password: password.value,
                role: document.getElementById("new-role").value};
    BM.api("POST", URL, body).then(function (res) {
      if (res.ok) { name.value = ""; password.value = ""; }
      report(res, t("ui.user_added", {name: body.name}));
    });
  });
  load();
})();
