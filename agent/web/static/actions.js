/* Staff actions: choose, confirm, run through the JSON API, show verified/unverified per server. */
"use strict";

var BMActions = (function () {
  var t = BM.t, el = BM.el;
  var POWER = ["on", "off", "soft", "reset"];
  var DEVICES = ["disk", "pxe", "cdrom", "bios", "none"];
  var ENDPOINTS = JSON.parse(document.getElementById("bm-endpoints").textContent);

  function close(backdrop) {
    if (backdrop.parentNode) backdrop.parentNode.removeChild(backdrop);
  }

  function dialog(title, children) {
    var box = el("div", {class: "dialog", role: "dialog", "aria-modal": "true"},
                 [el("h3", {text: title})].concat(children));
    var backdrop = el("div", {class: "backdrop"}, [box]);
    backdrop.addEventListener("keydown", function (e) { if (e.key === "Escape") close(backdrop); });
    document.body.appendChild(backdrop);
    return {backdrop: backdrop, box: box};
  }

  function targetsList(uuids) {
    return el("div", {class: "targets", text: uuids.join(", ")});
  }

  /** Describe a request for the confirmation text. */
  function describe(req) {
    if (req.kind === "power") return t("action.power_" + req.action);
    var parts = [t("action.bootdev"), BM.bootLabel(req.device),
                 req.persistent ? t("bootdev.persistent") : t("bootdev.once"),
                 req.uefi ? t("bootdev.uefi") : t("bootdev.legacy")];
    return parts[0] + " (" + parts.slice(1).join(", ") + ")";
  }

  /** Step 1: pick the action. */
  function open(uuids, onDone) {
    if (!BM.canAct || !uuids.length) return;
    var device = el("select", {name: "device", id: "bm-boot-device"},
      DEVICES.map(function (d) { return el("option", {value: d, text: BM.bootLabel(d)}); }));
    var persistent = el("input", {type: "checkbox", id: "bm-boot-persistent"});
    var uefi = el("input", {type: "checkbox", id: "bm-boot-uefi"});
    var d;
    var powerButtons = POWER.map(function (a) {
      var danger = a === "off" || a === "reset";
      return el("button", {class: "btn " + (danger ? "danger" : "primary"), type: "button",
        "data-action": "power-" + a, text: t("action.power_" + a),
        onclick: function () {
          close(d.backdrop);
          confirmStep(uuids, {kind: "power", action: a}, onDone);
        }});
    });
    var bootButton = el("button", {class: "btn primary", type: "button", "data-action": "bootdev",
      text: t("action.bootdev"), onclick: function () {
        close(d.backdrop);
        confirmStep(uuids, {kind: "boot", device: device.value, persistent: persistent.checked,
                            uefi: uefi.checked}, onDone);
      }});
    d = dialog(t("ui.actions_for", {count: uuids.length}), [
      targetsList(uuids),
      el("h2", {text: t("ui.power")}),
      el("div", {class: "actions-grid"}, powerButtons),
      el("h2", {text: t("ui.boot_device")}),
      el("div", {class: "row"}, [device,
        el("label", {}, [persistent, " " + t("bootdev.persistent")]),
        el("label", {}, [uefi, " " + t("bootdev.uefi")]), bootButton]),
      el("div", {class: "buttons"}, [el("button", {class: "btn", type: "button", text: t("ui.cancel"),
        onclick: function () { close(d.backdrop); }})])
    ]);
    powerButtons[0].focus();
  }

  /** Step 2: say exactly what will happen to how many servers; nothing runs before Confirm. */
  function confirmStep(uuids, req, onDone) {
    var d;
    var danger = req.kind === "power" && (req.action === "off" || req.action === "reset");
    var go = el("button", {class: "btn " + (danger ? "danger" : "primary"), type: "button",
      id: "bm-confirm", text: t("ui.confirm"), onclick: function () {
        go.disabled = true;
        run(uuids, req, d, onDone);
      }});
    d = dialog(t("ui.confirm_title"), [
      el("p", {class: "confirm-text", text: t("ui.confirm_action", {action: describe(req), count: uuids.length})}),
      targetsList(uuids),
      el("div", {class: "buttons"}, [
        el("button", {class: "btn", type: "button", text: t("ui.cancel"),
          onclick: function () { close(d.backdrop); }}), go])
    ]);
    go.focus();
  }

  function requestFor(uuids, req) {
    if (req.kind === "power") return [ENDPOINTS.power, {uuids: uuids, action: req.action}];
    return [ENDPOINTS.bootdev, {uuids: uuids, device: req.device, persistent: req.persistent,
                                uefi: req.uefi}];
  }

  /** Step 3: run and show one line per server. */
  function run(uuids, req, d, onDone) {
    var status = el("p", {class: "muted", text: t("ui.working")});
    d.box.appendChild(status);
    var spec = requestFor(uuids, req);
    BM.api("POST", spec[0], spec[1]).then(function (res) {
      BM.clear(d.box);
      d.box.appendChild(el("h3", {text: describe(req)}));
      if (!res.ok && !(res.data && res.data.results)) {
        d.box.appendChild(el("div", {class: "notice error", id: "bm-action-error",
                                     text: BM.errorText(res.status, res.data)}));
      } else {
        d.box.appendChild(resultsTable(res.data.results || [], req));
      }
      d.box.appendChild(el("div", {class: "buttons"}, [el("button", {class: "btn primary",
        type: "button", id: "bm-close", text: t("ui.close"), onclick: function () {
          close(d.backdrop);
          if (onDone) onDone();
        }})]));
    });
  }

  function outcome(r) {
    if (r.ok && r.verified) return ["verified", t("result.verified")];
    if (r.ok) return ["unverified", t("result.unverified")];
    return ["failed", t("result.failed")];
  }

  /** The outcome in the page's language (the API's message is English). */
  function messageFor(r) {
    if (r.code === "verified") return t("ui.verified_help");
    if (r.code === "unverified") return t("ui.unverified_help");
    if (r.code && r.code.indexOf("ipmi_") === 0) return BM.tOr("reason." + r.code, r.message || r.code);
    return BM.tOr("ui.result_" + r.code, r.message || r.code || "");
  }

  function resultsTable(results, req) {
    var rows = results.map(function (r) {
      var o = outcome(r);
      var reading = r.reading || {};
      var seen = [reading.power ? BM.powerLabel(reading.power) : null,
                  reading.boot_device ? BM.bootLabel(reading.boot_device) : null]
                  .filter(Boolean).join(" · ");
      var msg = req.kind === "boot" && r.ok ? BMBoot.resultText(r.reading, req) : messageFor(r);
      return el("tr", {"data-uuid": r.uuid, "data-outcome": o[0]}, [
        el("td", {text: r.uuid}),
        el("td", {class: "res-" + o[0], text: o[1]}),
        el("td", {text: seen}),
        el("td", {text: msg})]);
    });
    return el("div", {class: "table-wrap"}, [el("table", {class: "data", id: "bm-results"}, [
      el("thead", {}, [el("tr", {}, [el("th", {text: t("ui.server")}), el("th", {text: t("ui.result")}),
        el("th", {text: t("ui.reading")}), el("th", {text: t("ui.detail")})])]),
      el("tbody", {}, rows)])]);
  }

  return {open: open};
})();
