/* A modal question for admin changes (users, seat edit/delete): resolves null when cancelled. */
"use strict";

var BMConfirm = (function () {
  var t = BM.t, el = BM.el;

  /**
   * ask({title, text, ok, danger, fields: [{name, label, type, value, required}]})
   * -> Promise of null (cancelled) or {name: value} of the fields ({} without fields).
   */
  function ask(opts) {
    return new Promise(function (resolve) {
      var inputs = {};
      var rows = (opts.fields || []).map(function (f) {
        var input = el("input", {type: f.type || "text", name: f.name, id: "ask-" + f.name,
          value: f.value === undefined || f.value === null ? "" : String(f.value),
          required: !!f.required, autocomplete: f.type === "password" ? "new-password" : "off",
          maxlength: f.maxlength || 256, spellcheck: "false"});
        inputs[f.name] = input;
        return el("label", {class: "ask-field", for: "ask-" + f.name}, [el("span", {text: f.label}), input]);
      });
      var okButton = el("button", {class: "btn " + (opts.danger ? "danger" : "primary"), type: "submit",
                                   id: "ask-ok", text: opts.ok});
      var cancel = el("button", {class: "btn", type: "button", id: "ask-cancel", text: t("ui.cancel")});
      var form = el("form", {method: "dialog", class: "ask-form"}, [
        el("h2", {text: opts.title}), opts.text ? el("p", {class: "ask-text", text: opts.text}) : null
      ].concat(rows).concat([el("div", {class: "ask-buttons"}, [cancel, okButton])]));
      var dialog = el("dialog", {class: "ask", id: "ask-dialog"}, [form]);
      function done(value) {
        dialog.close();
        if (dialog.parentNode) dialog.parentNode.removeChild(dialog);
        resolve(value);
      }
      cancel.addEventListener("click", function () { done(null); });
      dialog.addEventListener("cancel", function (ev) { ev.preventDefault(); done(null); });
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var values = {};
        Object.keys(inputs).forEach(function (name) { values[name] = inputs[name].value; });
        done(values);
      });
      document.body.appendChild(dialog);
      dialog.showModal();
      var first = rows.length ? inputs[opts.fields[0].name] : cancel;
      first.focus();
    });
  }

  /** A notice (role=status) in node: good or error. */
  function notice(node, text, good) {
    BM.clear(node);
    node.appendChild(el("p", {class: good ? "notice good" : "notice error", text: text}));
  }

  return {ask: ask, notice: notice};
})();
