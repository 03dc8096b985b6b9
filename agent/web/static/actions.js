/* Staff actions: choose, confirm, run through the JSON API, show verified/unverified per server. */
"use strict";

var BMActions = (function () {
  var t = BM.t, el = BM.el;
  var POWER = ["on", "off", "soft", "reset"];
  var DEVICES = ["disk", "pxe", "cdrom", "bios", "none"];
  var ENDPOINTS = JSON.parse(document.getElementById("bm-endpoints").textContent);
  var TAKES_RENTAL = {off: true, soft: true, reset: true}; // the renter loses the PC
  var rentals = {}; // uuid -> the server shape's rental ({state, until, stale})

  /** Remember a server's rental (the grid and the detail page feed this). */
  function noteRental(uuid, rental) { rentals[uuid] = rental || {state: "unknown"}; }

  function untilText(rental) {
    return rental && rental.until ? BM.stamp(Date.parse(rental.until) / 1000) : t("ui.until_unknown");
  }

  /** The end for a card: HH:MM today, else MM-DD HH:MM (the full stamp is its title). */
  function shortUntil(rental) {
    var full = untilText(rental), today = BM.stamp(BM.serverNow()).slice(0, 10);
    if (!rental.until) return full;
    return full.slice(0, 10) === today ? full.slice(11, 16) : full.slice(5, 16);
  }

  /** [css state, text]: 出租中（至 …）/ 空闲 / 未知, "chain data old" when stale. */
  function rentalState(rental, short) {
    var r = rental || {state: "unknown"};
    var until = short ? shortUntil(r) : untilText(r);
    var text = r.state === "rented" ? (r.until ? t("rental.rented_until", {time: until}) : t("rental.rented"))
      : BM.tOr("rental." + r.state, r.state);
    if (r.stale) text += " · " + t("rental.stale");
    return [r.state, text];
  }

  function rentalTag(rental, short) {
    var st = rentalState(rental, short);
    return el("span", {class: "rent rent-" + st[0] + (rental && rental.stale ? " rent-stale" : ""),
                       "data-rental": st[0], text: st[1],
                       title: rental && rental.until ? untilText(rental) : null});
  }

  /** The detail page's header fact: [label, value] (and remembered for the confirm). */
  function rentalFact(detail) {
    noteRental(detail.uuid, detail.rental);
    return [t("ui.rental"), rentalTag(detail.rental)];
  }

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

  /** Every target by name with its rental state (hidden ones too: nothing is left out). */
  function targetsList(uuids) {
    return el("ul", {class: "targets", id: "bm-targets"}, uuids.map(function (u) {
      return el("li", {"data-uuid": u}, [el("span", {class: "tname", text: u}), " ", rentalTag(rentals[u])]);
    }));
  }

  function powerClass(a) {
    if (a === "off" || a === "reset") return "danger";
    return a === "soft" ? "soft" : "primary";
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
      return el("button", {class: "btn " + powerClass(a), type: "button",
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

  /** The rented targets' warning and the second acknowledgement (null: none rented). */
  function rentedCheck(uuids, req) {
    if (req.kind !== "power" || !TAKES_RENTAL[req.action]) return null;
    var rented = uuids.filter(function (u) { return rentals[u] && rentals[u].state === "rented"; });
    if (!rented.length) return null;
    var ends = rented.length === 1 ? untilText(rentals[rented[0]])
      : rented.map(function (u) { return u + " " + untilText(rentals[u]); }).join("; ");
    var box = el("input", {type: "checkbox", id: "bm-rented-ack"});
    var node = el("div", {class: "notice error rented-warning", id: "bm-rented-warning"}, [
      el("p", {text: t("ui.rented_warning", {count: rented.length, action: describe(req)})}),
      el("ul", {}, rented.map(function (u) {
        return el("li", {}, [el("b", {text: u}), " — " + rentalState(rentals[u])[1]]);
      })),
      el("label", {class: "ack"}, [box, " " + t("ui.rented_ack", {until: ends})])]);
    return {node: node, box: box};
  }

  /** Step 2: say exactly what will happen to which servers; nothing runs before Confirm. */
  function confirmStep(uuids, req, onDone) {
    var d;
    var check = rentedCheck(uuids, req);
    var go = el("button", {class: "btn " + (req.kind === "power" ? powerClass(req.action) : "primary"),
      type: "button", id: "bm-confirm", text: t("ui.confirm"), disabled: !!check, onclick: function () {
        go.disabled = true;
        req.confirmRented = !!(check && check.box.checked);
        run(uuids, req, d, onDone);
      }});
    if (check) check.box.addEventListener("change", function () { go.disabled = !check.box.checked; });
    d = dialog(t("ui.confirm_title"), [
      el("p", {class: "confirm-text", text: t("ui.confirm_action", {action: describe(req), count: uuids.length})}),
      targetsList(uuids),
      check ? check.node : "",
      el("div", {class: "buttons"}, [
        el("button", {class: "btn", type: "button", text: t("ui.cancel"),
          onclick: function () { close(d.backdrop); }}), go])
    ]);
    (check ? check.box : go).focus();
  }

  function requestFor(uuids, req) {
    if (req.kind === "power") {
      return [ENDPOINTS.power, {uuids: uuids, action: req.action, confirm_rented: !!req.confirmRented}];
    }
    return [ENDPOINTS.bootdev, {uuids: uuids, device: req.device, persistent: req.persistent,
                                uefi: req.uefi}];
  }

  /** Step 3: run and show one line per server; hooks.started / hooks.finished (the grid). */
  function run(uuids, req, d, onDone) {
    var status = el("p", {class: "muted", text: t("ui.working")});
    d.box.appendChild(status);
    var spec = requestFor(uuids, req);
    if (hooks.started) hooks.started(uuids, req);
    BM.api("POST", spec[0], spec[1]).then(function (res) {
      if (hooks.finished) hooks.finished(uuids, (res.data && res.data.results) || []);
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

  var hooks = {};
  return {open: open, noteRental: noteRental, rentalTag: rentalTag, rentalFact: rentalFact,
          rentalState: rentalState, hooks: hooks};
})();
